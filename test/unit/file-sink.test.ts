import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { IngestEvent } from "../../actors/common/event";
import {
  FileSink,
  SEGMENT_SUFFIX,
  formatEventLine,
  readSegments,
  repairSegments,
  type FileSinkOptions,
} from "../../actors/storage-writer/file-sink";
import { WriteNotUndoneError } from "../../actors/storage-writer/durable-file";
import { injectDiskFaults, type DiskFaults } from "../support/disk-faults";

const T0 = Date.UTC(2024, 0, 15, 10, 30, 45, 123);

function ev(i: number, over: Partial<IngestEvent> = {}): IngestEvent {
  return {
    tenant_id: "tenant-a",
    event_id: `evt-${String(i).padStart(4, "0")}`,
    event_name: "click",
    session_id: "sess-123",
    seq: i,
    user_id: i % 2 === 0 ? `user-${i}` : null,
    channel: i % 3 === 0 ? "web" : null,
    timestamp: T0 + i,
    received_at: T0 + 1_000 + i,
    properties: { route: "/checkout", target: { type: "button" }, i },
    ...over,
  };
}

/** The row readSegments gives back for an event. */
function row(e: IngestEvent): Record<string, unknown> {
  return {
    tenant_id: e.tenant_id,
    event_id: e.event_id,
    session_id: e.session_id,
    seq: e.seq,
    event_name: e.event_name,
    user_id: e.user_id,
    channel: e.channel,
    timestamp: new Date(e.timestamp).toISOString(),
    received_at: new Date(e.received_at).toISOString(),
    properties: e.properties,
  };
}

const lineBytes = (e: IngestEvent) => Buffer.byteLength(formatEventLine(e) + "\n");

/** Events 1000..9999 whose lines all have the same length. */
const fixed = (i: number) => ev(i, { user_id: "u", channel: "web" });

let dir: string;
const sinks: FileSink[] = [];

function sink(over: Partial<FileSinkOptions> = {}): FileSink {
  const s = new FileSink({ dir, nodeId: "node-1", maxBytes: 64 * 1024 * 1024, maxAgeMs: 300_000, ...over });
  sinks.push(s);
  return s;
}

async function segments(): Promise<string[]> {
  return (await fsp.readdir(dir)).filter((n) => n.endsWith(SEGMENT_SUFFIX)).sort();
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "file-sink-test-"));
});

afterEach(async () => {
  for (const s of sinks.splice(0)) await s.close().catch(() => undefined);
  await fsp.rm(dir, { recursive: true, force: true });
});

describe("formatEventLine", () => {
  it("writes ISO times with milliseconds and every field, one JSON line", () => {
    const line = formatEventLine(ev(0));
    expect(line).not.toContain("\n");
    expect(JSON.parse(line)).toEqual({
      tenant_id: "tenant-a",
      event_id: "evt-0000",
      session_id: "sess-123",
      seq: 0,
      event_name: "click",
      user_id: "user-0",
      channel: "web",
      timestamp: "2024-01-15T10:30:45.123Z",
      received_at: "2024-01-15T10:30:46.123Z",
      properties: { route: "/checkout", target: { type: "button" }, i: 0 },
    });
  });

  it("keeps a newline inside a value escaped, so one event stays one line", () => {
    const line = formatEventLine(ev(1, { properties: { text: "a\nb\r\nc" } }));
    expect(line.split("\n")).toHaveLength(1);
    expect((JSON.parse(line) as { properties: unknown }).properties).toEqual({ text: "a\nb\r\nc" });
  });
});

describe("FileSink write/readSegments", () => {
  it("round-trips events in write order with ISO times", async () => {
    const s = sink();
    await s.start();
    const batches = [[ev(0), ev(1), ev(2)], [ev(3)], [ev(4), ev(5)]];
    for (const b of batches) await s.write(b);
    const rows = await readSegments(dir);
    expect(rows).toEqual(batches.flat().map(row));
    expect(rows[0].timestamp).toBe("2024-01-15T10:30:45.123Z");
    expect(await segments()).toHaveLength(1);
  });

  it("names segments events-<node>-<stamp>-<pid>-<counter>.ndjson", async () => {
    const s = sink({ now: () => T0 });
    await s.start();
    await s.write([ev(0)]);
    expect(await segments()).toEqual([`events-node-1-20240115T103045-${process.pid}-000000.ndjson`]);
  });

  it("the segment's bytes are exactly the event lines", async () => {
    const s = sink();
    await s.start();
    const events = [ev(0), ev(1, { properties: { emoji: "🎉", accent: "é" } })];
    await s.write(events);
    const [name] = await segments();
    const text = await fsp.readFile(path.join(dir, name), "utf8");
    expect(text).toBe(events.map((e) => formatEventLine(e) + "\n").join(""));
    expect((await fsp.stat(path.join(dir, name))).size).toBe(events.reduce((n, e) => n + lineBytes(e), 0));
  });

  it("write([]) writes nothing and opens no segment", async () => {
    const s = sink();
    await s.start();
    await s.write([]);
    expect(await segments()).toEqual([]);
    expect(await readSegments(dir)).toEqual([]);
  });

  it("start() creates a missing directory (recursively)", async () => {
    const nested = path.join(dir, "a", "b");
    const s = new FileSink({ dir: nested, nodeId: "n", maxBytes: 1 << 20, maxAgeMs: 60_000 });
    sinks.push(s);
    await s.start();
    await s.write([ev(0)]);
    expect(await readSegments(nested)).toEqual([row(ev(0))]);
  });

  it("readSegments ignores other files", async () => {
    const s = sink();
    await s.start();
    await s.write([ev(0)]);
    await fsp.writeFile(path.join(dir, "notes.txt"), "not json\n");
    await fsp.writeFile(path.join(dir, "old.ndjson.bak"), "{broken\n");
    expect(await readSegments(dir)).toEqual([row(ev(0))]);
  });
});

describe("FileSink rotation", () => {
  it("rotates by maxBytes: a segment never grows past it with whole batches", async () => {
    const line = lineBytes(fixed(1000)); // all fixed(1000..1019) lines have the same length
    const maxBytes = line * 3 + 5; // room for 3 lines
    let clock = T0;
    const s = sink({ maxBytes, now: () => clock });
    await s.start();
    const events = Array.from({ length: 10 }, (_, i) => fixed(1000 + i));
    for (const e of events) {
      await s.write([e]);
      clock += 1;
    }
    const names = await segments();
    expect(names).toHaveLength(4); // 3 + 3 + 3 + 1
    const sizes = await Promise.all(names.map(async (n) => (await fsp.stat(path.join(dir, n))).size));
    expect(sizes).toEqual([3 * line, 3 * line, 3 * line, line]);
    expect(await readSegments(dir)).toEqual(events.map(row));
  });

  it("a batch that exactly fills maxBytes stays in the segment; the next byte rotates", async () => {
    const line = lineBytes(fixed(1000));
    const s = sink({ maxBytes: line * 2 });
    await s.start();
    await s.write([fixed(1000)]);
    await s.write([fixed(1001)]);
    expect(await segments()).toHaveLength(1);
    await s.write([fixed(1002)]);
    expect(await segments()).toHaveLength(2);
  });

  it("a single batch larger than maxBytes goes whole into a fresh segment", async () => {
    const line = lineBytes(fixed(1000));
    const s = sink({ maxBytes: line * 2 });
    await s.start();
    await s.write([fixed(1000)]);
    const big = Array.from({ length: 5 }, (_, i) => fixed(1001 + i));
    await s.write(big);
    await s.write([fixed(1010)]);
    const names = await segments();
    expect(names).toHaveLength(3);
    const sizes = await Promise.all(names.map(async (n) => (await fsp.stat(path.join(dir, n))).size));
    expect(sizes).toEqual([line, 5 * line, line]);
    expect(await readSegments(dir)).toEqual([fixed(1000), ...big, fixed(1010)].map(row));
  });

  it("rotates by maxAgeMs (injected clock), measured from the segment's opening", async () => {
    let clock = T0;
    const s = sink({ maxAgeMs: 60_000, now: () => clock });
    await s.start();
    await s.write([ev(0)]); // opens at T0
    clock = T0 + 59_999;
    await s.write([ev(1)]);
    expect(await segments()).toHaveLength(1);
    clock = T0 + 60_000;
    await s.write([ev(2)]); // rotates, new segment opened at T0 + 60 s
    expect(await segments()).toHaveLength(2);
    clock = T0 + 119_999;
    await s.write([ev(3)]);
    expect(await segments()).toHaveLength(2);
    clock = T0 + 120_000;
    await s.write([ev(4)]);
    const names = await segments();
    expect(names).toEqual([
      `events-node-1-20240115T103045-${process.pid}-000000.ndjson`,
      `events-node-1-20240115T103145-${process.pid}-000001.ndjson`,
      `events-node-1-20240115T103245-${process.pid}-000002.ndjson`,
    ]);
    expect(await readSegments(dir)).toEqual([0, 1, 2, 3, 4].map((i) => row(ev(i))));
  });

  it("age alone does not create a segment when nothing is written", async () => {
    let clock = T0;
    const s = sink({ maxAgeMs: 100, now: () => clock });
    await s.start();
    await s.write([ev(0)]);
    clock += 10_000;
    expect(await segments()).toHaveLength(1);
  });
});

describe("FileSink repair of a partial last line", () => {
  async function writeThenTear(garbage: string): Promise<{ file: string; goodSize: number }> {
    const s = sink();
    await s.start();
    await s.write([ev(0), ev(1), ev(2)]);
    await s.close();
    const [name] = await segments();
    const file = path.join(dir, name);
    const goodSize = (await fsp.stat(file)).size;
    await fsp.appendFile(file, garbage);
    return { file, goodSize };
  }

  it("repairSegments cuts a torn segment back to its last newline and it parses again", async () => {
    const { file, goodSize } = await writeThenTear('{"tenant_id":"tenant-a","event_id":"evt-0003","sess');
    await expect(readSegments(dir)).rejects.toThrow(SyntaxError);
    expect(await repairSegments(dir)).toBe(1);
    expect((await fsp.stat(file)).size).toBe(goodSize);
    expect(await readSegments(dir)).toEqual([0, 1, 2].map((i) => row(ev(i))));
    // Nothing more to repair.
    expect(await repairSegments(dir)).toBe(0);
  });

  it("start() repairs, and later writes go on cleanly", async () => {
    const { file, goodSize } = await writeThenTear("garbage without newline");
    const s = sink({ nodeId: "node-2" });
    await s.start();
    expect((await fsp.stat(file)).size).toBe(goodSize);
    await s.write([ev(3)]);
    const rows = await readSegments(dir);
    expect(rows).toHaveLength(4);
    expect(rows.map((r) => r.event_id).sort()).toEqual(["evt-0000", "evt-0001", "evt-0002", "evt-0003"]);
  });

  it("a torn tail longer than the 64 KB read chunk is found and cut", async () => {
    const { file, goodSize } = await writeThenTear("x".repeat(200 * 1024));
    expect(await repairSegments(dir)).toBe(1);
    expect((await fsp.stat(file)).size).toBe(goodSize);
    expect(await readSegments(dir)).toHaveLength(3);
  });

  it("a segment with no complete line at all is cut to empty", async () => {
    const file = path.join(dir, `events-x-20240101T000000-1-000000${SEGMENT_SUFFIX}`);
    await fsp.writeFile(file, '{"half":');
    expect(await repairSegments(dir)).toBe(1);
    expect((await fsp.stat(file)).size).toBe(0);
    expect(await readSegments(dir)).toEqual([]);
  });

  it("leaves complete segments, empty segments and non-segment files alone", async () => {
    const s = sink();
    await s.start();
    await s.write([ev(0)]);
    await s.close();
    const empty = path.join(dir, `events-y-20240101T000000-1-000000${SEGMENT_SUFFIX}`);
    await fsp.writeFile(empty, "");
    const other = path.join(dir, "other.txt");
    await fsp.writeFile(other, "no newline at the end");
    expect(await repairSegments(dir)).toBe(0);
    expect(await fsp.readFile(other, "utf8")).toBe("no newline at the end");
    expect((await fsp.stat(empty)).size).toBe(0);
    expect(await readSegments(dir)).toEqual([row(ev(0))]);
  });

  it("repairs every torn segment and counts them", async () => {
    for (let k = 0; k < 3; k++) {
      const file = path.join(dir, `events-z-20240101T000000-1-00000${k}${SEGMENT_SUFFIX}`);
      await fsp.writeFile(file, formatEventLine(ev(k)) + "\n" + (k === 1 ? "" : "torn"));
    }
    expect(await repairSegments(dir)).toBe(2);
    expect(await readSegments(dir)).toEqual([0, 1, 2].map((i) => row(ev(i))));
  });
});

describe("FileSink when the disk fails a write", () => {
  /** A started sink whose segment holds one line, on a disk that fails while `faults` say so. */
  async function sinkWithALine(): Promise<{ s: FileSink; faults: DiskFaults }> {
    const faults = injectDiskFaults((file) => file.endsWith(SEGMENT_SUFFIX));
    const s = sink();
    await s.start();
    await s.write([fixed(1000)]);
    return { s, faults };
  }

  it("cuts a refused batch back out, so a later, shorter batch leaves none of its lines behind", async () => {
    const { s, faults } = await sinkWithALine();
    faults.datasyncFailures = 1;
    await expect(s.write([fixed(1001), fixed(1002), fixed(1003)])).rejects.toThrow(/EIO/);
    await s.write([fixed(1004)]);
    // Without the cut, the shorter batch overwrote only the refused one's first line: 1002 and 1003 read as stored.
    expect(await readSegments(dir)).toEqual([row(fixed(1000)), row(fixed(1004))]);
    expect(await s.ready()).toEqual({ ok: true });
  });

  it("stops taking writes when the refused batch cannot be cut back out, and says why", async () => {
    const { s, faults } = await sinkWithALine();
    faults.datasyncFailures = 1;
    faults.truncateFailures = 1;
    const refused = await s.write([fixed(1001), fixed(1002)]).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(WriteNotUndoneError);
    expect((refused as WriteNotUndoneError).message).toMatch(/a write failed \(EIO: i\/o error, fdatasync\) and cutting its bytes back out failed too \(EIO: i\/o error, ftruncate\)/);
    // The disk works again, but what follows the refused batch's bytes would be read with them.
    await expect(s.write([fixed(1003)])).rejects.toBe(refused);
    expect(await s.ready()).toEqual({ ok: false, reason: (refused as Error).message });
  });
});

describe("FileSink lifecycle", () => {
  it("close() then write() rejects", async () => {
    const s = sink();
    await s.start();
    await s.write([ev(0)]);
    await s.close();
    await expect(s.write([ev(1)])).rejects.toThrow("file sink is closed");
    await expect(s.write([])).rejects.toThrow("file sink is closed");
    expect(await readSegments(dir)).toEqual([row(ev(0))]);
  });

  it("close() is idempotent and works without any write", async () => {
    const s = sink();
    await s.start();
    await s.close();
    await expect(s.close()).resolves.toBeUndefined();
  });

  it("ready() is ok on a writable directory", async () => {
    const s = sink();
    await s.start();
    expect(await s.ready()).toEqual({ ok: true });
  });

  it("ready() is not ok after the directory is removed", async () => {
    const s = sink();
    await s.start();
    await fsp.rm(dir, { recursive: true, force: true });
    const state = await s.ready();
    expect(state.ok).toBe(false);
    expect(state.reason).toMatch(/^data directory not writable: ENOENT/);
  });

  it("ready() is not ok after close()", async () => {
    const s = sink();
    await s.start();
    await s.close();
    expect(await s.ready()).toEqual({ ok: false, reason: "file sink is closed" });
  });
});

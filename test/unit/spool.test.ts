/**
 * The single-process spool: its log on a real filesystem (framing, torn and damaged tails,
 * checkpoint, segments), and SpooledSink in front of an in-memory sink that can be made to fail
 * (ClickHouse itself behind the spool is covered by test/integration/clickhouse-path.test.ts).
 */
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { IngestEvent } from "../../actors/common/event";
import { encodeInsertBody } from "../../actors/storage-writer/clickhouse/clickhouse-sink";
import { rowFromLine, splitRows } from "../../actors/storage-writer/clickhouse/tsv-reader";
import type { FormattedRows, RejectedRow, RowSink } from "../../actors/storage-writer/sink";
import { CHECKPOINT_FILE, RECORD_HEADER_BYTES, SpoolLog, frameRecord, scanRecords, segmentName } from "../../actors/storage-writer/spool/spool-log";
import { SpoolFullError, SpooledSink, type SpooledSinkOptions } from "../../actors/storage-writer/spool/spooled-sink";
import { WriteNotUndoneError } from "../../actors/storage-writer/durable-file";
import { injectDiskFaults, type DiskFaults } from "../support/disk-faults";

function ev(i: number): IngestEvent {
  return {
    tenant_id: "t",
    event_id: `e-${i}`,
    event_name: "click",
    session_id: `s-${i % 3}`,
    seq: i,
    user_id: null,
    channel: "web",
    timestamp: 1_700_000_000_000 + i,
    received_at: 1_700_000_001_000 + i,
    properties: { i, nested: { ok: true } },
  };
}
const evs = (from: number, n: number) => Array.from({ length: n }, (_, k) => ev(from + k));
const ids = (events: readonly IngestEvent[]) => events.map((e) => e.event_id);
/** A batch's rows as the spool stores them (ClickHouse's TabSeparated lines). */
const rowsOf = (events: readonly IngestEvent[]) => encodeInsertBody(events, 1).chunks;
/** The event ids in rows read back. */
const idsIn = (chunks: readonly Buffer[]) => splitRows(chunks).map((line) => String(rowFromLine(line).event_id));

let dir: string;
beforeEach(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), "spool-test-"));
});
afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

async function segmentFiles(): Promise<string[]> {
  return (await fsp.readdir(dir)).filter((f) => f.endsWith(".rows")).sort();
}

describe("scanRecords", () => {
  it("reads whole records and stops at a torn or damaged one", () => {
    const a = frameRecord(rowsOf(evs(0, 2)), 2);
    const b = frameRecord(rowsOf(evs(2, 3)), 3);
    const both = Buffer.concat([a, b]);
    expect(scanRecords(both, 7, 0)).toEqual({
      records: [
        { segment: 7, offset: 0, bytes: a.length, count: 2 },
        { segment: 7, offset: a.length, bytes: b.length, count: 3 },
      ],
      end: both.length,
    });
    expect(scanRecords(both, 7, a.length).records.map((r) => r.count)).toEqual([3]);
    for (const cut of [a.length + 5, both.length - 1]) {
      const torn = scanRecords(both.subarray(0, cut), 7, 0);
      expect(torn.records.map((r) => r.count)).toEqual([2]);
      expect(torn.end).toBe(a.length);
      expect(torn.problem).toMatch(/torn/);
    }
    const damaged = Buffer.from(both);
    damaged[RECORD_HEADER_BYTES + 4]! ^= 0xff;
    expect(scanRecords(damaged, 7, 0)).toEqual({ records: [], end: 0, problem: "record fails its CRC" });
  });

  it("ends cleanly where a segment written ahead still holds zeros, and cuts an append a crash left half in them", () => {
    const a = frameRecord(rowsOf(evs(0, 2)), 2);
    const b = frameRecord(rowsOf(evs(2, 3)), 3);
    const segment = Buffer.alloc(4096);
    a.copy(segment, 0);
    b.copy(segment, a.length);
    expect(scanRecords(segment, 7, 0)).toEqual({
      records: [
        { segment: 7, offset: 0, bytes: a.length, count: 2 },
        { segment: 7, offset: a.length, bytes: b.length, count: 3 },
      ],
      end: a.length + b.length,
    });
    expect(scanRecords(Buffer.alloc(4096), 7, 0)).toEqual({ records: [], end: 0 });
    // b's header and the start of its rows reached the disk, the rest of it did not.
    const torn = Buffer.alloc(4096);
    a.copy(torn, 0);
    b.subarray(0, RECORD_HEADER_BYTES + 10).copy(torn, a.length);
    expect(scanRecords(torn, 7, 0)).toMatchObject({ end: a.length, problem: /^last record incomplete/ });
    expect(scanRecords(torn, 7, 0).records).toHaveLength(1);
    // Pages written out of order: b's rows without its header. Not zeros, so not the clean end.
    const headless = Buffer.from(segment);
    headless.fill(0, a.length, a.length + RECORD_HEADER_BYTES);
    expect(scanRecords(headless, 7, 0)).toMatchObject({ end: a.length, problem: "record header without events" });
  });
});

describe("SpoolLog", () => {
  it("gives back after a restart what it appended, and cuts a torn tail", async () => {
    const log = new SpoolLog({ dir, segmentMaxBytes: 1 << 20 });
    expect(await log.open()).toEqual({ records: [], warnings: [] });
    const { record: first, payload } = await log.append(rowsOf(evs(0, 4)), 4);
    expect(idsIn([payload])).toEqual(["e-0", "e-1", "e-2", "e-3"]);
    const { record: second } = await log.append(rowsOf(evs(4, 2)), 2);
    expect(idsIn([await log.read(second)])).toEqual(["e-4", "e-5"]);
    expect(log.bytes).toBe(first.bytes + second.bytes);
    await log.close();

    const [file] = await segmentFiles();
    await fsp.truncate(path.join(dir, file!), first.bytes + second.bytes - 3);
    const again = new SpoolLog({ dir, segmentMaxBytes: 1 << 20 });
    const opened = await again.open();
    expect(opened.records).toEqual([first]);
    expect(opened.warnings).toEqual([{ segment: file, at: first.bytes, problem: `torn record; ${second.bytes - 3} bytes cut` }]);
    expect((await fsp.stat(path.join(dir, file!))).size).toBe(first.bytes);
    expect(idsIn([await again.read(first)])).toEqual(["e-0", "e-1", "e-2", "e-3"]);
    // Appends go to a new segment.
    const { record: third } = await again.append(rowsOf(evs(6, 1)), 1);
    expect(third.segment).toBe(first.segment + 1);
    await again.close();
  });

  it("writes each segment ahead in full, so appends leave its size alone, and prepares the next one", async () => {
    const size = 64 * 1024;
    const log = new SpoolLog({ dir, segmentMaxBytes: size });
    await log.open();
    const [first] = await segmentFiles();
    expect((await fsp.stat(path.join(dir, first!))).size).toBe(size);
    const records = [];
    for (let i = 0; i < 3; i++) records.push((await log.append(rowsOf(evs(i * 4, 4)), 4)).record);
    expect((await fsp.stat(path.join(dir, first!))).size).toBe(size);
    expect(log.bytes).toBe(records.reduce((n, r) => n + r.bytes, 0));
    await log.close();
    const next = `${segmentName(records[0]!.segment + 1)}.next`;
    expect((await fsp.readdir(dir)).sort()).toEqual([first, next]);
    expect((await fsp.readFile(path.join(dir, next))).equals(Buffer.alloc(size))).toBe(true);

    // A restart reads the records up to the zeros, without a warning, and drops the unused prepared segment.
    const again = new SpoolLog({ dir, segmentMaxBytes: size });
    expect(await again.open()).toEqual({ records, warnings: [] });
    expect(await fsp.readdir(dir)).not.toContain(next);
    // Filling a segment moves appends to the one prepared for it, full-size from the start.
    const second = records[0]!.segment + 1;
    let last = (await again.append(rowsOf(evs(0, 40)), 40)).record;
    expect(last.segment).toBe(second);
    while (last.segment === second) last = (await again.append(rowsOf(evs(0, 40)), 40)).record;
    expect(last.segment).toBe(second + 1);
    for (const segment of [second, second + 1]) expect((await fsp.stat(path.join(dir, segmentName(segment)))).size).toBe(size);
    await again.close();
  });

  it("takes a record larger than a segment whole, past the segment's prepared size", async () => {
    const log = new SpoolLog({ dir, segmentMaxBytes: 1024 });
    await log.open();
    const { record: small } = await log.append(rowsOf(evs(0, 1)), 1);
    const { record: big } = await log.append(rowsOf(evs(1, 40)), 40);
    expect(big.bytes).toBeGreaterThan(1024);
    expect(big.segment).toBe(small.segment + 1);
    const { record: after } = await log.append(rowsOf(evs(41, 1)), 1);
    expect(after.segment).toBe(big.segment + 1);
    await log.close();
    const again = new SpoolLog({ dir, segmentMaxBytes: 1024 });
    expect(await again.open()).toEqual({ records: [small, big, after], warnings: [] });
    expect(idsIn([await again.read(big)])).toEqual(ids(evs(1, 40)));
    await again.close();
  });

  it("rotates segments, and a checkpoint skips and deletes what was committed", async () => {
    const log = new SpoolLog({ dir, segmentMaxBytes: 400 });
    await log.open();
    const records = [];
    for (let i = 0; i < 6; i++) records.push((await log.append(rowsOf(evs(i * 2, 2)), 2)).record);
    const segments = new Set(records.map((r) => r.segment));
    expect(segments.size).toBeGreaterThan(2);
    expect(await segmentFiles()).toEqual([...segments].map(segmentName));

    // Commit through the fourth record: the segments wholly before it go.
    const fourth = records[3]!;
    await log.commit({ segment: fourth.segment, offset: fourth.offset + fourth.bytes });
    expect(JSON.parse(await fsp.readFile(path.join(dir, CHECKPOINT_FILE), "utf8"))).toEqual({ segment: fourth.segment, offset: fourth.offset + fourth.bytes });
    expect((await segmentFiles())[0]).toBe(segmentName(fourth.segment));
    expect(log.bytes).toBe(records[4]!.bytes + records[5]!.bytes);
    await log.close();

    const again = new SpoolLog({ dir, segmentMaxBytes: 400 });
    const { records: left } = await again.open();
    expect(left).toEqual([records[4], records[5]]);
    expect(again.bytes).toBe(records[4]!.bytes + records[5]!.bytes);
    await again.close();
  });

  describe("when the disk fails an append", () => {
    /** An open log on a disk that fails while the returned faults say so. */
    async function logOnFailingDisk(): Promise<{ log: SpoolLog; faults: DiskFaults }> {
      const faults = injectDiskFaults((file) => file.endsWith(".rows"));
      const log = new SpoolLog({ dir, segmentMaxBytes: 1 << 20 });
      await log.open();
      return { log, faults };
    }

    it("cuts the failed append back out of its segment, so a restart never reads the refused record", async () => {
      const { log, faults } = await logOnFailingDisk();
      const { record: first } = await log.append(rowsOf(evs(0, 2)), 2);
      faults.datasyncFailures = 1;
      await expect(log.append(rowsOf(evs(2, 4)), 4)).rejects.toThrow(/EIO/);
      expect(log.bytes).toBe(first.bytes);
      expect(log.failure).toBeNull();
      await log.close();
      // Without the cut, the refused record lay whole (and with a good CRC) at the segment's end.
      const again = new SpoolLog({ dir, segmentMaxBytes: 1 << 20 });
      const opened = await again.open();
      expect(opened).toEqual({ records: [first], warnings: [] });
      expect(idsIn([await again.read(first)])).toEqual(["e-0", "e-1"]);
      await again.close();
    });

    it("acknowledges a record written while an fdatasync runs only after a later one, and lets one fdatasync serve many", async () => {
      const faults = injectDiskFaults((file) => file.endsWith(".rows"));
      const log = new SpoolLog({ dir, segmentMaxBytes: 1 << 20 });
      await log.open();
      const held: Array<() => void> = [];
      faults.datasyncGate = () => new Promise<void>((resolve) => held.push(resolve));
      const settled: string[] = [];
      const track = (name: string, appended: Promise<unknown>) => appended.then(() => settled.push(name));
      const first = track("first", log.append(rowsOf(evs(0, 1)), 1));
      await until(() => held.length === 1); // the first fdatasync runs (held)
      const second = track("second", log.append(rowsOf(evs(1, 1)), 1));
      const third = track("third", log.append(rowsOf(evs(2, 1)), 1));
      await new Promise((resolve) => setTimeout(resolve, 50)); // both written meanwhile
      held.shift()!();
      await first;
      await new Promise((resolve) => setTimeout(resolve, 50));
      // The first fdatasync started before they were written: it does not cover them.
      expect(settled).toEqual(["first"]);
      expect(held).toHaveLength(1); // one fdatasync for both
      faults.datasyncGate = null;
      held.shift()!();
      await Promise.all([second, third]);
      expect(settled).toEqual(["first", "second", "third"]);
      await log.close();
    });

    it("gives back after a restart exactly the appends it acknowledged, in order, under concurrent appends and disk errors", async () => {
      const faults = injectDiskFaults((file) => file.endsWith(".rows"));
      let seed = 20261123;
      const random = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648) / 2_147_483_648;
      // Small segments: appends cross segment ends while others wait for their fdatasync.
      const log = new SpoolLog({ dir, segmentMaxBytes: 8 * 1024 });
      await log.open();
      const acknowledged: string[][] = [];
      const refused: string[][] = [];
      let next = 0;
      for (let round = 0; round < 80; round++) {
        const appends = Array.from({ length: 1 + Math.floor(random() * 4) }, () => {
          const events = evs(next, 1 + Math.floor(random() * 6));
          next += events.length;
          return events;
        });
        // One kind of fault at a time: a cut's own fdatasync must not fail here (that stops the log, tested below).
        const fault = random();
        if (fault < 0.25) faults.datasyncFailures = 1;
        else if (fault < 0.4) faults.writeFailures = 1;
        await Promise.all(
          appends.map((events) =>
            log.append(rowsOf(events), events.length).then(
              ({ payload }) => void acknowledged.push(idsIn([payload])),
              (error: unknown) => {
                expect(String(error)).toMatch(/EIO/);
                refused.push(ids(events));
              },
            ),
          ),
        );
        faults.datasyncFailures = 0;
        faults.writeFailures = 0;
      }
      await log.close();
      expect(refused.length).toBeGreaterThan(10);
      expect(acknowledged.length).toBeGreaterThan(50);

      const again = new SpoolLog({ dir, segmentMaxBytes: 8 * 1024 });
      const opened = await again.open();
      expect(opened.warnings).toEqual([]);
      expect(new Set(opened.records.map((r) => r.segment)).size).toBeGreaterThan(3);
      const readBack: string[][] = [];
      for (const record of opened.records) readBack.push(idsIn([await again.read(record)]));
      // Every acknowledged append, in the order acknowledged, and not one refused one.
      expect(readBack).toEqual(acknowledged);
      await again.close();
    });

    it("stops appending when the failed append cannot be cut back out, and says why", async () => {
      const { log, faults } = await logOnFailingDisk();
      faults.datasyncFailures = 1;
      faults.truncateFailures = 1;
      const refused = await log.append(rowsOf(evs(0, 3)), 3).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(WriteNotUndoneError);
      expect(log.failure).toBe((refused as Error).message);
      // The disk answers again, but a record behind the refused one's bytes would be read with them.
      await expect(log.append(rowsOf(evs(3, 1)), 1)).rejects.toBe(refused);
      await log.close();
    });
  });

  it("refuses a checkpoint it cannot read rather than replay from a guess", async () => {
    await fsp.writeFile(path.join(dir, CHECKPOINT_FILE), '{"segment":"x"}');
    await expect(new SpoolLog({ dir, segmentMaxBytes: 400 }).open()).rejects.toThrow(/not \{segment, offset\}/);
  });

  it("refuses segments of the earlier spool format rather than insert what it cannot read", async () => {
    await fsp.writeFile(path.join(dir, "spool-0000000000000001.log"), "msgpack records");
    await expect(new SpoolLog({ dir, segmentMaxBytes: 400 }).open()).rejects.toThrow(/earlier spool format \(spool-0000000000000001\.log/);
  });
});

/** An in-memory sink of ClickHouse's rows: keeps the event ids of each insert; `failing` makes inserts reject. */
class MemorySink implements RowSink {
  readonly name = "memory";
  inserts: string[][] = [];
  quarantined: RejectedRow[] = [];
  failing = false;
  quarantineFails = false;
  /** Whether start() rejects (the store is down at start-up). */
  startFails = false;
  starts = 0;
  attempts = 0;
  closed = false;
  async start(): Promise<void> {
    this.starts++;
    if (this.startFails) throw new Error("store down at start-up");
  }
  formatRows(events: readonly IngestEvent[], insertedAt: number): FormattedRows {
    return encodeInsertBody(events, insertedAt);
  }
  async insertRows(chunks: readonly Buffer[], rows: number): Promise<void> {
    this.attempts++;
    if (this.failing) throw new Error("store down");
    const inserted = idsIn(chunks);
    expect(inserted).toHaveLength(rows);
    this.inserts.push(inserted);
  }
  async quarantine(rows: readonly RejectedRow[]): Promise<void> {
    if (this.quarantineFails) throw new Error("store down");
    this.quarantined.push(...rows);
  }
  async write(events: readonly IngestEvent[]): Promise<void> {
    const rows = this.formatRows(events, Date.now());
    await this.insertRows(rows.chunks, rows.rows);
    await this.quarantine(rows.rejected);
  }
  async ready() {
    return { ok: true };
  }
  async close(): Promise<void> {
    this.closed = true;
  }
  get stored(): string[] {
    return this.inserts.flat();
  }
}

const quiet = { info() {}, warn() {}, error() {} };
const open: SpooledSink[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});

async function spooled(inner: RowSink, over: Partial<SpooledSinkOptions> = {}): Promise<SpooledSink> {
  const sink = new SpooledSink({
    inner,
    dir,
    segmentMaxBytes: 1 << 20,
    maxBytes: 1 << 20,
    insertMaxEvents: 1000,
    insertWaitMs: 20,
    memoryEvents: 10_000,
    closeDrainMs: 2000,
    retryBaseMs: 10,
    retryMaxMs: 40,
    logger: quiet,
    ...over,
  });
  open.push(sink);
  await sink.start();
  return sink;
}

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("SpooledSink", () => {
  it("acknowledges on the spool's fsync and inserts the waiting batches together, in order", async () => {
    const inner = new MemorySink();
    const sink = await spooled(inner, { insertWaitMs: 50 });
    await sink.write(evs(0, 3));
    await sink.write(evs(3, 2));
    expect(inner.inserts).toEqual([]); // durable in the spool, not yet inserted
    expect(sink.backlog()).toMatchObject({ events: 5, failingForMs: 0 });
    await until(() => inner.inserts.length === 1);
    expect(inner.stored).toEqual(ids(evs(0, 5)));
    await until(() => sink.backlog().events === 0);
    expect(sink.backlog().bytes).toBe(0);
  });

  it("inserts at insertMaxEvents without waiting, never splitting a batch", async () => {
    const inner = new MemorySink();
    const sink = await spooled(inner, { insertWaitMs: 60_000, insertMaxEvents: 5 });
    await sink.write(evs(0, 3));
    await sink.write(evs(3, 3));
    await sink.write(evs(6, 3));
    await until(() => inner.stored.length === 6);
    expect(inner.inserts.map((batch) => batch.length)).toEqual([3, 3]);
    expect(sink.backlog().events).toBe(3); // waits for its minute or more company
  });

  it("keeps acknowledging through an inner outage and inserts everything once it ends", async () => {
    const inner = new MemorySink();
    inner.failing = true;
    const sink = await spooled(inner, { insertWaitMs: 0 });
    for (let i = 0; i < 5; i++) await sink.write(evs(i * 10, 10));
    await until(() => inner.attempts >= 3);
    expect(sink.backlog().events).toBe(50);
    expect(sink.backlog().failingForMs).toBeGreaterThan(0);
    expect(await sink.ready()).toEqual({ ok: true });
    inner.failing = false;
    await until(() => sink.backlog().events === 0);
    expect(inner.stored).toEqual(ids(evs(0, 50)));
    expect(sink.backlog().failingForMs).toBe(0);
  });

  it("starts while the inner sink cannot, spools, and starts it once it can", async () => {
    const inner = new MemorySink();
    inner.startFails = true;
    const sink = await spooled(inner, { insertWaitMs: 0 });
    expect(await sink.ready()).toEqual({ ok: true });
    await sink.write(evs(0, 4));
    await until(() => inner.starts >= 3);
    expect(inner.attempts).toBe(0);
    expect(sink.backlog().failingForMs).toBeGreaterThan(0);
    inner.startFails = false;
    await until(() => inner.stored.length === 4);
    expect(inner.stored).toEqual(ids(evs(0, 4)));
  });

  it("does not retry a failing insert sooner because more batches arrive", async () => {
    const inner = new MemorySink();
    inner.failing = true;
    const sink = await spooled(inner, { insertWaitMs: 0, retryBaseMs: 60_000, retryMaxMs: 60_000, random: () => 0.5 });
    await sink.write(evs(0, 1));
    await until(() => inner.attempts === 1);
    for (let i = 1; i <= 20; i++) await sink.write(evs(i, 1));
    await new Promise((r) => setTimeout(r, 50));
    expect(inner.attempts).toBe(1);
    expect(sink.backlog().events).toBe(21);
  });

  it("refuses writes while full, and takes them again once inserts free room", async () => {
    const inner = new MemorySink();
    inner.failing = true;
    const sink = await spooled(inner, { maxBytes: 600, insertWaitMs: 0 });
    let accepted = 0;
    let refused: unknown = null;
    while (refused === null) {
      try {
        await sink.write(evs(accepted, 5));
        accepted += 5;
      } catch (error) {
        refused = error;
      }
    }
    expect(refused).toBeInstanceOf(SpoolFullError);
    expect((await sink.ready()).ok).toBe(false);
    inner.failing = false;
    await until(() => sink.backlog().events === 0);
    await sink.write(evs(accepted, 5));
    await until(() => inner.stored.length === accepted + 5);
    expect(inner.stored).toEqual(ids(evs(0, accepted + 5)));
  });

  it("is not ready, and refuses writes, once its log could not cut a failed append back out", async () => {
    const faults = injectDiskFaults((file) => file.endsWith(".rows"));
    const sink = await spooled(new MemorySink());
    faults.datasyncFailures = 1;
    faults.truncateFailures = 1;
    await expect(sink.write(evs(0, 2))).rejects.toBeInstanceOf(WriteNotUndoneError);
    const state = await sink.ready();
    expect(state.ok).toBe(false);
    expect(state.reason).toMatch(/cutting its bytes back out failed too/);
    await expect(sink.write(evs(2, 1))).rejects.toBeInstanceOf(WriteNotUndoneError);
  });

  it("reads batches back from disk when they were not kept in memory", async () => {
    const inner = new MemorySink();
    const sink = await spooled(inner, { memoryEvents: 4, insertWaitMs: 30 });
    await sink.write(evs(0, 3)); // kept
    await sink.write(evs(3, 3)); // over the memory bound: read back
    await until(() => inner.stored.length === 6);
    expect(inner.inserts[0]).toEqual(ids(evs(0, 6)));
  });

  it("quarantines an event that cannot be formatted before it acknowledges the batch, and spools the rest", async () => {
    const inner = new MemorySink();
    const sink = await spooled(inner, { insertWaitMs: 0 });
    const batch = evs(0, 3);
    batch[1]!.properties = { n: 10n };
    await sink.write(batch);
    expect(inner.quarantined.map((r) => [r.event_id, r.error.startsWith("cannot format row")])).toEqual([["e-1", true]]);
    await until(() => inner.stored.length === 2);
    expect(inner.stored).toEqual(["e-0", "e-2"]);
    await until(() => sink.backlog().events === 0);

    // Where the quarantine cannot take it, the write fails (the client is not acknowledged) and spools nothing.
    inner.quarantineFails = true;
    const next = evs(3, 2);
    next[0]!.properties = { n: 11n };
    await expect(sink.write(next)).rejects.toThrow(/store down/);
    expect(sink.backlog()).toMatchObject({ events: 0, bytes: 0 });
  });

  it("stamps rows with the time they were spooled (inserted_at, the ReplacingMergeTree version)", async () => {
    let clock = 5_000;
    const inner = new MemorySink();
    const rowsSeen: Buffer[][] = [];
    const insertRows = inner.insertRows.bind(inner);
    inner.insertRows = async (chunks, rows) => {
      rowsSeen.push([...chunks]);
      await insertRows(chunks, rows);
    };
    const sink = await spooled(inner, { insertWaitMs: 0, now: () => clock });
    await sink.write(evs(0, 1));
    clock = 9_000;
    await until(() => inner.stored.length === 1);
    expect(splitRows(rowsSeen.flat()).map((line) => rowFromLine(line).inserted_at)).toEqual([5_000]);
  });

  it("leaves what it could not insert for the next start, which inserts it exactly once", async () => {
    const inner = new MemorySink();
    inner.failing = true;
    const first = await spooled(inner, { closeDrainMs: 100, insertWaitMs: 0 });
    await first.write(evs(0, 4));
    await first.write(evs(4, 4));
    await first.close();
    expect(inner.closed).toBe(true);
    expect(inner.stored).toEqual([]);

    const recovered = new MemorySink();
    const second = await spooled(recovered, { insertWaitMs: 0 });
    await until(() => recovered.stored.length === 8);
    expect(recovered.stored).toEqual(ids(evs(0, 8)));
    await second.write(evs(8, 2));
    await until(() => recovered.stored.length === 10);
    await second.close();

    const third = new MemorySink();
    await spooled(third, { insertWaitMs: 0 });
    await new Promise((r) => setTimeout(r, 50));
    expect(third.stored).toEqual([]);
  });

  it("inserts what waits before it closes when the inner sink works", async () => {
    const inner = new MemorySink();
    const sink = await spooled(inner, { insertWaitMs: 60_000 });
    await sink.write(evs(0, 7));
    await sink.close();
    expect(inner.stored).toEqual(ids(evs(0, 7)));
    await expect(sink.write(evs(7, 1))).rejects.toThrow(/closing/);
  });
});

/**
 * The single-process default sink: newline-delimited JSON segment files under a directory.
 *
 * Each batch is one write() of whole lines followed by fdatasync(), and the batch is reported
 * durable only after that. A segment rotates when it reaches `maxBytes` or `maxAgeMs`. A crash
 * mid-write can leave a partial last line; that batch was never acknowledged, so start-up cuts
 * every segment back to its last complete line and every line in a segment parses. A write that
 * fails is cut back out of its segment before the batch is refused (writeDurably), so a later,
 * shorter batch never leaves lines of a refused one behind it; a disk that fails the cut too
 * stops the sink.
 */
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import type { IngestEvent } from "../common/event";
import { WriteNotUndoneError, syncDirectory, writeDurably } from "./durable-file";
import type { Sink } from "./sink";

export interface FileSinkOptions {
  dir: string;
  nodeId: string;
  maxBytes: number;
  maxAgeMs: number;
  now?: () => number;
}

export const SEGMENT_SUFFIX = ".ndjson";

/** One stored line. Times are ISO-8601 with milliseconds so the files read well by eye and by tools. */
export function formatEventLine(event: IngestEvent): string {
  return JSON.stringify({
    tenant_id: event.tenant_id,
    event_id: event.event_id,
    session_id: event.session_id,
    seq: event.seq,
    event_name: event.event_name,
    user_id: event.user_id,
    channel: event.channel,
    timestamp: new Date(event.timestamp).toISOString(),
    received_at: new Date(event.received_at).toISOString(),
    properties: event.properties,
  });
}

interface OpenSegment {
  handle: fsp.FileHandle;
  file: string;
  bytes: number;
  openedAt: number;
}

export class FileSink implements Sink {
  readonly name = "file";
  private segment: OpenSegment | null = null;
  private counter = 0;
  private closed = false;
  /** Set when a refused batch's bytes could not be cut back out of its segment: no more writes. */
  private stoppedBy: WriteNotUndoneError | null = null;
  private writing: Promise<void> = Promise.resolve();
  private readonly now: () => number;

  constructor(private readonly options: FileSinkOptions) {
    this.now = options.now ?? Date.now;
  }

  async start(): Promise<void> {
    await fsp.mkdir(this.options.dir, { recursive: true });
    await repairSegments(this.options.dir);
  }

  /** Writes run one at a time: each appends at the segment's end offset, which the previous one moved. */
  write(events: readonly IngestEvent[]): Promise<void> {
    const run = this.writing.then(() => this.writeNow(events));
    this.writing = run.catch(() => undefined);
    return run;
  }

  private async writeNow(events: readonly IngestEvent[]): Promise<void> {
    if (this.closed) throw new Error("file sink is closed");
    if (this.stoppedBy) throw this.stoppedBy;
    if (events.length === 0) return;
    let text = "";
    for (const event of events) text += formatEventLine(event) + "\n";
    const bytes = Buffer.from(text, "utf8");
    const segment = await this.segmentFor(bytes.length);
    try {
      await writeDurably(segment.handle, bytes, segment.bytes, segment.file);
    } catch (error) {
      if (error instanceof WriteNotUndoneError) this.stoppedBy = error;
      throw error;
    }
    segment.bytes += bytes.length;
  }

  async ready(): Promise<{ ok: boolean; reason?: string }> {
    if (this.closed) return { ok: false, reason: "file sink is closed" };
    if (this.stoppedBy) return { ok: false, reason: this.stoppedBy.message };
    try {
      await fsp.access(this.options.dir, fs.constants.W_OK);
      return { ok: true };
    } catch (error) {
      return { ok: false, reason: `data directory not writable: ${(error as Error).message}` };
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.closeSegment();
  }

  /** The segment the next write goes to, rotating first when size or age says so. */
  private async segmentFor(incomingBytes: number): Promise<OpenSegment> {
    const current = this.segment;
    if (current !== null) {
      const full = current.bytes > 0 && current.bytes + incomingBytes > this.options.maxBytes;
      const old = this.now() - current.openedAt >= this.options.maxAgeMs;
      if (!full && !old) return current;
      await this.closeSegment();
    }
    const openedAt = this.now();
    const stamp = new Date(openedAt).toISOString().replace(/[-:]/g, "").replace(/\..*$/, "");
    const file = path.join(
      this.options.dir,
      `events-${this.options.nodeId}-${stamp}-${process.pid}-${String(this.counter++).padStart(6, "0")}${SEGMENT_SUFFIX}`,
    );
    // "wx": never append to someone else's segment, even with a reused node id and pid.
    const handle = await fsp.open(file, "wx");
    // Make the new file's directory entry durable too, or an fsynced batch could vanish with it.
    await syncDirectory(this.options.dir);
    this.segment = { handle, file, bytes: 0, openedAt };
    return this.segment;
  }

  private async closeSegment(): Promise<void> {
    const segment = this.segment;
    if (segment === null) return;
    this.segment = null;
    await segment.handle.close();
  }
}

/** Cuts each segment back to its last newline: only an unacknowledged, half-written batch is lost. */
export async function repairSegments(dir: string): Promise<number> {
  let repaired = 0;
  for (const name of await fsp.readdir(dir)) {
    if (!name.endsWith(SEGMENT_SUFFIX)) continue;
    const file = path.join(dir, name);
    const handle = await fsp.open(file, "r+");
    try {
      const { size } = await handle.stat();
      if (size === 0) continue;
      const validLength = await lengthThroughLastNewline(handle, size);
      if (validLength < size) {
        await handle.truncate(validLength);
        await handle.sync();
        repaired++;
      }
    } finally {
      await handle.close();
    }
  }
  return repaired;
}

async function lengthThroughLastNewline(handle: fsp.FileHandle, size: number): Promise<number> {
  const chunk = Buffer.alloc(64 * 1024);
  let end = size;
  while (end > 0) {
    const start = Math.max(0, end - chunk.length);
    const { bytesRead } = await handle.read(chunk, 0, end - start, start);
    const newline = chunk.subarray(0, bytesRead).lastIndexOf(0x0a);
    if (newline >= 0) return start + newline + 1;
    end = start;
  }
  return 0;
}

/** Reads every event line of every segment in `dir`, oldest segment first (used by tests and tools). */
export async function readSegments(dir: string): Promise<Array<Record<string, unknown>>> {
  const names = (await fsp.readdir(dir)).filter((n) => n.endsWith(SEGMENT_SUFFIX)).sort();
  const rows: Array<Record<string, unknown>> = [];
  for (const name of names) {
    const text = await fsp.readFile(path.join(dir, name), "utf8");
    for (const line of text.split("\n")) if (line) rows.push(JSON.parse(line) as Record<string, unknown>);
  }
  return rows;
}

/**
 * The spool's on-disk log: numbered segment files of framed records, one record per durable
 * batch (its rows as the sink behind the spool will insert them: ClickHouse TabSeparated lines),
 * and a checkpoint saying how far the records have been committed to that sink.
 *
 * A record is [u32le payload bytes][u32le event count][u32le CRC-32 of the payload][payload]
 * (`zlib.crc32`, Node 20.15 and later: package.json's engines).
 * `append` writes one record and fdatasyncs before it resolves; a new segment's directory entry
 * is fsynced too, since fdatasync on the file does not make its name durable. Appends are
 * written one after another and share fdatasyncs (segment-appender.ts); one that fails is cut
 * back out of its segment before it is refused, so a refused record is never read back as
 * stored; a disk that fails the cut too stops the log. A crash can leave
 * a torn record at a segment's end: it was never acknowledged, so `open` cuts the segment back
 * to its last whole record. A record whose CRC does not match (a damaged disk, not a crash) ends
 * the scan of its segment the same way, and is logged as the loss it is.
 *
 * Segments are written in full before they take records (zeros up to `segmentMaxBytes`, the
 * next one prepared in the background while the current one fills): an append then overwrites
 * blocks the file already has and leaves its size alone, so its fdatasync flushes data and no
 * file-system metadata (no journal commit on ext4). In the bench (ext4 with a journal) the
 * spool's fdatasync went from ~1.75 to ~1.2 ms (p50) and single-event POSTs from 7,981 to 10,606
 * req/s (medians of three; bench/README.md, "Fourteenth round"). Where a segment's records end,
 * only zeros follow.
 *
 * The checkpoint (`committed.json`, replaced by rename) may lag behind what the sink holds (a
 * crash between an insert and the checkpoint): those records are inserted again after a
 * restart, which the events table's ReplacingMergeTree and event ids make harmless. It never
 * runs ahead, because it is written only after the sink committed.
 */
import fsp from "node:fs/promises";
import path from "node:path";
import zlib from "node:zlib";
import { syncDirectory, writeFully } from "../durable-file";
import { SegmentAppender, type PlacedWrite } from "./segment-appender";

export const RECORD_HEADER_BYTES = 12;
const SEGMENT_PATTERN = /^spool-(\d{16})\.rows$/;
/** A segment written ahead in full, not yet taking records (renamed to `.rows` when it does). */
const PREPARED_SUFFIX = ".next";
const ZEROS = Buffer.alloc(1 << 20);
/** Segments of the first spool format (msgpack batches of events), which this version cannot insert. */
const EARLIER_FORMAT_SEGMENT = /^spool-\d{16}\.log$/;
export const CHECKPOINT_FILE = "committed.json";

/** A place in the log: a segment's number and a byte offset in it. */
export interface SpoolPosition {
  segment: number;
  offset: number;
}

/** Where one record lies, and how many events it holds. */
export interface SpoolRecord {
  segment: number;
  /** Offset of the record's header. */
  offset: number;
  /** The whole record, header included. */
  bytes: number;
  count: number;
}

export interface SpoolLogWarning {
  segment: string;
  at: number;
  problem: string;
}

export function segmentName(segment: number): string {
  return `spool-${String(segment).padStart(16, "0")}.rows`;
}

/** One record's bytes: the header, then the payload's parts one after another. */
export function frameRecord(payload: readonly Uint8Array[], count: number): Buffer {
  let length = 0;
  for (const part of payload) length += part.length;
  const frame = Buffer.allocUnsafe(RECORD_HEADER_BYTES + length);
  let crc = 0;
  let at = RECORD_HEADER_BYTES;
  for (const part of payload) {
    crc = zlib.crc32(part, crc);
    frame.set(part, at);
    at += part.length;
  }
  frame.writeUInt32LE(length, 0);
  frame.writeUInt32LE(count, 4);
  frame.writeUInt32LE(crc, 8);
  return frame;
}

/**
 * The whole records of a segment's bytes from `from` on, and where the last of them ends. The
 * records end cleanly where only zeros follow (the rest of a segment written ahead). A short or
 * damaged record stops the scan (`problem` says which); nothing after it is trusted.
 */
export function scanRecords(data: Buffer, segment: number, from: number): { records: SpoolRecord[]; end: number; problem?: string } {
  const records: SpoolRecord[] = [];
  let at = from;
  while (at < data.length) {
    if (zerosFrom(data, at)) return { records, end: at };
    if (data.length - at < RECORD_HEADER_BYTES) return { records, end: at, problem: "torn record header" };
    const length = data.readUInt32LE(at);
    const count = data.readUInt32LE(at + 4);
    const crc = data.readUInt32LE(at + 8);
    const start = at + RECORD_HEADER_BYTES;
    if (data.length - start < length) return { records, end: at, problem: "torn record" };
    if (count === 0) return { records, end: at, problem: "record header without events" };
    if (zlib.crc32(data.subarray(start, start + length)) !== crc) {
      // Only zeros after it: the last append, which a crash cut short (or damage, which looks the same there).
      const last = zerosFrom(data, start + length);
      return { records, end: at, problem: last ? "last record incomplete (an append cut short by a crash, or damaged)" : "record fails its CRC" };
    }
    records.push({ segment, offset: at, bytes: RECORD_HEADER_BYTES + length, count });
    at = start + length;
  }
  return { records, end: at };
}

function zerosFrom(data: Buffer, from: number): boolean {
  for (let i = from; i < data.length; i++) if (data[i] !== 0) return false;
  return true;
}

export interface SpoolLogOptions {
  dir: string;
  /** A segment closes once it holds this many bytes (a record is never split). */
  segmentMaxBytes: number;
}

export class SpoolLog {
  /** The segment appends go to. */
  private current: SegmentAppender | null = null;
  /** Bytes of each segment still on disk (the committed ones are deleted); the current one's are its appender's. */
  private readonly sizes = new Map<number, number>();
  private checkpoint: SpoolPosition = { segment: 0, offset: 0 };
  /** Placing appends (segment rotation, the write), one after another. */
  private placing: Promise<unknown> = Promise.resolve();
  /** The last append's outcome: appends resolve in log order. */
  private lastSettled: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** The next segment being written ahead (null if that failed: it is written when needed). */
  private prepared: Promise<{ segment: number; file: string } | null> = Promise.resolve(null);

  constructor(private readonly options: SpoolLogOptions) {}

  /** Why appends are refused for good (until a restart), if they are. */
  get failure(): string | null {
    return this.current?.stoppedBy?.message ?? null;
  }

  /** Bytes on disk in segments not yet wholly committed. */
  get bytes(): number {
    let total = 0;
    // The segment being appended to counts as far as its appender has written.
    for (const [segment, size] of this.sizes) total += segment === this.current?.segment ? this.current.bytes : size;
    // The committed head of the first live segment no longer counts.
    return this.sizes.has(this.checkpoint.segment) ? total - this.checkpoint.offset : total;
  }

  /**
   * Reads the log: records after the checkpoint, oldest first, and what had to be cut. Segments
   * wholly before the checkpoint are deleted; appends go to a new segment.
   */
  async open(): Promise<{ records: SpoolRecord[]; warnings: SpoolLogWarning[] }> {
    const { dir } = this.options;
    await fsp.mkdir(dir, { recursive: true });
    const checkpoint = await readCheckpoint(dir);
    this.checkpoint = checkpoint;
    // A segment written ahead but never renamed held no records.
    for (const name of await fsp.readdir(dir)) {
      if (name.endsWith(PREPARED_SUFFIX)) await fsp.rm(path.join(dir, name), { force: true });
    }
    const names = await fsp.readdir(dir);
    const earlier = names.filter((name) => EARLIER_FORMAT_SEGMENT.test(name));
    if (earlier.length > 0) {
      throw new Error(
        `spool ${dir} holds ${earlier.length} segment(s) of an earlier spool format (${earlier[0]}, ...): ` +
          "start the version that wrote them until its spool is empty, or move them away",
      );
    }
    const segments = names
      .map((name) => SEGMENT_PATTERN.exec(name))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    const records: SpoolRecord[] = [];
    const warnings: SpoolLogWarning[] = [];
    for (const segment of segments) {
      const file = path.join(dir, segmentName(segment));
      if (segment < checkpoint.segment) {
        await fsp.rm(file, { force: true });
        continue;
      }
      const data = await fsp.readFile(file);
      const from = segment === checkpoint.segment ? Math.min(checkpoint.offset, data.length) : 0;
      if (segment === checkpoint.segment) this.checkpoint = { segment, offset: from };
      const scan = scanRecords(data, segment, from);
      if (scan.problem !== undefined) {
        warnings.push({ segment: segmentName(segment), at: scan.end, problem: `${scan.problem}; ${data.length - scan.end} bytes cut` });
        await fsp.truncate(file, scan.end);
      }
      records.push(...scan.records);
      this.sizes.set(segment, scan.end);
    }
    await this.openSegment((segments.at(-1) ?? 0) + 1);
    return { records, warnings };
  }

  /**
   * Appends one record (the payload's parts, joined) and resolves once it is on disk
   * (fdatasync), with where it lies and the payload as one buffer. Records are written one after
   * another, while earlier ones may still wait for their fdatasync (segment-appender.ts); appends
   * resolve in the order they were made.
   */
  append(payload: readonly Uint8Array[], count: number): Promise<{ record: SpoolRecord; payload: Buffer }> {
    const frame = frameRecord(payload, count);
    const placed = this.placing.then(() => this.place(frame));
    this.placing = placed.catch(() => undefined);
    const previous = this.lastSettled;
    const run = (async () => {
      let outcome: { ok: true; record: SpoolRecord } | { ok: false; error: unknown };
      try {
        const { appender, write } = await placed;
        await appender.durableThrough(write);
        outcome = { ok: true, record: { segment: appender.segment, offset: write.offset, bytes: frame.length, count } };
      } catch (error) {
        outcome = { ok: false, error };
      }
      await previous;
      if (!outcome.ok) throw outcome.error;
      return { record: outcome.record, payload: frame.subarray(RECORD_HEADER_BYTES) };
    })();
    this.lastSettled = run.catch(() => undefined);
    return run;
  }

  /** Writes the frame at the log's end, first moving to a new segment when this one is full. */
  private async place(frame: Buffer): Promise<{ appender: SegmentAppender; write: PlacedWrite }> {
    if (this.closed || !this.current) throw new Error("spool log is closed");
    const current = this.current;
    if (current.stoppedBy) throw current.stoppedBy;
    if (current.bytes > 0 && current.bytes + frame.length > this.options.segmentMaxBytes) {
      // Its writes are durable (or cut back out) before its file is closed.
      await current.settle();
      if (current.stoppedBy) throw current.stoppedBy;
      this.sizes.set(current.segment, current.bytes);
      await current.close();
      await this.openSegment(current.segment + 1);
    }
    const appender = this.current!;
    return { appender, write: await appender.write(frame) };
  }

  /** A record's payload, read back from its segment. */
  async read(record: SpoolRecord): Promise<Buffer> {
    const handle = await fsp.open(path.join(this.options.dir, segmentName(record.segment)), "r");
    try {
      const payload = Buffer.allocUnsafe(record.bytes - RECORD_HEADER_BYTES);
      const { bytesRead } = await handle.read(payload, 0, payload.length, record.offset + RECORD_HEADER_BYTES);
      if (bytesRead !== payload.length) throw new Error(`spool record at ${segmentName(record.segment)}:${record.offset} is short`);
      return payload;
    } finally {
      await handle.close();
    }
  }

  /**
   * Everything before `position` is in the sink: record that, and delete the segments it
   * leaves wholly behind (never the one being appended to).
   */
  async commit(position: SpoolPosition): Promise<void> {
    const { dir } = this.options;
    const temporary = path.join(dir, `${CHECKPOINT_FILE}.tmp`);
    await fsp.writeFile(temporary, JSON.stringify(position));
    await fsp.rename(temporary, path.join(dir, CHECKPOINT_FILE));
    this.checkpoint = position;
    for (const segment of [...this.sizes.keys()]) {
      if (segment >= position.segment || segment === this.current?.segment) continue;
      await fsp.rm(path.join(dir, segmentName(segment)), { force: true });
      this.sizes.delete(segment);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.placing;
    await this.lastSettled;
    await this.prepared;
    if (this.current) {
      await this.current.settle();
      await this.current.close();
    }
    this.current = null;
  }

  /** Makes `segment` the one appends go to: the one written ahead if it is ready, else written now. */
  private async openSegment(segment: number): Promise<void> {
    const { dir } = this.options;
    const ahead = await this.prepared;
    const source = ahead?.segment === segment ? ahead.file : await this.writeAhead(segment);
    const file = path.join(dir, segmentName(segment));
    await fsp.rename(source, file);
    const handle = await fsp.open(file, "r+");
    await syncDirectory(dir);
    this.current = new SegmentAppender(segment, file, handle);
    this.sizes.set(segment, 0);
    const next = segment + 1;
    this.prepared = this.writeAhead(next).then(
      (prepared) => ({ segment: next, file: prepared }),
      () => null,
    );
  }

  /** A new file of `segmentMaxBytes` zeros, on disk, for `segment` to take records in later; its path. */
  private async writeAhead(segment: number): Promise<string> {
    const file = path.join(this.options.dir, segmentName(segment) + PREPARED_SUFFIX);
    // "wx": never write over a file this log did not just make.
    const handle = await fsp.open(file, "wx");
    try {
      for (let at = 0; at < this.options.segmentMaxBytes; at += ZEROS.length) {
        await writeFully(handle, ZEROS.subarray(0, Math.min(ZEROS.length, this.options.segmentMaxBytes - at)), at);
      }
      await handle.datasync();
    } finally {
      await handle.close();
    }
    return file;
  }
}

async function readCheckpoint(dir: string): Promise<SpoolPosition> {
  let text: string;
  try {
    text = await fsp.readFile(path.join(dir, CHECKPOINT_FILE), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { segment: 0, offset: 0 };
    throw error;
  }
  const value = JSON.parse(text) as Partial<SpoolPosition>;
  if (!Number.isSafeInteger(value.segment) || !Number.isSafeInteger(value.offset)) {
    throw new Error(`spool checkpoint ${path.join(dir, CHECKPOINT_FILE)} is not {segment, offset}: ${text.slice(0, 200)}`);
  }
  return { segment: value.segment!, offset: value.offset! };
}

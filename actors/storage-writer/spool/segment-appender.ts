/**
 * Appends records to one open spool segment with group commit at the file: writes go in order,
 * one at a time, each at the end of the last; one fdatasync runs at a time and makes durable
 * every write that finished before it started. So a batch can be written while the previous
 * one's fdatasync is still running, and one fdatasync serves all the writes it finds. (On the
 * bench's ext4, with segments written ahead in full, this took single-event POSTs with the spool
 * from 9,159 to 12,087 req/s, medians of three; bench/README.md, "Fourteenth round".)
 *
 * A refused append leaves none of its bytes behind:
 * - a write that fails is cut back out of the file (ftruncate to where it began, then
 *   fdatasync) before it is refused; nothing was written after it (writes are one at a time);
 * - an fdatasync that fails refuses every write it covered and every write after them (they lie
 *   behind the failed ones): the file is cut back to what the last good fdatasync made durable,
 *   in the write order, so no write runs during the cut, and those appends are refused.
 * If a cut fails too, the appender stops (`stoppedBy`): later appends would land behind bytes of
 * refused ones. The log's scan at the next start reads records only up to the first one that is
 * not whole, so even then a refused record is read only if its own bytes all reached the disk.
 */
import type fsp from "node:fs/promises";
import { cutBack, writeFully, type WriteNotUndoneError } from "../durable-file";

/** Where a write landed, and how many cuts had been made before it (for `durableThrough`). */
export interface PlacedWrite {
  offset: number;
  end: number;
  cutsBefore: number;
}

export class SegmentAppender {
  /** Where the next write goes: the end of the writes so far. */
  bytes: number;
  /** Everything before this offset is on disk. */
  private durable: number;
  /** Cuts after failed fdatasyncs: where each cut the file back to, and the error that refused the writes behind it. */
  private readonly cuts: Array<{ at: number; error: unknown }> = [];
  /** Writes and cuts, one after another. */
  private writing: Promise<unknown> = Promise.resolve();
  private syncing: Promise<void> | null = null;
  /** Set when a cut failed: no more writes. */
  stoppedBy: WriteNotUndoneError | null = null;

  constructor(
    readonly segment: number,
    private readonly file: string,
    private readonly handle: fsp.FileHandle,
  ) {
    this.bytes = 0;
    this.durable = 0;
  }

  /** Writes `frame` at the end, after the writes before it; resolves once it is written (not yet durable). */
  write(frame: Uint8Array): Promise<PlacedWrite> {
    return this.inOrder(async () => {
      if (this.stoppedBy) throw this.stoppedBy;
      const offset = this.bytes;
      try {
        await writeFully(this.handle, frame, offset);
      } catch (error) {
        // Only this write's bytes can be there: cut to where it began.
        await this.cutTo(offset, error);
        throw error;
      }
      this.bytes = offset + frame.length;
      return { offset, end: this.bytes, cutsBefore: this.cuts.length };
    });
  }

  /** Resolves once the write is on disk; rejects if it was cut back out (or the appender stopped). */
  async durableThrough(placed: PlacedWrite): Promise<void> {
    for (;;) {
      for (let i = placed.cutsBefore; i < this.cuts.length; i++) {
        if (this.cuts[i]!.at < placed.end) throw this.cuts[i]!.error;
      }
      if (this.durable >= placed.end) return;
      if (this.stoppedBy) throw this.stoppedBy;
      await this.sync();
    }
  }

  /** Every write so far durable or cut back out (before the segment is closed). */
  async settle(): Promise<void> {
    await this.writing;
    while (this.durable < this.bytes && !this.stoppedBy) await this.sync();
  }

  close(): Promise<void> {
    return this.handle.close();
  }

  /** The fdatasync in progress, or a new one: it covers every write finished before it starts. */
  private sync(): Promise<void> {
    this.syncing ??= (async () => {
      const target = this.bytes;
      try {
        await this.handle.datasync();
        if (target > this.durable) this.durable = target;
      } catch (error) {
        // What it covered may or may not be on disk: cut everything not known durable, in the
        // write order (writes queued before the cut are cut with it).
        await this.inOrder(async () => {
          if (this.bytes <= this.durable) return;
          const at = this.durable;
          await this.cutTo(at, error);
          this.cuts.push({ at, error });
        }).catch(() => undefined);
      } finally {
        this.syncing = null;
      }
    })();
    return this.syncing;
  }

  /** Cuts the file back to `at` (durable-file.ts); if that fails, stops for good. */
  private async cutTo(at: number, error: unknown): Promise<void> {
    try {
      await cutBack(this.handle, at, this.file, error);
    } catch (notUndone) {
      this.stoppedBy = notUndone as WriteNotUndoneError;
      throw notUndone;
    }
    this.bytes = at;
  }

  private inOrder<T>(job: () => Promise<T>): Promise<T> {
    const run = this.writing.then(job);
    this.writing = run.catch(() => undefined);
    return run;
  }
}

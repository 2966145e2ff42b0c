/**
 * A sink that makes batches durable in a local spool (SpoolLog: append + fdatasync) and moves
 * them into the sink behind it (ClickHouse) in the background, in large inserts.
 *
 * Why: in single-process mode a client's acknowledgement otherwise waits for a ClickHouse
 * insert, so each ack costs an insert's latency, every few thousand events make a new part
 * (ClickHouse spent about twice the CPU per event on bench (a)'s ~2,500-row inserts as on the
 * spool's 20,000-row ones; bench/README.md), and a ClickHouse outage is a 503 for every client. With the spool an ack waits for one
 * fdatasync shared by everything that arrived meanwhile, inserts carry up to `insertMaxEvents`,
 * and an outage only grows the spool, up to `maxBytes` (then writes are refused: 503). The
 * spool is to a single node what JetStream is to a cluster.
 *
 * A batch is formatted once, when it arrives, into the rows the insert will carry
 * (`RowSink.formatRows`: TabSeparated lines stamped with the append time as `inserted_at`), and
 * the spool keeps those bytes, on disk and for the drainer, not the events: an insert is the
 * waiting records' bytes one after another, and no event object outlives its request (events
 * held until their insert were promoted out of V8's young generation and made the node's GC
 * work; packing them for the log cost more than formatting them). An event that cannot be
 * formatted at all (properties with a BigInt, which neither the HTTP nor the WebSocket decoder
 * lets through) goes to the inner sink's quarantine before the batch is acknowledged.
 *
 * Records reach the inner sink in the order they were appended, never more than one insert at
 * a time, so the checkpoint is a single position. An insert that fails is retried (backoff up
 * to `retryMaxMs`) until it succeeds: every event in the spool was acknowledged. Rows the inner
 * sink refuses as data are its business (ClickHouse quarantines them in the dead-letter table).
 * Records stay in memory for the drainer while `memoryEvents` allows; past that (a long outage)
 * they are read back from disk when their turn comes, as after a restart.
 */
import type { IngestEvent } from "../../common/event";
import type { EventCountQuery, EventCounts } from "../../common/event-counts";
import { backoffDelay, Sleeper } from "../../common/backoff";
import type { RowSink, Sink, SinkBacklog } from "../sink";
import { SpoolLog, type SpoolRecord } from "./spool-log";

export interface SpooledSinkLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface SpooledSinkOptions {
  inner: RowSink;
  dir: string;
  segmentMaxBytes: number;
  /** Writes are refused while the spool holds this many bytes not yet in the inner sink. */
  maxBytes: number;
  /** Largest insert into the inner sink, in events (a record is never split, so one may exceed it). */
  insertMaxEvents: number;
  /** An insert starts once this many ms passed since the oldest waiting batch, or at insertMaxEvents. */
  insertWaitMs: number;
  /** Events kept in memory for the drainer; beyond, they are read back from disk. */
  memoryEvents: number;
  /** How long `close` keeps inserting what is left before leaving it in the spool for the next start. */
  closeDrainMs: number;
  /** Failed inserts are retried after capped exponential backoff with full jitter (backoffDelay): base, cap, and its random source (tests). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  random?: () => number;
  logger: SpooledSinkLogger;
  now?: () => number;
}

interface Waiting {
  record: SpoolRecord;
  /** The record's rows; null when not kept in memory (recovered at start, or over `memoryEvents`). */
  payload: Buffer | null;
  appendedAt: number;
}

export class SpoolFullError extends Error {}

export class SpooledSink implements Sink {
  readonly name: string;
  /**
   * Two batches at once: one is formatted and written while the other's fdatasync runs (the log
   * writes them in order and lets one fdatasync serve both); the batcher groups the rest.
   */
  readonly maxConcurrentWrites = 2;
  readonly countEvents?: (query: EventCountQuery) => Promise<EventCounts>;
  private readonly log: SpoolLog;
  private readonly waiting: Waiting[] = [];
  private waitingEvents = 0;
  private eventsInMemory = 0;
  private failingSince: number | null = null;
  /** Set by `close`: no more writes; the drainer inserts what waits without lingering. */
  private stopping = false;
  /** Set once `close` stops waiting: the drainer ends after its current attempt. */
  private stopped = false;
  private innerStarted = false;
  /** Ends the drainer's wait for batches (a write, or close). Retry sleeps do not end on a write. */
  private arrived: (() => void) | null = null;
  private readonly retrySleep = new Sleeper();
  private drainer: Promise<void> | null = null;
  private readonly now: () => number;

  constructor(private readonly options: SpooledSinkOptions) {
    this.name = options.inner.name;
    this.log = new SpoolLog({ dir: options.dir, segmentMaxBytes: options.segmentMaxBytes });
    this.now = options.now ?? Date.now;
    const inner = options.inner;
    if (inner.countEvents) this.countEvents = (query) => inner.countEvents!(query);
  }

  async start(): Promise<void> {
    const { records, warnings } = await this.log.open();
    for (const warning of warnings) this.options.logger.error({ ...warning }, "spool segment cut back to its last whole record");
    const at = this.now();
    for (const record of records) {
      this.waiting.push({ record, payload: null, appendedAt: at });
      this.waitingEvents += record.count;
    }
    if (records.length > 0) {
      this.options.logger.info({ events: this.waitingEvents, bytes: this.log.bytes }, "spool holds events from before the restart; inserting them");
    }
    // ClickHouse down at start-up is an outage like any other: the spool takes writes and the
    // drainer starts the inner sink (migrations included) once it answers.
    try {
      await this.options.inner.start();
      this.innerStarted = true;
    } catch (error) {
      this.failingSince = this.now();
      this.options.logger.error({ err: error }, "the sink behind the spool did not start; spooling until it does");
    }
    this.drainer = this.drain();
  }

  async write(events: readonly IngestEvent[]): Promise<void> {
    if (this.stopping) throw new Error("spool is closing");
    if (events.length === 0) return;
    if (this.log.bytes >= this.options.maxBytes) {
      throw new SpoolFullError(`spool full: ${this.log.bytes} bytes wait for the ${this.name} sink (SPOOL_MAX_BYTES ${this.options.maxBytes})`);
    }
    const rows = this.options.inner.formatRows(events, this.now());
    // Never in practice (the decoders refuse what cannot be formatted), and then durable before the ack.
    if (rows.rejected.length > 0) await this.options.inner.quarantine(rows.rejected);
    if (rows.rows === 0) return;
    const { record, payload } = await this.log.append(rows.chunks, rows.rows);
    const keep = this.eventsInMemory + rows.rows <= this.options.memoryEvents;
    this.waiting.push({ record, payload: keep ? payload : null, appendedAt: this.now() });
    this.waitingEvents += rows.rows;
    if (keep) this.eventsInMemory += rows.rows;
    this.arrived?.();
  }

  async ready(): Promise<{ ok: boolean; reason?: string }> {
    const failure = this.log.failure;
    if (failure !== null) return { ok: false, reason: failure };
    if (this.log.bytes >= this.options.maxBytes) {
      return { ok: false, reason: `spool full (${this.log.bytes} bytes); the ${this.name} sink is failing or behind` };
    }
    return { ok: true };
  }

  backlog(): SinkBacklog {
    return {
      events: this.waitingEvents,
      bytes: this.log.bytes,
      failingForMs: this.failingSince === null ? 0 : this.now() - this.failingSince,
    };
  }

  /** Stops taking writes, inserts what it can within `closeDrainMs`, and leaves the rest on disk. */
  async close(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.log.close();
    // One prompt attempt at what waits, whether the drainer lingers or backs off.
    this.wakeDrainer();
    if (this.drainer) {
      await Promise.race([this.drainer, delay(this.options.closeDrainMs)]);
      this.stopped = true;
      this.wakeDrainer();
      // An insert still running past the deadline is abandoned with the inner sink's close; its
      // records stay in the spool (the checkpoint moves only after a commit).
      await Promise.race([this.drainer, delay(1_000)]);
    }
    if (this.waitingEvents > 0) {
      this.options.logger.warn({ events: this.waitingEvents }, "events left in the spool; they are inserted at the next start");
    }
    await this.options.inner.close();
  }

  private async drain(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      if (this.waiting.length === 0) {
        if (this.stopping) return;
        await this.nextArrival(null);
        continue;
      }
      const due = this.waiting[0]!.appendedAt + this.options.insertWaitMs - this.now();
      if (!this.stopping && this.waitingEvents < this.options.insertMaxEvents && due > 0) {
        await this.nextArrival(due);
        continue;
      }
      const taken = this.take();
      try {
        if (!this.innerStarted) {
          await this.options.inner.start();
          this.innerStarted = true;
        }
        await this.options.inner.insertRows(await this.payloadsOf(taken), taken.reduce((n, entry) => n + entry.record.count, 0));
      } catch (error) {
        this.failingSince ??= this.now();
        const retryInMs = backoffDelay(++failures, this.options.retryBaseMs ?? 100, this.options.retryMaxMs ?? 5_000, this.options.random);
        this.options.logger.error({ err: error, events: this.waitingEvents, retryInMs }, "spool insert failed; retrying");
        await this.retrySleep.sleep(retryInMs);
        continue;
      }
      failures = 0;
      if (this.failingSince !== null) {
        this.options.logger.info({ failedForMs: this.now() - this.failingSince }, "spool inserts succeed again");
        this.failingSince = null;
      }
      const last = taken.at(-1)!.record;
      try {
        await this.log.commit({ segment: last.segment, offset: last.offset + last.bytes });
      } catch (error) {
        // The rows are in the sink; a stale checkpoint only means inserting them again after a restart.
        this.options.logger.error({ err: error }, "spool checkpoint not written");
      }
      this.waiting.splice(0, taken.length);
      for (const entry of taken) {
        this.waitingEvents -= entry.record.count;
        if (entry.payload) this.eventsInMemory -= entry.record.count;
      }
    }
  }

  /** The oldest waiting batches, up to insertMaxEvents (at least one). */
  private take(): Waiting[] {
    let events = 0;
    let end = 0;
    while (end < this.waiting.length && (end === 0 || events + this.waiting[end]!.record.count <= this.options.insertMaxEvents)) {
      events += this.waiting[end]!.record.count;
      end++;
    }
    return this.waiting.slice(0, end);
  }

  private async payloadsOf(taken: readonly Waiting[]): Promise<Buffer[]> {
    const payloads: Buffer[] = [];
    for (const entry of taken) payloads.push(entry.payload ?? (await this.log.read(entry.record)));
    return payloads;
  }

  private wakeDrainer(): void {
    this.arrived?.();
    this.retrySleep.wakeAll();
  }

  /** Resolves on the next write (or close), or after `ms` (null: no time limit). */
  private nextArrival(ms: number | null): Promise<void> {
    return new Promise((resolve) => {
      const timer = ms === null ? null : setTimeout(done, ms);
      this.arrived = done;
      function done() {
        if (timer) clearTimeout(timer);
        resolve();
      }
    });
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

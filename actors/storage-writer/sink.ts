import type { IngestEvent } from "../common/event";
import type { EventCountQuery, EventCounts } from "../common/event-counts";

/**
 * Where storage-writer puts a closed batch. `write` resolves only once the batch is durable
 * (fsynced file, committed ClickHouse insert); the caller acknowledges nothing before that.
 * A sink never partially succeeds silently: it either resolves (every event durable, or
 * explicitly quarantined and counted) or rejects (nothing should be treated as durable).
 */
export interface Sink {
  readonly name: string;
  /**
   * Writes that may run at once (default 1). A sink says more only when overlapping writes are
   * safe and independent (each ClickHouse INSERT makes its own part); a file sink appends to
   * one segment and stays at 1.
   */
  readonly maxConcurrentWrites?: number;
  /** Prepare (open files, run migrations). Called once before the first write. */
  start(): Promise<void>;
  write(events: readonly IngestEvent[]): Promise<void>;
  /** Whether the sink can take writes now; used by /ready. */
  ready(): Promise<{ ok: boolean; reason?: string }>;
  /**
   * Counts of the events it stored (GET /v1/metrics), for sinks that can query what they hold
   * (ClickHouse); the file sink has none.
   */
  countEvents?(query: EventCountQuery): Promise<EventCounts>;
  /** What a sink holds that is durable but not yet where it stores events (the spool), for /ready and metrics. */
  backlog?(): SinkBacklog;
  /** Finish in-flight writes and release resources. */
  close(): Promise<void>;
}

export interface SinkBacklog {
  events: number;
  bytes: number;
  /** How long moving the backlog on has been failing, ms (0: it is not). */
  failingForMs: number;
}

/** A row that can never be inserted, on its way to quarantine (ClickHouse's dead-letter table). */
export interface RejectedRow {
  tenant_id: string;
  event_id: string;
  /** What was refused, as readable text (the row as JSON; an unserialisable event as inspected). */
  raw: string;
  error: string;
}

/** A batch in the sink's own insert format: newline-terminated rows in chunks of whole rows. */
export interface FormattedRows {
  chunks: Buffer[];
  bytes: number;
  /** Rows in the chunks: the batch's events but those in `rejected`. */
  rows: number;
  /** Events that cannot be formatted (properties with a BigInt, a cycle). */
  rejected: RejectedRow[];
}

/**
 * A sink whose rows can be formatted ahead of the insert and kept as bytes: the spool stores a
 * batch once, in the form the insert will carry, so nothing is encoded twice and no event object
 * waits in memory for its insert.
 */
export interface RowSink extends Sink {
  formatRows(events: readonly IngestEvent[], insertedAt: number): FormattedRows;
  /** Inserts formatted rows; rows refused as data are quarantined, as `write` does. */
  insertRows(chunks: readonly Buffer[], rows: number): Promise<void>;
  /** Quarantines rows that cannot be inserted; resolves once they are durable there. */
  quarantine(rows: readonly RejectedRow[]): Promise<void>;
}

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

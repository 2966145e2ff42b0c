/**
 * One node's part of the status page: what it runs and how it is doing, read from the product's
 * own metrics (actors/common/metrics.ts) plus process figures. Free of Moleculer: the service
 * passes in the metric registry as a lookup, so this is testable without a broker.
 */
import { METRIC } from "../common/metrics";
import { PRODUCT_VERSION } from "../common/product-version";

/** One labelled value of a metric as Moleculer's registry snapshots it. */
export interface MetricItem {
  labels?: Record<string, unknown>;
  /** Counters and gauges. */
  value?: number | null;
  /** Histograms with quantiles (over the metric's time window). */
  quantiles?: Record<string, number | null | undefined>;
}

/** A metric's items by name; no items for a metric that is not registered. */
export type MetricLookup = (name: string) => readonly MetricItem[];

export interface NodeStatus {
  nodeID: string;
  /** Product services this node runs. */
  services: string[];
  /** The product's version (package.json). */
  version: string;
  nodeVersion: string;
  pid: number;
  startedAt: string;
  uptimeSeconds: number;
  memoryMB: { rss: number; heapUsed: number };
  /** p99 of the event loop's delay over the last sampling window; null before the first one. */
  eventLoopDelayP99Ms: number | null;
  /** Totals since the node started. */
  events: { received: number; accepted: number; rejected: number; duplicates: number };
  /** Over about the last minute; null until two samples exist. */
  perSecond: { accepted: number | null; stored: number | null };
  storage: {
    rows: number;
    commits: number;
    failedCommits: number;
    pendingEvents: number;
    commitP99Ms: number | null;
    /** A spooled ClickHouse sink's backlog (SPOOL_DIR); null on nodes without a spool. */
    spool: { events: number; bytes: number; failingSeconds: number } | null;
  };
  /** JetStream messages each consumer has not processed (cluster mode; empty otherwise). */
  streamPending: Record<string, number>;
  forwarder: { forwarded: number; failures: number; dropped: number; queuedEvents: number; circuitOpen: boolean };
  activeSessionMailboxes: number;
  webSocketConnections: number;
}

export interface NodeStatusInput {
  nodeID: string;
  services: string[];
  startedAtMs: number;
  nowMs: number;
  memory: { rss: number; heapUsed: number };
  eventLoopDelayP99Ms: number | null;
  perSecond: NodeStatus["perSecond"];
  metric: MetricLookup;
}

const MB = 1024 * 1024;

/** Sum of a counter's or gauge's values over all its labels. */
export function metricTotal(metric: MetricLookup, name: string): number {
  let total = 0;
  for (const item of metric(name)) total += typeof item.value === "number" ? item.value : 0;
  return total;
}

export function buildNodeStatus(input: NodeStatusInput): NodeStatus {
  const { metric } = input;
  const total = (name: string) => metricTotal(metric, name);
  const streamPending: Record<string, number> = {};
  for (const item of metric(METRIC.streamPending)) {
    const consumer = item.labels?.consumer;
    if (typeof consumer === "string" && typeof item.value === "number") streamPending[consumer] = item.value;
  }
  let commitP99Ms: number | null = null;
  for (const item of metric(METRIC.flushLatency)) {
    const p99 = item.quantiles?.["0.99"];
    if (typeof p99 === "number") commitP99Ms = Math.max(commitP99Ms ?? 0, p99);
  }
  return {
    nodeID: input.nodeID,
    services: input.services,
    version: PRODUCT_VERSION,
    nodeVersion: process.version,
    pid: process.pid,
    startedAt: new Date(input.startedAtMs).toISOString(),
    uptimeSeconds: Math.round((input.nowMs - input.startedAtMs) / 1000),
    memoryMB: { rss: Math.round(input.memory.rss / MB), heapUsed: Math.round(input.memory.heapUsed / MB) },
    eventLoopDelayP99Ms: input.eventLoopDelayP99Ms,
    events: {
      received: total(METRIC.eventsReceived),
      accepted: total(METRIC.eventsAccepted),
      rejected: total(METRIC.eventsRejected),
      duplicates: total(METRIC.eventsDuplicate),
    },
    perSecond: input.perSecond,
    storage: {
      rows: total(METRIC.rowsStored),
      commits: total(METRIC.batchesFlushed),
      failedCommits: total(METRIC.batchesFailed),
      pendingEvents: total(METRIC.storagePending),
      commitP99Ms,
      // The spool gauges have values only on a node whose sink has a spool.
      spool:
        metric(METRIC.spoolPending).length === 0
          ? null
          : { events: total(METRIC.spoolPending), bytes: total(METRIC.spoolBytes), failingSeconds: total(METRIC.spoolFailing) },
    },
    streamPending,
    forwarder: {
      forwarded: total(METRIC.forwarded),
      failures: total(METRIC.forwardFailures),
      dropped: total(METRIC.forwardDropped),
      queuedEvents: total(METRIC.forwardQueue),
      circuitOpen: total(METRIC.forwardCircuitOpen) > 0,
    },
    activeSessionMailboxes: total(METRIC.activeSessions),
    webSocketConnections: total(METRIC.wsConnections),
  };
}

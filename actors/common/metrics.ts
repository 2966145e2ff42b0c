/**
 * The product's own metrics, registered in Moleculer's metric registry so they come out of
 * GET /metrics next to Moleculer's built-in ones. Names are stable: dashboards depend on them.
 */
import type { MetricRegistry, ServiceBroker } from "moleculer";

export const METRIC = {
  eventsReceived: "ingest.events.received",
  eventsAccepted: "ingest.events.accepted",
  eventsRejected: "ingest.events.rejected",
  eventsDuplicate: "ingest.events.duplicates",
  seqGaps: "ingest.session.seq_gaps",
  seqDuplicates: "ingest.session.seq_duplicates",
  requests: "ingest.http.requests",
  batchesFlushed: "ingest.storage.batches_flushed",
  batchesFailed: "ingest.storage.batches_failed",
  rowsStored: "ingest.storage.rows",
  flushLatency: "ingest.storage.flush_latency_ms",
  storagePending: "ingest.storage.pending_events",
  spoolPending: "ingest.spool.pending_events",
  spoolBytes: "ingest.spool.bytes",
  spoolFailing: "ingest.spool.failing_seconds",
  forwarded: "ingest.forwarder.events_forwarded",
  forwardFailures: "ingest.forwarder.failures",
  forwardDropped: "ingest.forwarder.events_dropped",
  forwardQueue: "ingest.forwarder.queue_events",
  activeSessions: "ingest.session.active_mailboxes",
  forwardCircuitOpen: "ingest.forwarder.circuit_open",
  streamPending: "ingest.stream.pending_messages",
  streamDiscarded: "ingest.stream.discarded_unconsumed",
  rateLimited: "ingest.ratelimit.throttled",
  piiDetections: "ingest.pii.detections",
  wsConnections: "ingest.ws.connections",
  wsFrames: "ingest.ws.frames",
} as const;

const registered = new WeakSet<object>();

export function registerProductMetrics(broker: ServiceBroker): void {
  const metrics = broker.metrics;
  if (!broker.isMetricsEnabled() || registered.has(metrics)) return;
  registered.add(metrics);
  const counter = (name: string, description: string, labelNames: string[] = []) =>
    metrics.register({ type: "counter", name, description, labelNames });
  const gauge = (name: string, description: string) => metrics.register({ type: "gauge", name, description });
  counter(METRIC.eventsReceived, "Events received by the edge", ["tenant"]);
  counter(METRIC.eventsAccepted, "Events acknowledged as durable", ["tenant"]);
  counter(METRIC.eventsRejected, "Events rejected, by reason", ["reason"]);
  counter(METRIC.eventsDuplicate, "Events dropped as duplicates by event_id", ["tenant"]);
  counter(METRIC.seqGaps, "Gaps seen in per-session seq numbers");
  counter(METRIC.seqDuplicates, "Repeated or backwards per-session seq numbers");
  counter(METRIC.requests, "HTTP requests by route and status", ["route", "status"]);
  counter(METRIC.batchesFlushed, "Storage batches committed to the sink", ["sink"]);
  counter(METRIC.batchesFailed, "Storage batch commits that failed", ["sink"]);
  counter(METRIC.rowsStored, "Events committed to the sink", ["sink"]);
  metrics.register({
    type: "histogram",
    name: METRIC.flushLatency,
    description: "Time to commit one storage batch (ms)",
    labelNames: ["sink"],
    buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000],
    // Quantiles also make Moleculer's Prometheus output carry _sum and _count.
    quantiles: [0.5, 0.95, 0.99],
    maxAgeSeconds: 60,
    ageBuckets: 6,
  } as never);
  gauge(METRIC.storagePending, "Events waiting in the storage batcher");
  gauge(METRIC.spoolPending, "Events durable in the spool, not yet inserted into ClickHouse (SPOOL_DIR)");
  gauge(METRIC.spoolBytes, "Spool bytes not yet inserted (writes are refused at SPOOL_MAX_BYTES)");
  gauge(METRIC.spoolFailing, "Seconds the spool's inserts have been failing (0: they succeed)");
  counter(METRIC.forwarded, "Events delivered to the forward target");
  counter(METRIC.forwardFailures, "Failed forward attempts");
  counter(METRIC.forwardDropped, "Events the forwarder gave up on (counted and logged)", ["reason"]);
  gauge(METRIC.forwardQueue, "Events waiting in the forwarder");
  gauge(METRIC.activeSessions, "Session mailboxes with work queued");
  gauge(METRIC.forwardCircuitOpen, "1 while the forward target's circuit breaker is open");
  metrics.register({
    type: "gauge",
    name: METRIC.streamPending,
    description: "JetStream messages not yet consumed, by consumer (the backlog / lag)",
    labelNames: ["consumer"],
  });
  counter(METRIC.streamDiscarded, "Upper bound of stream messages discarded by stream limits before a consumer read them", ["consumer"]);
  counter(METRIC.rateLimited, "Requests refused by the rate limiter", ["scope"]);
  counter(METRIC.piiDetections, "Personal data found in events, by kind (whatever the tenant's policy did with it)", ["kind", "tenant"]);
  gauge(METRIC.wsConnections, "Open WebSocket event streams");
  // outcome: acked, rejected (error frame for the batch), throttled, invalid (frame-level, socket closed), dropped (backpressure)
  counter(METRIC.wsFrames, "WebSocket batch frames by outcome", ["outcome"]);
}

/** Publishes a stream consumer's lag report (see stream-lag.ts) as metrics. */
export function reportLag(metrics: MetricRegistry) {
  return ({ consumer, pending, discarded }: { consumer: string; pending: number; discarded: number }): void => {
    metrics.set(METRIC.streamPending, pending, { consumer });
    if (discarded > 0) metrics.increment(METRIC.streamDiscarded, { consumer }, discarded);
  };
}

"use strict";
/**
 * WebSocket streaming load driven by the repo's own TypeScript SDK (dist/nodes/client/ingest-client.js,
 * msgpack frames). Each of `streams` clients is one SDK device: one session, batches of
 * `eventsPerBatch` events, at most `window` batches in flight (the client's maxInFlight). The loop
 * is closed: every ack (timed by the client from the batch's write) tracks one more batch.
 */
const path = require("node:path");
const { latencyHistogram, latencySummary } = require("./latency");
const { makeEvent } = require("./events");

const DIST = path.resolve(__dirname, "../../dist");
const { IngestClient } = require(path.join(DIST, "nodes/client/ingest-client.js"));

/** Clients start in groups so 1,000 handshakes do not land in the same millisecond. */
const START_GROUP = 50;

async function wsLoad({ url, apiKey, streams, eventsPerBatch, window, durationSec, prefix }) {
  const histogram = latencyHistogram();
  const now = Date.now();
  let running = true;
  let ackedBatches = 0;
  let ackedEvents = 0;
  let rejectedBatches = 0;
  let connectErrors = 0;
  const clients = [];

  const startClient = (i) => {
    const session = `${prefix}-${i}`;
    let eventSeq = 0;
    const trackBatch = () => {
      for (let k = 0; k < eventsPerBatch; k++) client.track(makeEvent(session, eventSeq++, now));
    };
    const client = new IngestClient({
      url,
      apiKey: apiKey ?? "unused",
      encoding: "msgpack",
      maxBatchEvents: eventsPerBatch,
      maxBatchDelayMs: 1000,
      maxInFlight: window,
      onAck: (ack) => {
        ackedBatches++;
        ackedEvents += ack.accepted + ack.duplicates;
        histogram.recordValue(Math.max(1, Math.round(ack.latencyMs * 1000)));
        if (running) trackBatch();
      },
      onRejected: (rejection) => {
        if (rejection.kind === "batch") rejectedBatches++;
      },
      onError: () => {
        connectErrors++;
      },
    });
    clients.push(client);
    for (let w = 0; w < window; w++) trackBatch();
  };

  const startedAt = process.hrtime.bigint();
  for (let i = 0; i < streams; i += START_GROUP) {
    for (let j = i; j < Math.min(streams, i + START_GROUP); j++) startClient(j);
    await new Promise((r) => setImmediate(r));
  }
  await new Promise((r) => setTimeout(r, durationSec * 1000));
  running = false;
  const elapsed = Number(process.hrtime.bigint() - startedAt) / 1e9;
  const ackedInWindow = ackedEvents;
  // Let the batches still in flight finish (they count for errors, not throughput).
  await Promise.race([Promise.allSettled(clients.map((c) => c.flush())), new Promise((r) => setTimeout(r, 10_000))]);
  let unanswered = 0;
  let throttles = 0;
  let reconnects = 0;
  for (const client of clients) {
    const stats = client.stats();
    throttles += stats.throttled;
    reconnects += stats.reconnects;
    unanswered += Math.max(0, stats.sent - stats.resent - stats.acked);
    client.destroy();
  }
  return {
    streams,
    connectFailures: connectErrors,
    ackedBatches,
    ackedEventsInWindow: ackedInWindow,
    ackedEventsTotal: ackedEvents,
    errorFrames: rejectedBatches,
    throttles,
    closedEarly: reconnects,
    unanswered,
    durationSec: elapsed,
    latencyMs: latencySummary(histogram),
  };
}

module.exports = { wsLoad };

"use strict";
/**
 * The lean WebSocket generator for the transport ceiling: the repo's own socket
 * (dist/nodes/client/ws-socket.js) and frame codec (msgpack binary frames), without the SDK's
 * batching and resend bookkeeping, so the ceiling measures the server, not the client. Each of
 * `streams` sockets sends batches of `eventsPerBatch` events, `window` in flight; every ack is
 * timed from the moment its batch was written. Scenario (c) uses the SDK itself (ws-load.js).
 */
const path = require("node:path");
const { latencyHistogram, latencySummary } = require("./latency");
const { makeEvent } = require("./events");

const DIST = path.resolve(__dirname, "../../dist");
const { WsSocket } = require(path.join(DIST, "nodes/client/ws-socket.js"));
const { encodeBatchFrame, decodeServerFrame } = require(path.join(DIST, "nodes/edge/ws-frames.js"));

async function connectAll(url, headers, count, concurrency = 50) {
  const sockets = new Array(count);
  let next = 0;
  let failures = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        try {
          sockets[i] = await WsSocket.connect(url, { headers });
        } catch {
          failures++;
        }
      }
    }),
  );
  return { sockets, failures };
}

async function wsLoad({ url, apiKey, streams, eventsPerBatch, window, durationSec, prefix }) {
  const histogram = latencyHistogram();
  const headers = apiKey ? { "X-API-Key": apiKey } : {};
  const { sockets, failures } = await connectAll(url, headers, streams);
  const now = Date.now();
  let ackedBatches = 0;
  let ackedEvents = 0;
  let errorFrames = 0;
  let throttles = 0;
  let closedEarly = 0;
  let running = true;
  let outstanding = 0;
  let idle = null;

  const startedAt = process.hrtime.bigint();
  sockets.forEach((ws, i) => {
    if (!ws) return;
    const session = `${prefix}-${i}`;
    const sentAt = new Map();
    let seq = 0;
    let eventSeq = 0;
    const sendOne = () => {
      const events = [];
      for (let k = 0; k < eventsPerBatch; k++) events.push(makeEvent(session, eventSeq++, now));
      const frame = encodeBatchFrame({ seq, events }, "msgpack");
      sentAt.set(seq, process.hrtime.bigint());
      seq++;
      outstanding++;
      ws.send(frame);
    };
    ws.on("message", (data) => {
      const frame = decodeServerFrame(data);
      let seqDone;
      if ("ack" in frame) {
        seqDone = frame.ack;
        ackedBatches++;
        ackedEvents += frame.accepted + frame.duplicates;
      } else if ("throttle" in frame) {
        throttles++;
        return;
      } else {
        errorFrames++;
        seqDone = frame.error.seq;
      }
      const t = sentAt.get(seqDone);
      if (t !== undefined) {
        sentAt.delete(seqDone);
        outstanding--;
        if ("ack" in frame) histogram.recordValue(Math.max(1, Number((process.hrtime.bigint() - t) / 1000n)));
      }
      if (running) sendOne();
      else if (outstanding === 0 && idle) idle();
    });
    ws.on("close", () => {
      if (running) closedEarly++;
    });
    ws.on("error", () => undefined);
    for (let w = 0; w < window; w++) sendOne();
  });

  await new Promise((r) => setTimeout(r, durationSec * 1000));
  running = false;
  const elapsed = Number(process.hrtime.bigint() - startedAt) / 1e9;
  const ackedInWindow = ackedEvents;
  // Let the batches still in flight finish (they count for errors, not throughput).
  await Promise.race([new Promise((r) => (idle = r)), new Promise((r) => setTimeout(r, 10_000))]);
  const unanswered = outstanding;
  for (const ws of sockets) if (ws) ws.terminate();
  return {
    streams,
    connectFailures: failures,
    ackedBatches,
    ackedEventsInWindow: ackedInWindow,
    ackedEventsTotal: ackedEvents,
    errorFrames,
    throttles,
    closedEarly,
    unanswered,
    durationSec: elapsed,
    latencyMs: latencySummary(histogram),
  };
}

module.exports = { wsRawLoad: wsLoad };

"use strict";
/**
 * The transport ceiling: a bare uWebSockets.js server that does the least any ingest server
 * must do and nothing else.
 *   POST /v1/events: read the body, JSON.parse it, answer 202 {"accepted":n}.
 *   GET /v1/stream (WebSocket): msgpack-decode each binary batch frame, answer an ack frame
 *     in the same shape as the real edge ({ack, accepted, duplicates, rejected}).
 * No auth, no validation, no storage. Usage: node bench/baseline-uws.js <port>
 */
const uWS = require("uWebSockets.js");
const { Packr, Unpackr } = require("msgpackr");

const port = Number(process.argv[2] || 9001);
const unpackr = new Unpackr({ mapsAsObjects: true, useRecords: false });
const packr = new Packr({ useRecords: false });

function eventCount(parsed) {
  if (Array.isArray(parsed)) return parsed.length;
  if (parsed && Array.isArray(parsed.events)) return parsed.events.length;
  if (parsed && Array.isArray(parsed.batch)) return parsed.batch.length;
  return 1;
}

const app = uWS.App();
app.post("/v1/events", (res) => {
  let aborted = false;
  res.onAborted(() => (aborted = true));
  let chunks = [];
  res.onData((chunk, isLast) => {
    // uWS reuses the chunk's memory after the callback: copy it.
    chunks.push(Buffer.from(new Uint8Array(chunk)));
    if (!isLast) return;
    const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    chunks = [];
    let status = "202 Accepted";
    let reply;
    try {
      reply = `{"accepted":${eventCount(JSON.parse(body.toString("utf8")))},"duplicates":0,"rejected":[]}`;
    } catch {
      status = "400 Bad Request";
      reply = '{"error":{"code":"invalid_json"}}';
    }
    if (aborted) return;
    res.cork(() => {
      res.writeStatus(status).writeHeader("Content-Type", "application/json").end(reply);
    });
  });
});
app.ws("/v1/stream", {
  maxPayloadLength: 1024 * 1024,
  idleTimeout: 60,
  maxBackpressure: 1024 * 1024,
  message: (ws, message, isBinary) => {
    let frame;
    try {
      frame = isBinary ? unpackr.unpack(new Uint8Array(message)) : JSON.parse(Buffer.from(message).toString("utf8"));
    } catch {
      ws.end(1007, "invalid frame");
      return;
    }
    const n = Array.isArray(frame.events) ? frame.events.length : 0;
    ws.send(packr.pack({ ack: frame.seq, accepted: n, duplicates: 0, rejected: [] }), true);
  },
});
app.get("/health", (res) => res.end('{"status":"ok"}'));
app.listen("127.0.0.1", port, (socket) => {
  if (!socket) {
    console.error(`baseline could not listen on ${port}`);
    process.exit(1);
  }
  console.log(`baseline-uws listening on ${port}`);
});
process.on("SIGTERM", () => process.exit(0));

"use strict";
/**
 * Open-loop HTTP load: requests start on a fixed schedule (phases of requests/s), whatever the
 * server's latency, over a pool of keep-alive connections that grows while every connection is
 * busy, as many independent clients would. Latency is measured from each request's scheduled
 * start, not from when it was sent, so a server (or generator) that falls behind pays for the
 * wait of every request queued behind it (no coordinated omission).
 *
 * This exists because Artillery cannot offer scenario (d)'s spike on this machine: at ~0.5 ms of
 * CPU per request it needs a core for 2,000 requests/s, and its own event loop then lags by
 * hundreds of ms, which its response times include (bench/README.md, "Eighth round").
 *
 * It speaks HTTP/1.1 over plain sockets (one request in flight per connection, each request
 * written with one write, answers parsed by their content-length) rather than through node:http,
 * whose request and response objects doubled its CPU per request (~185 µs against ~93): at the
 * spike's 2,000 requests/s, ~0.18 of a core taken from the node and ClickHouse on the same 2
 * cores (bench/README.md, "Ninth round"). An answer it cannot parse is an error, never a guess.
 */
const net = require("node:net");
const { latencyHistogram, latencySummary } = require("./latency");
const { answersByClass } = require("./http-load");

const WINDOW_SEC = 10;
const HEADER_END = Buffer.from("\r\n\r\n");

/**
 * Where one answer ends in `buffer`: `{ status, end }` once the whole answer (head and a
 * content-length body) is there, `null` while it is incomplete. Throws on an answer this client
 * does not read (no content-length, e.g. chunked, or a malformed status line).
 * @param {Buffer} buffer
 * @returns {{ status: number, end: number } | null}
 */
function parseAnswer(buffer) {
  const headEnd = buffer.indexOf(HEADER_END);
  if (headEnd === -1) return null;
  const head = buffer.toString("latin1", 0, headEnd);
  const statusLine = /^HTTP\/1\.[01] (\d{3})/.exec(head);
  if (statusLine === null) throw new Error(`not an HTTP/1.x status line: ${JSON.stringify(head.slice(0, 40))}`);
  const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head);
  if (length === null) throw new Error("answer without content-length");
  const end = headEnd + HEADER_END.length + Number(length[1]);
  return buffer.length >= end ? { status: Number(statusLine[1]), end } : null;
}

/**
 * @param {{ url: string, path?: string, phases: Array<{ durationSec: number, requestsPerSec: number }>,
 *   makeBody: () => string, headers?: Record<string, string>, timeoutMs?: number, maxSockets?: number }} options
 * @returns {Promise<{ requests, ok, non2xx, errors, statusCounts, latencyMs, windows, durationSec, maxSocketsUsed }>}
 */
function openLoopLoad({ url, path = "/v1/events", phases, makeBody, headers = {}, timeoutMs = 10_000, maxSockets = 4096 }) {
  const target = new URL(url);
  const requestHead =
    `POST ${path} HTTP/1.1\r\nhost: ${target.host}\r\ncontent-type: application/json\r\n` +
    Object.entries(headers)
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join("");
  const histogram = latencyHistogram();
  const windows = [];
  const statusCounts = {};
  let errors = 0;
  let started = 0;
  let finished = 0;
  let maxSocketsUsed = 0;
  const t0 = performance.now();
  const schedule = [];
  let at = 0;
  for (const phase of phases) {
    schedule.push({ fromMs: at, toMs: at + phase.durationSec * 1000, intervalMs: 1000 / phase.requestsPerSec });
    at += phase.durationSec * 1000;
  }

  const windowAt = (offsetMs) => {
    const i = Math.floor(offsetMs / (WINDOW_SEC * 1000));
    while (windows.length <= i) windows.push({ startSec: windows.length * WINDOW_SEC, requests: 0, histogram: latencyHistogram() });
    return windows[i];
  };

  return new Promise((resolve) => {
    let scheduled = false; // every request of the schedule has been started
    let resolved = false;
    /** Open connections, and those of them with no request in flight. */
    const connections = new Set();
    const idle = [];
    /** Requests waiting for a connection (only while `maxSockets` are open and busy). */
    const waiting = [];

    const done = () => {
      if (resolved) return;
      resolved = true;
      clearInterval(sweeper);
      for (const connection of connections) connection.socket.destroy();
      resolve({
        requests: started,
        ...answersByClass(statusCounts),
        errors,
        statusCounts,
        latencyMs: latencySummary(histogram),
        windows: windows.map((w) => ({ startSec: w.startSec, requestsPerSec: w.requests / WINDOW_SEC, latencyMs: latencySummary(w.histogram) })),
        durationSec: (performance.now() - t0) / 1000,
        maxSocketsUsed,
      });
    };

    /** Records one request's outcome (a status, or null for an error) exactly once. */
    const settle = (request, status) => {
      if (request.settled) return;
      request.settled = true;
      if (status === null) errors += 1;
      else {
        statusCounts[status] = (statusCounts[status] || 0) + 1;
        const us = Math.max(1, Math.round((performance.now() - t0 - request.scheduledOffsetMs) * 1000));
        histogram.recordValue(us);
        request.window.histogram.recordValue(us);
      }
      finished += 1;
      if (scheduled && finished === started) done();
    };

    const write = (connection, request) => {
      connection.request = request;
      const body = makeBody();
      connection.socket.write(`${requestHead}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    };

    /** A connection's request is answered: it takes the next waiting request or becomes idle. */
    const release = (connection) => {
      connection.request = null;
      const next = waiting.shift();
      if (next !== undefined) write(connection, next);
      else idle.push(connection);
    };

    const drop = (connection) => {
      if (!connections.delete(connection)) return;
      const i = idle.indexOf(connection);
      if (i !== -1) idle.splice(i, 1);
      if (connection.request !== null) settle(connection.request, null);
      connection.request = null;
      connection.socket.destroy();
    };

    const connect = () => {
      const socket = net.connect({ host: target.hostname, port: Number(target.port), noDelay: true });
      const connection = { socket, request: null, buffer: null };
      connections.add(connection);
      if (connections.size > maxSocketsUsed) maxSocketsUsed = connections.size;
      socket.on("data", (chunk) => {
        connection.buffer = connection.buffer === null ? chunk : Buffer.concat([connection.buffer, chunk]);
        let answer;
        try {
          answer = parseAnswer(connection.buffer);
        } catch {
          drop(connection);
          return;
        }
        if (answer === null) return;
        // One request in flight per connection: bytes past its answer, or an answer nobody
        // asked for, mean the stream is not what this client thinks; count an error and close.
        if (connection.request === null || answer.end !== connection.buffer.length) {
          drop(connection);
          return;
        }
        connection.buffer = null;
        const request = connection.request;
        release(connection);
        settle(request, answer.status);
      });
      socket.on("error", () => drop(connection));
      socket.on("close", () => drop(connection));
      return connection;
    };

    const send = (scheduledOffsetMs) => {
      started += 1;
      const window = windowAt(scheduledOffsetMs);
      window.requests += 1;
      const request = { scheduledOffsetMs, window, settled: false };
      const connection = idle.pop() ?? (connections.size < maxSockets ? connect() : undefined);
      if (connection !== undefined) write(connection, request);
      else waiting.push(request);
    };

    // Requests past their deadline (counted from their scheduled start) fail; a connection whose
    // request timed out is closed, since its answer may still arrive.
    const sweeper = setInterval(() => {
      const deadline = performance.now() - t0 - timeoutMs;
      while (waiting.length > 0 && waiting[0].scheduledOffsetMs < deadline) settle(waiting.shift(), null);
      for (const connection of connections) {
        if (connection.request !== null && connection.request.scheduledOffsetMs < deadline) drop(connection);
      }
    }, 100);

    let phase = 0;
    let next = 0; // offset (ms from t0) of the next scheduled request
    const tick = () => {
      const now = performance.now() - t0;
      while (phase < schedule.length) {
        const p = schedule[phase];
        if (next < p.fromMs) next = p.fromMs;
        if (next >= p.toMs) {
          phase += 1;
          continue;
        }
        if (next > now) break;
        send(next);
        next += p.intervalMs;
      }
      if (phase < schedule.length) setTimeout(tick, Math.max(0, Math.min(next - (performance.now() - t0), 5)));
      else {
        scheduled = true;
        if (finished === started) done();
      }
    };
    tick();
  });
}

module.exports = { openLoopLoad, parseAnswer };

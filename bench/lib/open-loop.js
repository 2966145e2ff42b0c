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
 * hundreds of ms, which its response times include (bench/README.md, "Eighth round"). Node's
 * http client costs a small fraction of that.
 */
const http = require("node:http");
const { latencyHistogram, latencySummary } = require("./latency");
const { answersByClass } = require("./http-load");

const WINDOW_SEC = 10;

/**
 * @param {{ url: string, path?: string, phases: Array<{ durationSec: number, requestsPerSec: number }>,
 *   makeBody: () => string, headers?: Record<string, string>, timeoutMs?: number, maxSockets?: number }} options
 * @returns {Promise<{ requests, ok, non2xx, errors, statusCounts, latencyMs, windows, durationSec, maxSocketsUsed }>}
 */
function openLoopLoad({ url, path = "/v1/events", phases, makeBody, headers = {}, timeoutMs = 10_000, maxSockets = 4096 }) {
  const target = new URL(url);
  const agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
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
    const done = () => {
      if (resolved) return;
      resolved = true;
      agent.destroy();
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
    const send = (scheduledOffsetMs) => {
      started += 1;
      const window = windowAt(scheduledOffsetMs);
      window.requests += 1;
      const body = makeBody();
      const req = http.request({
        agent,
        host: target.hostname,
        port: target.port,
        method: "POST",
        path,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), ...headers },
        timeout: timeoutMs,
      });
      let settled = false;
      const settle = (status) => {
        if (settled) return;
        settled = true;
        if (status === null) errors += 1;
        else {
          statusCounts[status] = (statusCounts[status] || 0) + 1;
          const us = Math.max(1, Math.round((performance.now() - t0 - scheduledOffsetMs) * 1000));
          histogram.recordValue(us);
          window.histogram.recordValue(us);
        }
        finished += 1;
        if (scheduled && finished === started) done();
      };
      req.on("response", (res) => {
        res.resume();
        res.on("end", () => settle(res.statusCode));
        res.on("error", () => settle(null));
      });
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", () => settle(null));
      req.end(body);
      const sockets = Object.values(agent.sockets).reduce((s, list) => s + list.length, 0);
      if (sockets > maxSocketsUsed) maxSocketsUsed = sockets;
    };

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

module.exports = { openLoopLoad };

"use strict";
/**
 * Closed-loop HTTP load with autocannon: `connections` keep one request each in flight (no
 * pipelining) for `durationSec`, cycling through pre-built bodies. Several targets (the nodes
 * of a cluster) are driven at once, the connections split between them, and every response
 * goes into one HDR histogram, so percentiles are exact across targets.
 */
const autocannon = require("autocannon");
const { latencyHistogram, latencySummary } = require("./latency");

function runOne({ url, connections, durationSec, bodies, headers, onResponse }) {
  let next = Math.floor(Math.random() * bodies.length);
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url,
        connections,
        pipelining: 1,
        duration: durationSec,
        timeout: 10,
        requests: [
          {
            method: "POST",
            path: "/v1/events",
            headers: { "content-type": "application/json", ...headers },
            setupRequest: (req) => {
              req.body = bodies[next];
              next = next + 1 === bodies.length ? 0 : next + 1;
              return req;
            },
          },
        ],
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
    instance.on("response", onResponse);
  });
}

/** Responses counted by status code -> how many were 2xx (`ok`) and how many were not (`non2xx`). */
function answersByClass(statusCounts) {
  let ok = 0;
  let non2xx = 0;
  for (const [status, n] of Object.entries(statusCounts)) {
    if (Number(status) >= 200 && Number(status) < 300) ok += n;
    else non2xx += n;
  }
  return { ok, non2xx };
}

/**
 * @returns {{ requests, ok, non2xx, errors, statusCounts, latencyMs: {p50,p95,p99,max,mean}, durationSec }}
 */
async function httpLoad({ urls, connections, durationSec, bodies, headers = {} }) {
  const histogram = latencyHistogram();
  const statusCounts = {};
  const onResponse = (_client, statusCode, _bytes, responseTimeMs) => {
    statusCounts[statusCode] = (statusCounts[statusCode] || 0) + 1;
    histogram.recordValue(Math.max(1, Math.round(responseTimeMs * 1000)));
  };
  const per = Math.max(1, Math.floor(connections / urls.length));
  const started = process.hrtime.bigint();
  const results = await Promise.all(
    urls.map((url, i) =>
      runOne({ url, connections: i === 0 ? connections - per * (urls.length - 1) : per, durationSec, bodies, headers, onResponse }),
    ),
  );
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  const { ok, non2xx } = answersByClass(statusCounts);
  const errors = results.reduce((sum, r) => sum + r.errors + r.timeouts, 0);
  return {
    requests: ok + non2xx,
    ok,
    non2xx,
    errors,
    statusCounts,
    durationSec: Math.min(elapsed, durationSec),
    latencyMs: latencySummary(histogram),
  };
}

module.exports = { httpLoad, answersByClass };

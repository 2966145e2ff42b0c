"use strict";
/**
 * Preloaded (NODE_OPTIONS=--require) into a load generator's process to record how late its
 * event loop runs: a generator whose loop lags adds that lag to every latency it reports. Each
 * thread (Artillery does its work in a worker thread) writes, every 2 s and at exit, to
 * `$LOOP_DELAY_PROBE_DIR/<pid>-<threadId>.json`: the p99 delay of its worst second, how many
 * seconds had a p99 over 100 ms, and the largest single delay (ms). Per second, because a
 * lagging loop takes few samples: over a whole run the idle seconds' many samples would hide it.
 */
const fs = require("node:fs");
const path = require("node:path");
const { monitorEventLoopDelay } = require("node:perf_hooks");
const { threadId } = require("node:worker_threads");

const dir = process.env.LOOP_DELAY_PROBE_DIR;
if (dir) {
  const histogram = monitorEventLoopDelay({ resolution: 5 });
  histogram.enable();
  const file = path.join(dir, `${process.pid}-${threadId}.json`);
  const ms = (ns) => +(ns / 1e6).toFixed(1);
  const summary = { worstSecondP99: 0, secondsOver100ms: 0, seconds: 0, max: 0 };
  setInterval(() => {
    if (histogram.count === 0) return;
    const p99 = ms(histogram.percentile(99));
    summary.seconds += 1;
    summary.worstSecondP99 = Math.max(summary.worstSecondP99, p99);
    if (p99 > 100) summary.secondsOver100ms += 1;
    summary.max = Math.max(summary.max, ms(histogram.max));
    histogram.reset();
  }, 1000).unref();
  const write = () => fs.writeFileSync(file, JSON.stringify(summary));
  setInterval(write, 2000).unref();
  process.on("exit", write);
}

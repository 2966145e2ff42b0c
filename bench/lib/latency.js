"use strict";
/** Ack-latency recording shared by the HTTP and WebSocket load generators (microsecond histograms). */
const hdr = require("hdr-histogram-js");

function latencyHistogram() {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
}

/** p50/p95/p99/max/mean in milliseconds from a histogram of microseconds. */
function latencySummary(histogram) {
  const ms = (us) => +(us / 1000).toFixed(2);
  return {
    p50: ms(histogram.getValueAtPercentile(50)),
    p95: ms(histogram.getValueAtPercentile(95)),
    p99: ms(histogram.getValueAtPercentile(99)),
    max: ms(histogram.maxValue),
    mean: ms(histogram.mean),
  };
}

module.exports = { latencyHistogram, latencySummary };

"use strict";
/**
 * Makes Artillery's arrival timer wait without spinning a core. Loaded by processor.js, which
 * Artillery requires in its worker before the phases start.
 *
 * Artillery paces `arrivalRate` phases with the `arrivals` package, whose timer (`nanotimer`)
 * waits for any gap under 25 ms by re-scheduling itself with setImmediate: at 200 arrivals/s
 * (5 ms apart) the generator kept ~0.8 of a core busy doing nothing, on a 2-core machine it
 * shares with the node and ClickHouse (bench/README.md, "Eighth round").
 *
 * The replacement keeps nanotimer's schedule (arrival n is due at start + n × interval, so a late
 * turn catches up at once instead of drifting) and waits with setTimeout, whose 1 ms resolution
 * makes arrivals come in small groups at high rates. Only `setInterval`/`clearInterval` are
 * replaced: the uniform mode (Artillery's default, the one spike.yml uses) calls nothing else.
 * If the modules are not where this expects, it throws, so a run never goes on with the spin.
 */
const path = require("node:path");

const UNIT_NS = { s: 1e9, m: 1e6, u: 1e3, n: 1 };

function nanotimerOfArtillery() {
  const phases = require.resolve("@artilleryio/int-core/lib/phases.js", { paths: [path.join(__dirname, "..")] });
  const arrivals = require.resolve("arrivals", { paths: [path.dirname(phases)] });
  return require(require.resolve("nanotimer", { paths: [path.dirname(arrivals)] }));
}

function intervalMs(text) {
  const match = /^(\d+(?:\.\d+)?)([smun])$/.exec(String(text));
  if (match === null) throw new Error(`paced-arrivals: cannot read the interval "${text}"`);
  return (Number(match[1]) * UNIT_NS[match[2]]) / 1e6;
}

function install(Nanotimer = nanotimerOfArtillery()) {
  const proto = Nanotimer.prototype;
  if (typeof proto.setInterval !== "function" || typeof proto.clearInterval !== "function") {
    throw new Error("paced-arrivals: nanotimer has no setInterval/clearInterval to replace");
  }
  if (proto.setInterval.paced) return;
  function setInterval(task, args, interval) {
    const periodMs = intervalMs(interval);
    const startedAt = performance.now();
    let due = 1;
    const run = args ? () => task.apply(null, args) : () => task();
    this.pacedActive = true;
    const tick = () => {
      this.pacedTimer = null;
      const elapsed = performance.now() - startedAt;
      while (this.pacedActive && due * periodMs <= elapsed) {
        due += 1;
        run();
      }
      if (this.pacedActive) this.pacedTimer = setTimeout(tick, Math.max(0, due * periodMs - (performance.now() - startedAt)));
    };
    this.pacedTimer = setTimeout(tick, periodMs);
  }
  setInterval.paced = true;
  proto.setInterval = setInterval;
  proto.clearInterval = function clearInterval() {
    this.pacedActive = false;
    if (this.pacedTimer) clearTimeout(this.pacedTimer);
    this.pacedTimer = null;
  };
}

module.exports = { install, intervalMs };

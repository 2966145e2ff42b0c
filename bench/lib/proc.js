"use strict";
/** Process-level measurements: RSS sampling from /proc, load average, machine description. */
const fs = require("node:fs");
const os = require("node:os");
const { execFileSync } = require("node:child_process");

/** VmRSS / VmHWM of a pid in MB, or null when it is gone. */
function memoryOf(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const rss = /VmRSS:\s+(\d+) kB/.exec(status);
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
    return { rssMb: rss ? Number(rss[1]) / 1024 : 0, hwmMb: hwm ? Number(hwm[1]) / 1024 : 0 };
  } catch {
    return null;
  }
}

/** CPU time (user + system) of a pid in seconds. */
function cpuSecondsOf(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    return ticks / 100; // USER_HZ is 100 on Linux
  } catch {
    return null;
  }
}

/** CPU time the whole machine spent busy (user, nice, system, irq, softirq, steal) in seconds, from /proc/stat. */
function machineBusySeconds() {
  const fields = fs.readFileSync("/proc/stat", "utf8").split("\n", 1)[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = fields;
  return (user + nice + system + irq + softirq + (steal || 0)) / 100;
}

/** First pid whose command line contains `needle` (servers started by the test helpers). */
function findPid(needle) {
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").replace(/\0/g, " ");
      if (cmd.includes(needle) && Number(entry) !== process.pid) return Number(entry);
    } catch {
      // gone
    }
  }
  return null;
}

/**
 * Samples VmRSS of named processes every `intervalMs` and keeps the peak, plus CPU seconds
 * used between start() and stop(). `pids` is a map name → pid (read at every tick, so it may change).
 *
 * Also the CPU the machine spent outside those processes (kernel threads such as writeback and
 * the loop device's worker, and any other process), on average and in its busiest second: on
 * 2 shared cores a burst of it stalls everything else (bench/README.md, "Ninth round").
 */
class RssSampler {
  constructor(pids, intervalMs = 200) {
    this.pids = { ...pids };
    this.intervalMs = intervalMs;
    this.peak = {};
    this.cpuStart = {};
    /** Last CPU reading per process, for one that exits before stop(). */
    this.cpuLast = {};
    this.timer = null;
    /** [time s, machine busy s, the named processes' CPU s] at each sample. */
    this.busy = [];
  }
  start() {
    for (const [name, pid] of Object.entries(this.pids)) this.cpuStart[name] = cpuSecondsOf(pid);
    this.started = performance.now();
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    return this;
  }
  /** Starts sampling one more process (CPU counted from its start: meant for a child just spawned). */
  add(name, pid) {
    this.pids[name] = pid;
    this.cpuStart[name] = 0;
  }
  sample() {
    let named = 0;
    for (const [name, pid] of Object.entries(this.pids)) {
      const mem = memoryOf(pid);
      if (mem && (this.peak[name] === undefined || mem.rssMb > this.peak[name])) this.peak[name] = mem.rssMb;
      const cpu = cpuSecondsOf(pid);
      if (cpu !== null) this.cpuLast[name] = cpu;
      named += this.cpuLast[name] ?? 0;
    }
    this.busy.push([(performance.now() - this.started) / 1000, machineBusySeconds(), named]);
  }
  /**
   * Cores the machine spent outside the named processes: over the whole run, and in its busiest
   * second (the most over any stretch of samples ≥ 1 s). A process that exits mid-run keeps its
   * last reading, so its CPU is not counted as someone else's.
   */
  otherCpu() {
    const at = this.busy;
    if (at.length < 2) return null;
    const other = (i, j) => (at[j][1] - at[i][1] - (at[j][2] - at[i][2])) / (at[j][0] - at[i][0]);
    let busiest = 0;
    for (let i = 0, j = 0; i < at.length; i++) {
      while (j < at.length && at[j][0] - at[i][0] < 1) j++;
      if (j === at.length) break;
      busiest = Math.max(busiest, other(i, j));
    }
    return { cores: +Math.max(0, other(0, at.length - 1)).toFixed(2), busiestSecondCores: +busiest.toFixed(2) };
  }
  stop(elapsedSec) {
    clearInterval(this.timer);
    this.sample();
    const cpu = {};
    for (const name of Object.keys(this.pids)) {
      // The sample just taken read each process (or kept its last reading if it has exited).
      const end = this.cpuLast[name] ?? null;
      if (end !== null && this.cpuStart[name] !== null && this.cpuStart[name] !== undefined) {
        cpu[name] = +((end - this.cpuStart[name]) / elapsedSec).toFixed(2);
      }
    }
    const peakRssMb = {};
    for (const [name, mb] of Object.entries(this.peak)) peakRssMb[name] = Math.round(mb);
    return { peakRssMb, cpuCores: cpu, otherCpu: this.otherCpu() };
  }
}

function loadAverage() {
  return os.loadavg().map((n) => +n.toFixed(2));
}

function versionOf(command, args) {
  try {
    return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim().split("\n")[0];
  } catch (error) {
    return `unknown (${error.message.split("\n")[0]})`;
  }
}

function machine(extra = {}) {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0] ? cpus[0].model : "unknown",
    cores: cpus.length,
    memoryGb: +(os.totalmem() / 1024 ** 3).toFixed(1),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    natsServer: versionOf("nats-server", ["--version"]),
    clickhouse: versionOf("clickhouse-client", ["--version"]),
    ...extra,
  };
}

module.exports = { memoryOf, cpuSecondsOf, findPid, RssSampler, loadAverage, machine };

#!/usr/bin/env node
"use strict";
/**
 * Before/after on this noisy machine: runs the same scenarios against another checkout's node
 * (`--base`, e.g. a worktree of the commit before an optimisation, built with `npm run build`)
 * and against this checkout's, alternating, and reports each figure's runs and medians side by
 * side. One run of each is not enough here: the ceilings of consecutive full runs moved by
 * 25–35% within an hour (bench/README.md), so a change is only believed when its medians move
 * more than the spread of the runs.
 *
 *   node bench/compare.js --base=<checkout> [--rounds=3] [--only=a] [--spool] [--jetstream]
 *        [--duration=<s>] [--node-env=K=V,...] [--node-args="<flags>"]
 *
 * Each round runs both sides once (base first in odd rounds, this checkout first in even ones,
 * so a drift of the machine's speed does not favour either). Every run is bench/run.js with
 * `--no-write --no-readme --no-artillery`, its servers started afresh. Prints a markdown table
 * and writes it to bench/results/compare-<timestamp>.md.
 */
const fs = require("node:fs");
const path = require("node:path");
const { spawnSync } = require("node:child_process");
const { parseArgs } = require("./lib/args");

const args = parseArgs();

const RESULTS = path.join(__dirname, "results");
const PASSED_ON = ["spool", "jetstream", "duration", "node-env", "node-args", "storage-dir"];

/** The figures compared, per scenario: how to read each from a run.js scenario result. */
const FIGURES = [
  { name: "events/s accepted", read: (s) => s.acceptedEventsPerSec, better: "higher" },
  { name: "req/s", read: (s) => s.requestsPerSec, better: "higher" },
  { name: "node CPU µs/event", read: (s) => s.nodeCpuUsPerEvent, better: "lower" },
  { name: "node CPU µs/request", read: (s) => s.nodeCpuUsPerRequest, better: "lower" },
  { name: "ack p99 ms", read: (s) => s.latencyMs?.p99, better: "lower" },
  { name: "node peak RSS MB", read: (s) => nodePeakRss(s.peakRssMb), better: "lower" },
];

/** The largest RSS among the scenario's node processes (`node`, or `n1`... in a cluster). */
function nodePeakRss(peaks) {
  const values = Object.entries(peaks ?? {})
    .filter(([name]) => name === "node" || /^n\d$/.test(name))
    .map(([, mb]) => mb);
  return values.length === 0 ? null : Math.max(...values);
}

function median(values) {
  const sorted = values.filter((v) => typeof v === "number").sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function fmt(value) {
  if (value === null || value === undefined) return "–";
  return value >= 100 ? Math.round(value).toLocaleString("en-US") : String(+value.toFixed(2));
}

/** One run of bench/run.js against the node of `root`; its result document. */
function runOnce(root, label, only) {
  const out = path.join(RESULTS, "tmp", `compare-${process.pid}-${label}.json`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.rmSync(out, { force: true });
  const passed = PASSED_ON.filter((k) => args[k] !== undefined).map((k) => (args[k] === true ? `--${k}` : `--${k}=${args[k]}`));
  const runArgs = [path.join(__dirname, "run.js"), `--only=${only}`, "--no-write", "--no-readme", "--no-artillery", `--result-json=${out}`, `--node-root=${root}`, ...passed];
  process.stderr.write(`[compare] ${label}: node ${runArgs.slice(1).join(" ")}\n`);
  const run = spawnSync(process.execPath, runArgs, { stdio: ["ignore", "ignore", "inherit"] });
  if (run.status !== 0 || !fs.existsSync(out)) throw new Error(`bench/run.js failed for ${label} (exit ${run.status})`);
  const result = JSON.parse(fs.readFileSync(out, "utf8"));
  fs.rmSync(out, { force: true });
  return result;
}

function main() {
  if (typeof args.base !== "string") {
    process.stderr.write("usage: node bench/compare.js --base=<checkout with a built dist/> [--rounds=3] [--only=a] [--spool] ...\n");
    process.exit(2);
  }
  const base = path.resolve(args.base);
  const here = path.resolve(__dirname, "..");
  for (const root of [base, here]) {
    if (!fs.existsSync(path.join(root, "dist/nodes/node.js"))) throw new Error(`${root} has no dist/nodes/node.js: run npm run build there first`);
  }
  const rounds = Number(args.rounds ?? 3);
  const only = typeof args.only === "string" ? args.only : "a";
  const runs = { base: [], here: [] };
  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 === 1 ? ["base", "here"] : ["here", "base"];
    for (const side of order) runs[side].push(runOnce(side === "base" ? base : here, `${side}-${round}`, only));
  }

  const ids = [...new Set([...runs.base, ...runs.here].flatMap((r) => r.scenarios.map((s) => s.id)))];
  const lines = [
    `Compare ${new Date().toISOString()}: base ${base} against this checkout ${here}; ${rounds} alternated round(s) of --only=${only}` +
      (PASSED_ON.some((k) => args[k] !== undefined) ? ` (${PASSED_ON.filter((k) => args[k] !== undefined).map((k) => `--${k}${args[k] === true ? "" : `=${args[k]}`}`).join(" ")})` : "") +
      ".",
    "",
    "| Scenario | Figure | base runs | base median | this checkout runs | median | change |",
    "|---|---|---|---:|---|---:|---:|",
  ];
  for (const id of ids) {
    for (const figure of FIGURES) {
      const valuesOf = (side) => runs[side].map((r) => r.scenarios.find((s) => s.id === id)).map((s) => (s ? figure.read(s) : null));
      const before = valuesOf("base");
      const after = valuesOf("here");
      if ([...before, ...after].every((v) => v === null || v === undefined)) continue;
      const [mb, ma] = [median(before), median(after)];
      const change = mb !== null && ma !== null && mb !== 0 ? `${ma >= mb ? "+" : ""}${(((ma - mb) / mb) * 100).toFixed(1)}% (${figure.better} is better)` : "–";
      lines.push(`| (${id}) | ${figure.name} | ${before.map(fmt).join(", ")} | ${fmt(mb)} | ${after.map(fmt).join(", ")} | ${fmt(ma)} | ${change} |`);
    }
  }
  const spreadNote =
    "A change smaller than the spread of either side's runs is noise on this machine.";
  const markdown = lines.join("\n") + "\n\n" + spreadNote + "\n";
  process.stdout.write("\n" + markdown);
  const stamp = new Date().toISOString().replace(/[:]/g, "-").replace(/\.\d+Z$/, "Z");
  fs.writeFileSync(path.join(RESULTS, `compare-${stamp}.md`), markdown);
  process.stderr.write(`[compare] wrote bench/results/compare-${stamp}.md\n`);
}

main();

#!/usr/bin/env node
"use strict";
/**
 * Summarises a V8 .cpuprofile (node --cpu-prof) by self time: the top functions, and the
 * same time grouped by file, so the hot path's cost is visible without a flame-graph viewer.
 * Usage: node bench/prof-summary.js <file.cpuprofile> [top=30]
 */
const fs = require("node:fs");
const path = require("node:path");

const file = process.argv[2];
const top = Number(process.argv[3] || 30);
if (!file) {
  console.error("usage: node bench/prof-summary.js <file.cpuprofile> [top]");
  process.exit(2);
}
const profile = JSON.parse(fs.readFileSync(file, "utf8"));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfUs = new Map();
const deltas = profile.timeDeltas;
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i];
  selfUs.set(id, (selfUs.get(id) || 0) + (deltas[i] || 0));
}
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
const shorten = (url) => {
  if (!url) return "";
  const u = url.replace(/^file:\/\//, "");
  const i = u.indexOf("node_modules/");
  if (i >= 0) return u.slice(i + "node_modules/".length);
  const d = u.indexOf("/dist/");
  if (d >= 0) return u.slice(d + 1);
  return path.basename(u);
};
const byFunction = new Map();
const byFile = new Map();
for (const [id, us] of selfUs) {
  const node = byId.get(id);
  const cf = node.callFrame;
  const fileName = shorten(cf.url) || `(${cf.functionName || "native"})`;
  const key = `${cf.functionName || "(anonymous)"}  ${fileName}${cf.url ? `:${cf.lineNumber + 1}` : ""}`;
  byFunction.set(key, (byFunction.get(key) || 0) + us);
  const group = cf.url ? fileName : cf.functionName || "(native)";
  byFile.set(group, (byFile.get(group) || 0) + us);
}
const print = (title, map, n) => {
  console.log(`\n${title}`);
  const rows = [...map].sort((a, b) => b[1] - a[1]).slice(0, n);
  for (const [key, us] of rows) console.log(`${((us / total) * 100).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${key}`);
};
// Inclusive (self + callees) time per function of the product's own code (dist/), counted once
// per sample even when the function recurses.
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children || []) parent.set(c, n.id);
const inclusive = new Map();
for (const [id, us] of selfUs) {
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const cf = byId.get(cur).callFrame;
    if (!cf.url.includes("/dist/")) continue;
    const key = `${cf.functionName || "(anonymous)"}  ${shorten(cf.url)}:${cf.lineNumber + 1}`;
    if (seen.has(key)) continue;
    seen.add(key);
    inclusive.set(key, (inclusive.get(key) || 0) + us);
  }
}
const busy = total - (byFunctionTotal("(idle)") || 0);
function byFunctionTotal(name) {
  let us = 0;
  for (const [id, t] of selfUs) if (byId.get(id).callFrame.functionName === name) us += t;
  return us;
}
console.log(`${file}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy (not idle)`);
print(`Top ${top} functions by self time`, byFunction, top);
print("Self time by file", byFile, 25);
print("Inclusive time of the product's functions (dist/)", inclusive, 25);

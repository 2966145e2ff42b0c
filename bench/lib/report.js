"use strict";
/** The markdown table of one run (bench/results/<timestamp>.md and the README's Benchmarks section). */
const seed004 = require("./seed004");

const fmt = (n) => (n === null || n === undefined ? "–" : Math.round(n).toLocaleString("en-US"));
const ms = (n) => (n === null || n === undefined ? "–" : n < 10 ? n.toFixed(1) : Math.round(n).toString());
const pct = (r) => (r === null || r === undefined ? "–" : `${(r * 100).toFixed(0)}%`);

function rssCell(peak) {
  if (!peak) return "–";
  return Object.entries(peak)
    .map(([name, mb]) => `${name} ${mb}`)
    .join(", ");
}

/** ", outside 0.12 / 0.95" for a scenario measured with the machine's other CPU (results before the ninth round have none). */
function otherCpuCell(other) {
  return other ? `, outside ${other.cores} / ${other.busiestSecondCores}` : "";
}

function cpuCell(cpu) {
  if (!cpu) return "–";
  return Object.entries(cpu)
    .map(([name, cores]) => `${name} ${cores}`)
    .join(", ");
}

function budgetCell(s) {
  const b = s.cpuBudget;
  const unit = b.unit === "request" ? "req" : "event";
  const node = b.nodeBudgetUs > 0 ? `${b.nodeBudgetUs} µs left for the node (it used ${b.nodeUsPer})` : `nothing left for the node (others already use ${b.othersUsPer})`;
  return `(${s.id}) ${b.machineUsPer} µs/${unit} → ${fmt(b.affordablePerSec)}/s; target ${fmt(b.targetPerSec)}/s = ${b.targetUsPer} µs/${unit}, ${node}`;
}

/** Where the servers kept their data (results before 2026-11-22 15:00 do not say: the root filesystem). */
function dataLine(settings) {
  if (!settings || !settings.storageFs) return "";
  return `; server data on ${settings.storageFs}${settings.storageNote ? ` (${settings.storageNote})` : ""}`;
}

function renderMarkdown(result) {
  const m = result.machine;
  const lines = [];
  lines.push(`Run ${result.startedAt}${result.label ? ` (${result.label})` : ""}. Machine: ${m.cpuModel}, ${m.cores} cores, ${m.memoryGb} GB RAM, ${m.os}; Node ${m.node}; ${m.natsServer}; ClickHouse ${m.clickhouseServer ?? m.clickhouse}. Node(s), nats-server, clickhouse-server and the load generator all share the machine${dataLine(result.settings)}. Load average at start ${m.loadavgAtStart.join(" ")}.`);
  if (result.settings?.singleNode === "jetstream") {
    lines.push("");
    lines.push("Single-node steps (memory, a–d) ran against one node with `NATS_URL` set (`--jetstream`): clients are acked on the JetStream publish and the node's storage writer inserts what it consumes from the stream, instead of the single-process node acking after the ClickHouse insert.");
  }
  if (result.settings?.singleNode === "spool") {
    lines.push("");
    lines.push("Single-node steps (memory, a–d) ran against the single-process node with `SPOOL_DIR` set (`--spool`, the spool in the node's data dir on the same filesystem as the servers'): clients are acked once their batch is fdatasynced in the spool, and the node inserts into ClickHouse behind it (`SPOOL_INSERT_*` as the node settings of the run say, else their defaults); the storage commit line counts spool appends.");
  }
  lines.push("");
  const c = result.ceilings;
  if (c && c.httpBatch) {
    lines.push("**Ceilings (same run)**");
    lines.push("");
    lines.push("| Ceiling | events/s | req/s | p50 / p95 / p99 ms | peak RSS MB | CPU cores used |");
    lines.push("|---|---:|---:|---|---|---|");
    const row = (name, events, reqs, lat, rss, cpu) =>
      lines.push(`| ${name} | ${fmt(events)} | ${fmt(reqs)} | ${lat ? `${ms(lat.p50)} / ${ms(lat.p95)} / ${ms(lat.p99)}` : "–"} | ${rssCell(rss)} | ${cpuCell(cpu)} |`);
    row("Transport: bare uWS, JSON batches of 100, 50 conns", c.httpBatch.acceptedEventsPerSec, c.httpBatch.requestsPerSec, c.httpBatch.latencyMs, c.httpBatch.peakRssMb, c.httpBatch.cpuCores);
    row("Transport: bare uWS, single-event POSTs, 50 conns", c.httpSingle.acceptedEventsPerSec, c.httpSingle.requestsPerSec, c.httpSingle.latencyMs, c.httpSingle.peakRssMb, c.httpSingle.cpuCores);
    row("Transport: bare uWS, 1,000 WebSocket streams (msgpack)", c.ws.acceptedEventsPerSec, Math.round(c.ws.ackedBatches / c.ws.durationSec), c.ws.latencyMs, c.ws.peakRssMb, c.ws.cpuCores);
    row(`Storage: direct JSONEachRow inserts (${fmt(c.storage.rowsPerInsert)} rows × ${c.storage.concurrency} concurrent)`, c.storage.eventsPerSec, Math.round(c.storage.inserts / c.storage.durationSec), c.storage.insertLatencyMs, c.storage.peakRssMb, c.storage.cpuCores);
    if (c.storageTsv) {
      row(`Storage: direct TabSeparated inserts, the node's format (${fmt(c.storageTsv.rowsPerInsert)} rows × ${c.storageTsv.concurrency} concurrent)`, c.storageTsv.eventsPerSec, Math.round(c.storageTsv.inserts / c.storageTsv.durationSec), c.storageTsv.insertLatencyMs, c.storageTsv.peakRssMb, c.storageTsv.cpuCores);
    }
    lines.push("");
  }
  if (result.scenarios.length > 0) {
    lines.push("**Scenarios**");
    lines.push("");
    lines.push("| Scenario | events/s accepted | events/s landed in ClickHouse | req/s | ack p50 / p95 / p99 ms | errors | peak RSS MB | ratio to ceiling (transport, storage) | target | met? |");
    lines.push("|---|---:|---:|---:|---|---:|---|---|---|---|");
    for (const s of result.scenarios) {
      const l = s.latencyMs;
      lines.push(
        `| (${s.id}) ${s.name} | ${fmt(s.acceptedEventsPerSec)} | ${fmt(s.landedEventsPerSec)}${s.allLanded === false ? " (not all)" : ""} | ${fmt(s.requestsPerSec)} | ${ms(l.p50)} / ${ms(l.p95)} / ${ms(l.p99)} | ${fmt(s.errors)} | ${rssCell(s.peakRssMb)} | ${pct(s.ratio?.transport)}, ${pct(s.ratio?.storage)} | ${s.target} | ${s.met ? "yes" : "**no**"} |`,
      );
    }
    lines.push("");
    lines.push("Node CPU per event / per request (µs, from /proc): " +
      result.scenarios.map((s) => `(${s.id}) ${s.nodeCpuUsPerEvent ?? "–"} / ${s.nodeCpuUsPerRequest ?? "–"}`).join("; ") + ".");
    const withStorage = result.scenarios.filter((s) => s.storage);
    if (withStorage.length > 0) {
      lines.push("Storage commits (from the nodes' /metrics): " +
        withStorage.map((s) => `(${s.id}) ${s.storage.insertsPerSec}/s of ${fmt(s.storage.rowsPerInsert)} rows, ${s.storage.meanCommitMs} ms each`).join("; ") + ".");
    }
    lines.push("CPU cores used during each scenario (1.0 = one core busy; \"outside\": kernel threads such as writeback, and any other process, on average / in the busiest second): " +
      result.scenarios.map((s) => `(${s.id}) ${cpuCell(s.cpuCores)}${otherCpuCell(s.otherCpu)}`).join("; ") + ".");
    const budgets = result.scenarios.filter((s) => s.cpuBudget);
    if (budgets.length > 0) {
      lines.push(`CPU budget of the throughput targets on ${m.cores} cores (the CPU all processes used per event, per request in (b) → the rate that cost allows on these cores; the target's budget per event; what the other processes' measured cost leaves the node at the target rate): ` +
        budgets.map((s) => budgetCell(s)).join("; ") + ".");
    }
    const d = result.scenarios.find((s) => s.id === "d");
    if (d && d.worstWindowP99Ms !== undefined) {
      const spikeRequestsPerSec = Math.max(...seed004.PHASES.map((p) => p.requestsPerSec));
      const busiest =
        d.busiestWindowRequestsPerSec === undefined
          ? ""
          : `; busiest 10 s window ${fmt(d.busiestWindowRequestsPerSec)} requests/s (${fmt(d.busiestWindowRequestsPerSec * seed004.EVENTS_PER_REQUEST)} events/s; the spike offers ${fmt(spikeRequestsPerSec)} and ${fmt(spikeRequestsPerSec * seed004.EVENTS_PER_REQUEST)})`;
      lines.push(`(d): ${fmt(d.offeredEvents)} events offered, ${fmt(d.acceptedEvents)} acknowledged${busiest}; worst p99 of any 10 s window ${ms(d.worstWindowP99Ms)} ms.`);
      const a = d.artillery;
      if (a) {
        const l = a.generatorLoopDelayMs;
        const lag = l ? `; Artillery's own event loop (which its latencies include) ran over 100 ms late at p99 in ${l.secondsOver100ms} of ${l.seconds} seconds, worst second's p99 ${ms(l.worstSecondP99)} ms` : "";
        lines.push(`(d) offered by Artillery instead (the same profile, each user 10 requests 100 ms apart on one connection; not judged): ${fmt(a.acceptedEvents)} events acknowledged, ${fmt(a.errors)} errors; busiest 10 s window ${fmt(a.busiestWindowRequestsPerSec)} requests/s; ack p50 / p95 / p99 ${ms(a.latencyMs.p50)} / ${ms(a.latencyMs.p95)} / ${ms(a.latencyMs.p99)} ms, worst 10 s window p99 ${ms(a.worstWindowP99Ms)}; CPU cores ${cpuCell(a.cpuCores)}${lag}.`);
      }
    }
    lines.push("Load average (1 min) before each scenario: " + result.scenarios.map((s) => `(${s.id}) ${s.loadavg.before[0]}`).join(", ") + ".");
    lines.push("");
  }
  const mem = result.memory;
  if (mem && (mem.idleNodeRssMb !== undefined || mem.clusterIdleNodeRssMb)) {
    lines.push("**Memory**");
    lines.push("");
    lines.push("| Measurement | RSS MB | target | met? |");
    lines.push("|---|---:|---|---|");
    const withNats = result.settings?.singleNode === "jetstream";
    const single = withNats ? "node (one, with NATS)" : "single-process node (ClickHouse sink)";
    if (mem.idleNodeRssMb !== undefined) lines.push(`| Idle ${single} | ${mem.idleNodeRssMb} | < 150 MB | ${mem.idleMet ? "yes" : "**no**"} |`);
    if (mem.clusterIdleNodeRssMb) lines.push(`| Idle cluster nodes (n1, n2, n3) | ${mem.clusterIdleNodeRssMb.join(", ")} | < 150 MB | ${mem.clusterIdleNodeRssMb.every((x) => x < 150) ? "yes" : "**no**"} |`);
    if (mem.liveSessionsNodeRssMb !== undefined) lines.push(`| ${withNats ? "Node (one, with NATS)" : "Single-process node"} after events from 100,000 distinct sessions | ${mem.liveSessionsNodeRssMb} | < 400 MB | ${mem.liveMet ? "yes" : "**no**"} |`);
    lines.push("");
  }
  return lines.join("\n");
}

module.exports = { renderMarkdown };

#!/usr/bin/env node
"use strict";
/**
 * `npm run bench`: baselines and scenarios in one run, on this machine, with every server
 * started here (nats-server, clickhouse-server, the node or nodes, the bare uWS baseline).
 *
 *   ceilings  transport: bare uWS (parse JSON / msgpack, answer)   storage: direct JSONEachRow insert (and TabSeparated, the node's format)
 *   (a) HTTP batches of 100 events, 50 connections, single-process node, ClickHouse sink
 *   (b) single-event POSTs, 50 connections, same node
 *   (c) 1,000 WebSocket streams sending msgpack batches, same node
 *   (d) seed 004's profile, 2k events/s then a 20k events/s spike, same node: offered by an
 *       open-loop generator (judged), then by Artillery (reported beside it)
 *   (e) (a) against a 3-node cluster (NATS JetStream acks, ClickHouse storage writers)
 *   plus idle RSS per node and RSS after 100k live sessions.
 *
 * Writes bench/results/<timestamp>.json and .md and prints the table.
 *
 * Options: --only=ceilings,a,b,c,d,e,rss   --duration=<s> (a,b,c,e; default 20)
 *          --cpu-prof (profile the single-process node; .cpuprofile under bench/results/tmp/prof)
 *          --label=<text> (stored in the result)   --no-write (print only)
 *          --result-json=<file> (also write the result there, with or without --no-write; compare.js reads it)
 *          --no-artillery ((d) with the open-loop generator only, without Artillery's run beside it)
 *          --no-readme (a full run, without --only, also puts its tables into README.md; this skips that)
 *          --node-env=K=V,K2=V2 (extra environment for every node, e.g. BATCH_MAX_WAIT_MS=50)
 *          --node-args="<flags>" (extra node/V8 flags for every node process)
 *          --jetstream (rss and a-d against one node with NATS_URL set: acks on the JetStream publish,
 *            its storage writer consuming the stream; such a run does not update README.md)
 *          --spool (rss and a-d against the single-process node with SPOOL_DIR in its data dir:
 *            acks on the spool's fdatasync, ClickHouse inserts behind it; no README.md update either)
 *          --node-root=<dir> (run the node from another checkout's dist/, e.g. a build of the
 *            code before an optimisation, for before/after numbers on the same machine)
 *          --storage-dir=<dir> (where clickhouse-server, nats-server and the nodes keep their data;
 *            default: a journaled ext4 image on this machine's disk, loop-mounted for the run (see
 *            lib/data-fs.js: the VM's root filesystem has no journal, which makes every file create
 *            slow); --storage-dir=/tmp runs on the root filesystem, /dev/shm takes the disk out)
 */
const fs = require("node:fs");
const path = require("node:path");
const { spawn } = require("node:child_process");
const { RssSampler, loadAverage, machine, memoryOf } = require("./lib/proc");
const { bodyPool } = require("./lib/events");
const { httpLoad } = require("./lib/http-load");
const { openLoopLoad } = require("./lib/open-loop");
const seed004 = require("./lib/seed004");
const { wsLoad } = require("./lib/ws-load");
const { wsRawLoad } = require("./lib/ws-raw-load");
const { storageCeiling } = require("./lib/storage-ceiling");
const servers = require("./lib/servers");
const { renderMarkdown } = require("./lib/report");
const { updateReadme, README } = require("./lib/readme");
const { mountJournaledScratch, removeStaleScratch, describeFilesystem } = require("./lib/data-fs");
const { parseArgs } = require("./lib/args");

const args = parseArgs();
/** Extra V8/Node flags for every node process, e.g. --node-args=--max-semi-space-size=64 (space-separated). */
const NODE_ARGS = typeof args["node-args"] === "string" ? args["node-args"].split(" ").filter(Boolean) : [];
const NODE_ROOT = typeof args["node-root"] === "string" ? path.resolve(args["node-root"]) : servers.ROOT;
const ONLY = args.only ? new Set(String(args.only).split(",")) : null;
/** Single-node steps against one node with NATS (JetStream acks) instead of the single-process node. */
const JETSTREAM = Boolean(args.jetstream);
/** Single-node steps against the single-process node with a spool (SPOOL_DIR) in front of ClickHouse. */
const SPOOL = Boolean(args.spool) && !JETSTREAM;
const wants = (step) => !ONLY || ONLY.has(step);
const DURATION = Number(args.duration ?? 20);
const CEILING_DURATION = Math.min(DURATION, 10);
const WARMUP_SEC = 3;
const API_KEY = "bench-key";
const RESULTS = path.join(__dirname, "results");
/** Node settings of this run beyond the defaults (stated in the result). */
const NODE_ENV_OVERRIDES = Object.fromEntries(
  (typeof args["node-env"] === "string" ? args["node-env"].split(",") : []).filter(Boolean).map((kv) => {
    const i = kv.indexOf("=");
    return [kv.slice(0, i), kv.slice(i + 1)];
  }),
);
const TMP = path.join(RESULTS, "tmp");

const TARGETS = {
  a: "≥ 150,000 events/s, all landed",
  b: "≥ 25,000 req/s, p99 < 25 ms",
  c: "≥ 200,000 events/s, p99 < 50 ms",
  d: "p99 < 200 ms, 0 errors",
  e: "≥ 150,000 events/s (as a)",
  idle: "< 150 MB per node",
  live: "< 400 MB",
};

/** The rate each throughput target asks for, in the unit it counts (events or requests per second). */
const TARGET_RATES = {
  a: { perSec: 150_000, unit: "event" },
  b: { perSec: 25_000, unit: "request" },
  c: { perSec: 200_000, unit: "event" },
  e: { perSec: 150_000, unit: "event" },
};

function log(...parts) {
  console.log(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...parts);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Rows in ingest.events once nothing more is arriving (stable for `stableMs`), or at the deadline. */
async function settledCount(chUrl, { stableMs = 1000, timeoutMs = 30_000, atLeast = 0 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  let since = Date.now();
  for (;;) {
    const n = await servers.chCount(chUrl, "ingest.events").catch(() => last);
    if (n !== last) {
      last = n;
      since = Date.now();
    } else if (Date.now() - since >= stableMs && n >= atLeast) {
      return n;
    }
    if (Date.now() > deadline) return n;
    await sleep(200);
  }
}

function singleNodeEnv(ch) {
  return {
    NODE_ID: "bench-1",
    CLICKHOUSE_URL: ch.url,
    CLICKHOUSE_DATABASE: "ingest",
    INGEST_API_KEYS: `${API_KEY}=bench`,
    // The default per-key bucket (100k events/s) is below target (a): one key drives the whole
    // load here, so the bucket is raised; the lease path (rate-limiter calls) still runs.
    RATE_LIMIT_EVENTS_PER_SEC: "10000000",
    RATE_LIMIT_BURST: "20000000",
    // Batching stays at the node's defaults: single-process ClickHouse 20,000 rows / 10 ms (the
    // linger is a floor under every ack there), cluster 50,000 rows / 1 s (acks come from JetStream).
    ...NODE_ENV_OVERRIDES,
  };
}

/** Runs an HTTP scenario: warm-up, measured window, landed count, RSS/CPU per process. */
/** Sums of the storage writer's counters on the nodes' /metrics (every node, every sink). */
async function storageCounters(urls) {
  const totals = { inserts: 0, rows: 0, flushMsSum: 0 };
  for (const url of urls) {
    try {
      const text = await (await fetch(`${url}/metrics`)).text();
      for (const line of text.split("\n")) {
        const value = Number(line.slice(line.lastIndexOf(" ") + 1));
        if (line.startsWith("ingest_storage_batches_flushed{")) totals.inserts += value;
        else if (line.startsWith("ingest_storage_rows{")) totals.rows += value;
        else if (line.startsWith("ingest_storage_flush_latency_ms_sum{")) totals.flushMsSum += value;
      }
    } catch {
      // A node that does not answer contributes nothing; the stats are informative only.
    }
  }
  return totals;
}

/** Storage commits between two `storageCounters` readings: how many, how big, how long. */
function storageStats(before, after, seconds) {
  const inserts = after.inserts - before.inserts;
  if (inserts <= 0) return undefined;
  return {
    insertsPerSec: +(inserts / seconds).toFixed(1),
    rowsPerInsert: Math.round((after.rows - before.rows) / inserts),
    meanCommitMs: +((after.flushMsSum - before.flushMsSum) / inserts).toFixed(1),
  };
}

async function httpScenario({ id, name, urls, bodies, eventsPerRequest, connections, durationSec, chUrl, pids, landTimeoutMs, landStableMs }) {
  log(`${id}: warm-up ${WARMUP_SEC}s`);
  await httpLoad({ urls, connections, durationSec: WARMUP_SEC, bodies, headers: { "x-api-key": API_KEY } });
  const before = chUrl ? await settledCount(chUrl, { timeoutMs: landTimeoutMs, stableMs: landStableMs }) : 0;
  const loadBefore = loadAverage();
  log(`${id}: ${name} for ${durationSec}s (load ${loadBefore.join(" ")})`);
  const sampler = new RssSampler(pids).start();
  const countersBefore = await storageCounters(urls);
  const load = await httpLoad({ urls, connections, durationSec, bodies, headers: { "x-api-key": API_KEY } });
  const countersAfter = await storageCounters(urls);
  const loadAfter = loadAverage();
  const accepted = load.ok * eventsPerRequest;
  const after = chUrl ? await settledCount(chUrl, { atLeast: before + accepted, timeoutMs: landTimeoutMs, stableMs: landStableMs }) : 0;
  const usage = sampler.stop(load.durationSec);
  const landed = after - before;
  return {
    id,
    name,
    durationSec: +load.durationSec.toFixed(1),
    requestsPerSec: Math.round(load.requests / load.durationSec),
    acceptedEventsPerSec: Math.round(accepted / load.durationSec),
    landedEventsPerSec: chUrl ? Math.round(landed / load.durationSec) : null,
    acceptedEvents: accepted,
    landedEvents: chUrl ? landed : null,
    allLanded: chUrl ? landed >= accepted : null,
    latencyMs: load.latencyMs,
    errors: load.errors + load.non2xx,
    statusCounts: load.statusCounts,
    storage: storageStats(countersBefore, countersAfter, load.durationSec),
    ...usage,
    loadavg: { before: loadBefore, after: loadAfter },
  };
}

/** Requests each Artillery user sends (spike.yml's loop count): arrivals/s = requests/s ÷ this. */
const ARTILLERY_REQUESTS_PER_USER = 10;

async function runArtillery(url, outFile, probeDir, onSpawn = () => undefined) {
  const bin = path.join(__dirname, "node_modules/artillery/bin/run");
  const started = Date.now();
  // seed004.js is the one definition of the profile; spike.yml's phases are its copy for people
  // who run the file by hand.
  const phases = seed004.PHASES.map((p) => ({ name: p.name, duration: p.durationSec, arrivalRate: p.requestsPerSec / ARTILLERY_REQUESTS_PER_USER }));
  const overrides = JSON.stringify({ config: { phases } });
  const child = spawn(process.execPath, [bin, "run", "--target", url, "--output", outFile, "--overrides", overrides, path.join(__dirname, "artillery/spike.yml")], {
    cwd: path.join(__dirname, "artillery"),
    env: {
      ...process.env,
      BENCH_API_KEY: API_KEY,
      ARTILLERY_DISABLE_TELEMETRY: "true",
      DO_NOT_TRACK: "1",
      NODE_OPTIONS: `${process.env.NODE_OPTIONS || ""} --require ${path.join(__dirname, "lib/loop-delay-probe.js")}`.trim(),
      LOOP_DELAY_PROBE_DIR: probeDir,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  onSpawn(child.pid);
  let output = "";
  child.stdout.on("data", (c) => (output = (output + c).slice(-20_000)));
  child.stderr.on("data", (c) => (output = (output + c).slice(-20_000)));
  const code = await new Promise((r) => child.once("exit", r));
  if (code !== 0 || !fs.existsSync(outFile)) throw new Error(`artillery failed (${code}):\n${output.slice(-3000)}`);
  return { report: JSON.parse(fs.readFileSync(outFile, "utf8")), pid: child.pid, seconds: (Date.now() - started) / 1000 };
}

/** The worst event-loop delay any thread of a probed process recorded (see lib/loop-delay-probe.js). */
function worstLoopDelay(probeDir) {
  let worst = null;
  for (const file of fs.readdirSync(probeDir)) {
    const summary = JSON.parse(fs.readFileSync(path.join(probeDir, file), "utf8"));
    if (worst === null || summary.worstSecondP99 > worst.worstSecondP99) worst = summary;
  }
  return worst;
}

/** Scenario (d)'s profile offered by Artillery; returns what it measured and what it cost. */
async function artilleryProfile(nodeUrl, chUrl, pids) {
  const before = await settledCount(chUrl);
  const sampler = new RssSampler(pids).start();
  const started = Date.now();
  const probeDir = fs.mkdtempSync(path.join(TMP, "loop-delay-"));
  const run = await runArtillery(nodeUrl, path.join(TMP, `artillery-${Date.now()}.json`), probeDir, (pid) => sampler.add("artillery", pid));
  const summary = artillerySummary(run.report);
  const accepted = summary.ok * seed004.EVENTS_PER_REQUEST;
  const after = await settledCount(chUrl, { atLeast: before + accepted });
  const usage = sampler.stop((Date.now() - started) / 1000);
  return {
    acceptedEvents: accepted,
    allLanded: after - before >= accepted,
    latencyMs: summary.latencyMs,
    worstWindowP99Ms: summary.worstWindowP99,
    busiestWindowRequestsPerSec: summary.busiestWindowRequestsPerSec,
    errors: summary.errors,
    detail: { errorKinds: summary.errorKinds, vusersFailed: summary.vusersFailed },
    generatorLoopDelayMs: worstLoopDelay(probeDir),
    ...usage,
  };
}

function artillerySummary(report) {
  const agg = report.aggregate;
  const counters = agg.counters || {};
  const rt = (agg.summaries || {})["http.response_time"] || {};
  let worstWindowP99 = 0;
  // Artillery reports every 10 s; the busiest window shows what rate the generator delivered
  // (the first and last windows are partial, so they never overstate it).
  let busiestWindowRequests = 0;
  for (const w of report.intermediate || []) {
    const s = (w.summaries || {})["http.response_time"];
    if (s && s.p99 > worstWindowP99) worstWindowP99 = s.p99;
    busiestWindowRequests = Math.max(busiestWindowRequests, (w.counters || {})["http.requests"] || 0);
  }
  let errors = 0;
  const errorKinds = {};
  for (const [k, v] of Object.entries(counters)) {
    if (k.startsWith("errors.")) {
      errors += v;
      errorKinds[k] = v;
    }
    if (/^http\.codes\.\d+$/.test(k) && !/^http\.codes\.2\d\d$/.test(k)) {
      errors += v;
      errorKinds[k] = v;
    }
  }
  const ok = Object.entries(counters)
    .filter(([k]) => /^http\.codes\.2\d\d$/.test(k))
    .reduce((s, [, v]) => s + v, 0);
  return {
    requests: counters["http.requests"] || 0,
    ok,
    errors,
    errorKinds,
    vusersFailed: counters["vusers.failed"] || 0,
    latencyMs: { p50: rt.median ?? rt.p50, p95: rt.p95, p99: rt.p99, max: rt.max },
    worstWindowP99,
    busiestWindowRequestsPerSec: busiestWindowRequests / 10,
  };
}

async function main() {
  fs.mkdirSync(TMP, { recursive: true });
  // The server helpers put their data dirs under os.tmpdir(), which follows TMPDIR.
  let scratch = null;
  let storageNote = null;
  if (typeof args["storage-dir"] === "string") {
    process.env.TMPDIR = args["storage-dir"];
  } else {
    for (const stale of removeStaleScratch()) log("removed the scratch filesystem of a run that did not finish:", stale);
    scratch = mountJournaledScratch();
    if (scratch.dir !== null) process.env.TMPDIR = scratch.dir;
    else storageNote = `no journaled scratch filesystem: ${scratch.reason}`;
  }
  const storageDir = require("node:os").tmpdir();
  const startedAt = new Date();
  const result = {
    startedAt: startedAt.toISOString(),
    label: args.label ?? null,
    machine: machine({ loadavgAtStart: loadAverage() }),
    settings: {
      durationSec: DURATION,
      ceilingDurationSec: CEILING_DURATION,
      warmupSec: WARMUP_SEC,
      connections: 50,
      nodeEnv: { RATE_LIMIT_EVENTS_PER_SEC: "10000000", RATE_LIMIT_BURST: "20000000", ...NODE_ENV_OVERRIDES },
      nodeRoot: NODE_ROOT,
      nodeArgs: NODE_ARGS,
      storageDir,
      storageFs: describeFilesystem(storageDir) + (scratch?.dir ? ", a loop-mounted image on this machine's disk" : ""),
      storageNote,
      singleNode: JETSTREAM ? "jetstream" : SPOOL ? "spool" : "single-process",
    },
    ceilings: {},
    scenarios: [],
    memory: {},
  };
  log("machine", JSON.stringify(result.machine));
  log("server data on", result.settings.storageFs, storageNote ? `(${storageNote})` : "");

  // Unmounted last: every server's data dir is inside it.
  const cleanups = scratch?.dir ? [async () => scratch.unmount()] : [];
  const cleanup = async () => {
    while (cleanups.length) await cleanups.pop()().catch((e) => log("cleanup failed", e.message));
  };
  process.on("SIGINT", () => cleanup().then(() => process.exit(130)));
  process.on("SIGTERM", () => cleanup().then(() => process.exit(143)));

  try {
    log("starting clickhouse-server");
    const ch = await servers.startClickHouseServer();
    cleanups.push(() => ch.destroy());
    result.machine.clickhouseServer = (await servers.chQuery(ch.url, "SELECT version()")).trim();
    const self = process.pid;

    const batchBodies = bodyPool({ count: 1000, eventsPerRequest: 100, sessionsPerRequest: 1, prefix: "a" });
    const singleBodies = bodyPool({ count: 10_000, eventsPerRequest: 1, prefix: "b" });

    // ---------------------------------------------------------------- ceilings
    if (wants("ceilings")) {
      const base = await servers.startBaseline();
      const pids = { baseline: base.pid, loadgen: self };
      const batch = await httpScenario({
        id: "ceiling-http-batch",
        name: "bare uWS, batches of 100, 50 conns",
        urls: [base.url], bodies: batchBodies, eventsPerRequest: 100, connections: 50, durationSec: CEILING_DURATION, pids,
      });
      const single = await httpScenario({
        id: "ceiling-http-single",
        name: "bare uWS, single events, 50 conns",
        urls: [base.url], bodies: singleBodies, eventsPerRequest: 1, connections: 50, durationSec: CEILING_DURATION, pids,
      });
      log("ceiling-ws: bare uWS, 1,000 WebSocket streams");
      const wsSampler = new RssSampler(pids).start();
      const ws = await wsRawLoad({ url: base.url.replace("http", "ws") + "/v1/stream", streams: 1000, eventsPerBatch: 20, window: 2, durationSec: CEILING_DURATION, prefix: "cw" });
      const wsUsage = wsSampler.stop(ws.durationSec);
      await base.stop();
      log("ceiling-storage: direct JSONEachRow inserts");
      const storageSampler = new RssSampler({ clickhouse: ch.pid, loadgen: self }).start();
      const storage = await storageCeiling({ url: ch.url, durationSec: CEILING_DURATION });
      const storageUsage = storageSampler.stop(storage.durationSec);
      // The node itself inserts TabSeparated (cheaper for it and for the server): measured too.
      log("ceiling-storage: direct TabSeparated inserts (the node's format)");
      const tsvSampler = new RssSampler({ clickhouse: ch.pid, loadgen: self }).start();
      const storageTsv = await storageCeiling({ url: ch.url, durationSec: CEILING_DURATION, format: "TabSeparated" });
      const storageTsvUsage = tsvSampler.stop(storageTsv.durationSec);
      result.ceilings = {
        httpBatch: batch,
        httpSingle: single,
        ws: { ...ws, acceptedEventsPerSec: Math.round(ws.ackedEventsInWindow / ws.durationSec), ...wsUsage },
        storage: { ...storage, ...storageUsage },
        storageTsv: { ...storageTsv, ...storageTsvUsage },
      };
      log("ceilings", JSON.stringify({
        httpBatch: batch.acceptedEventsPerSec, httpSingle: single.requestsPerSec,
        ws: result.ceilings.ws.acceptedEventsPerSec, storage: storage.eventsPerSec, storageTsv: storageTsv.eventsPerSec,
      }));
    }

    // ---------------------------------------------------------------- single-process node
    const singleSteps = ["rss", "a", "b", "c", "d"].filter(wants);
    if (singleSteps.length > 0) {
      const nodeArgs = [...NODE_ARGS, ...(args["cpu-prof"] ? ["--cpu-prof", `--cpu-prof-dir=${path.join(TMP, "prof")}`] : [])];
      // --jetstream: the same steps against one node with NATS_URL set (acks on the JetStream
      // publish, the node's storage writer consuming the stream), the deployment an operator
      // picks when ack latency should not wait for a ClickHouse insert.
      const nats = JETSTREAM ? await servers.startNats() : null;
      if (nats) cleanups.push(() => nats.stop());
      log(nats ? "starting one node with NATS (JetStream acks, ClickHouse storage writer)" : "starting single-process node (ClickHouse sink)");
      const spool = SPOOL ? { SPOOL_DIR: servers.IN_DATA_DIR("spool") } : {};
      const node = await servers.startNode({ ...singleNodeEnv(ch), ...spool, ...(nats ? { NATS_URL: nats.url } : {}) }, { nodeArgs, root: NODE_ROOT });
      cleanups.push(() => node.stop());
      const pids = { node: node.pid, ...(nats ? { nats: nats.pid } : {}), clickhouse: ch.pid, loadgen: self };

      if (wants("rss")) {
        await sleep(2000);
        result.memory.idleNodeRssMb = Math.round(memoryOf(node.pid).rssMb);
        log(`idle RSS ${result.memory.idleNodeRssMb} MB; sending 100k sessions`);
        const liveBodies = bodyPool({ count: 1000, eventsPerRequest: 100, sessionsPerRequest: 100, prefix: "live" });
        let next = 0;
        let failed = 0;
        await Promise.all(Array.from({ length: 20 }, async () => {
          while (next < liveBodies.length) {
            const body = liveBodies[next++];
            const res = await fetch(`${node.url}/v1/events`, { method: "POST", body, headers: { "content-type": "application/json", "x-api-key": API_KEY } });
            await res.text();
            if (res.status !== 202) failed++;
          }
        }));
        await sleep(1000);
        result.memory.liveSessions = 100_000;
        result.memory.liveSessionsFailedRequests = failed;
        result.memory.liveSessionsNodeRssMb = Math.round(memoryOf(node.pid).rssMb);
        log(`RSS after 100k sessions ${result.memory.liveSessionsNodeRssMb} MB`);
      }

      if (wants("a")) {
        result.scenarios.push({
          ...(await httpScenario({
            id: "a", name: "HTTP batches of 100 events, 50 connections",
            urls: [node.url], bodies: batchBodies, eventsPerRequest: 100, connections: 50, durationSec: DURATION, chUrl: ch.url, pids,
          })),
          ceiling: "httpBatch",
        });
      }
      if (wants("b")) {
        result.scenarios.push({
          ...(await httpScenario({
            id: "b", name: "single-event POSTs, 50 connections",
            urls: [node.url], bodies: singleBodies, eventsPerRequest: 1, connections: 50, durationSec: DURATION, chUrl: ch.url, pids,
          })),
          ceiling: "httpSingle",
        });
      }
      if (wants("c")) {
        const wsUrl = node.url.replace("http", "ws") + "/v1/stream";
        log("c: warm-up");
        await wsLoad({ url: wsUrl, apiKey: API_KEY, streams: 200, eventsPerBatch: 20, window: 2, durationSec: WARMUP_SEC, prefix: "cwarm" });
        const before = await settledCount(ch.url);
        const loadBefore = loadAverage();
        log(`c: 1,000 WebSocket streams for ${DURATION}s (load ${loadBefore.join(" ")})`);
        const sampler = new RssSampler(pids).start();
        const countersBefore = await storageCounters([node.url]);
        const ws = await wsLoad({ url: wsUrl, apiKey: API_KEY, streams: 1000, eventsPerBatch: 20, window: 2, durationSec: DURATION, prefix: "c" });
        const countersAfter = await storageCounters([node.url]);
        const after = await settledCount(ch.url, { atLeast: before + ws.ackedEventsTotal });
        const usage = sampler.stop(ws.durationSec);
        result.scenarios.push({
          id: "c",
          name: "1,000 WebSocket streams, msgpack batches of 20, 2 in flight each",
          durationSec: +ws.durationSec.toFixed(1),
          requestsPerSec: Math.round(ws.ackedBatches / ws.durationSec),
          acceptedEventsPerSec: Math.round(ws.ackedEventsInWindow / ws.durationSec),
          landedEventsPerSec: Math.round((after - before) / ws.durationSec),
          acceptedEvents: ws.ackedEventsTotal,
          landedEvents: after - before,
          allLanded: after - before >= ws.ackedEventsTotal,
          latencyMs: ws.latencyMs,
          errors: ws.errorFrames + ws.connectFailures + ws.closedEarly + ws.unanswered,
          detail: { throttles: ws.throttles, connectFailures: ws.connectFailures, closedEarly: ws.closedEarly, unanswered: ws.unanswered },
          storage: storageStats(countersBefore, countersAfter, ws.durationSec),
          ...usage,
          loadavg: { before: loadBefore, after: loadAverage() },
          ceiling: "ws",
        });
      }
      if (wants("d")) {
        const before = await settledCount(ch.url);
        const loadBefore = loadAverage();
        log(`d: seed 004 profile, open-loop generator (load ${loadBefore.join(" ")})`);
        const sampler = new RssSampler(pids).start();
        const started = Date.now();
        const countersBefore = await storageCounters([node.url]);
        const load = await openLoopLoad({ url: node.url, phases: seed004.PHASES, makeBody: () => seed004.seedBatchBody(), headers: { "x-api-key": API_KEY } });
        const countersAfter = await storageCounters([node.url]);
        const accepted = load.ok * seed004.EVENTS_PER_REQUEST;
        const after = await settledCount(ch.url, { atLeast: before + accepted });
        const usage = sampler.stop((Date.now() - started) / 1000);
        const phaseSec = seed004.profileSeconds();
        const scenario = {
          id: "d",
          name: "seed 004 profile (open loop): 2k ev/s 20 s, 20k ev/s spike 15 s, 2k ev/s 10 s; 10 events/request",
          durationSec: phaseSec,
          requestsPerSec: Math.round(load.requests / phaseSec),
          acceptedEventsPerSec: Math.round(accepted / phaseSec),
          landedEventsPerSec: Math.round((after - before) / phaseSec),
          acceptedEvents: accepted,
          landedEvents: after - before,
          allLanded: after - before >= accepted,
          offeredEvents: seed004.offeredRequests() * seed004.EVENTS_PER_REQUEST,
          latencyMs: load.latencyMs,
          worstWindowP99Ms: Math.max(...load.windows.map((w) => w.latencyMs.p99)),
          busiestWindowRequestsPerSec: Math.max(...load.windows.map((w) => w.requestsPerSec)),
          windows: load.windows,
          storage: storageStats(countersBefore, countersAfter, phaseSec),
          errors: load.errors + load.non2xx,
          statusCounts: load.statusCounts,
          detail: { connectionsOpened: load.maxSocketsUsed },
          ...usage,
          loadavg: { before: loadBefore, after: loadAverage() },
          ceiling: "storage",
        };
        if (!args["no-artillery"]) {
          log("d: the same profile with Artillery (reported beside (d), not judged)");
          scenario.artillery = await artilleryProfile(node.url, ch.url, pids);
        }
        result.scenarios.push(scenario);
      }
      await node.stop();
      cleanups.pop();
      if (nats) {
        await nats.stop();
        cleanups.pop();
      }
    }

    // ---------------------------------------------------------------- 3-node cluster
    if (wants("e")) {
      log("starting nats-server and a 3-node cluster");
      const nats = await servers.startNats();
      cleanups.push(() => nats.stop());
      const env = {
        ...singleNodeEnv(ch),
        NATS_URL: nats.url,
      };
      const nodes = [];
      for (const id of ["n1", "n2", "n3"]) {
        const nodeArgs = [...NODE_ARGS, ...(args["cpu-prof"] ? ["--cpu-prof", `--cpu-prof-dir=${path.join(TMP, "prof", id)}`] : [])];
        const n = await servers.startNode({ ...env, NODE_ID: id }, { root: NODE_ROOT, nodeArgs });
        nodes.push(n);
        cleanups.push(() => n.stop());
      }
      await sleep(3000);
      result.memory.clusterIdleNodeRssMb = nodes.map((n) => Math.round(memoryOf(n.pid).rssMb));
      const pids = { n1: nodes[0].pid, n2: nodes[1].pid, n3: nodes[2].pid, nats: nats.pid, clickhouse: ch.pid, loadgen: self };
      result.scenarios.push({
        ...(await httpScenario({
          id: "e", name: "(a) against a 3-node cluster (JetStream acks, 3 storage writers)",
          urls: nodes.map((n) => n.url), bodies: batchBodies, eventsPerRequest: 100, connections: 50, durationSec: DURATION, chUrl: ch.url, pids,
          landTimeoutMs: 120_000, landStableMs: 3000,
        })),
        ceiling: "httpBatch",
      });
      for (const n of nodes) {
        await n.stop();
        cleanups.pop();
      }
      await nats.stop();
      cleanups.pop();
    }
  } finally {
    await cleanup();
  }

  finish(result, startedAt);
}

function finish(result, startedAt) {
  const c = result.ceilings;
  for (const s of result.scenarios) {
    const ceiling = c[s.ceiling];
    s.ratio = {};
    if (ceiling) {
      s.ratio.transport =
        s.ceiling === "httpSingle"
          ? +(s.requestsPerSec / ceiling.requestsPerSec).toFixed(3)
          : s.ceiling === "storage"
            ? null
            : +(s.acceptedEventsPerSec / ceiling.acceptedEventsPerSec).toFixed(3);
    }
    if (c.storage && s.landedEventsPerSec !== null) s.ratio.storage = +(s.landedEventsPerSec / c.storage.eventsPerSec).toFixed(3);
    // Node CPU per accepted event and per request: how much work the hot path costs, which a
    // disturbed or latency-bound run does not change much (unlike events/s).
    const nodeCores = Object.entries(s.cpuCores || {})
      .filter(([name]) => isNodeProcess(name))
      .reduce((sum, [, cores]) => sum + cores, 0);
    const events = s.acceptedEventsPerSec * s.durationSec;
    const requests = s.requestsPerSec * s.durationSec;
    s.nodeCpuUsPerEvent = events > 0 ? +((nodeCores * s.durationSec * 1e6) / events).toFixed(2) : null;
    s.nodeCpuUsPerRequest = requests > 0 ? +((nodeCores * s.durationSec * 1e6) / requests).toFixed(1) : null;
    s.cpuBudget = cpuBudget(s, result.machine.cores);
    s.target = TARGETS[s.id];
    s.met = targetMet(s);
    log(`(${s.id})`, JSON.stringify({ cpuUsPerEvent: s.nodeCpuUsPerEvent, cpuUsPerRequest: s.nodeCpuUsPerRequest, statusCounts: s.statusCounts, detail: s.detail, cpuCores: s.cpuCores, loadavg: s.loadavg }));
  }
  result.memory.targets = { idle: TARGETS.idle, live: TARGETS.live };
  if (result.memory.idleNodeRssMb !== undefined) result.memory.idleMet = result.memory.idleNodeRssMb < 150;
  if (result.memory.liveSessionsNodeRssMb !== undefined) result.memory.liveMet = result.memory.liveSessionsNodeRssMb < 400;
  result.finishedAt = new Date().toISOString();
  result.machine.loadavgAtEnd = loadAverage();
  const markdown = renderMarkdown(result);
  console.log("\n" + markdown);
  if (typeof args["result-json"] === "string") fs.writeFileSync(args["result-json"], JSON.stringify(result, null, 2) + "\n");
  if (!args["no-write"]) {
    const stamp = startedAt.toISOString().replace(/[:]/g, "-").replace(/\.\d+Z$/, "Z");
    fs.writeFileSync(path.join(RESULTS, `${stamp}.json`), JSON.stringify(result, null, 2) + "\n");
    fs.writeFileSync(path.join(RESULTS, `${stamp}.md`), markdown + "\n");
    log(`wrote bench/results/${stamp}.json and .md`);
    if (!ONLY && !JETSTREAM && !SPOOL && !args["no-readme"] && updateReadme(README, markdown, `${stamp}.md`)) log("updated the Benchmarks table in README.md");
  }
}

/** The node processes among a scenario's measured ones: `node` (single-process) or `n1`, `n2`, ... (cluster). */
function isNodeProcess(name) {
  return name === "node" || /^n\d$/.test(name);
}

/**
 * What the measured CPU says about a throughput target. Every process of the scenario (node(s),
 * ClickHouse, nats-server, load generator) shares the machine's cores, so at the same CPU cost
 * per event the whole mix can reach at most cores / (its CPU per event); and at the target rate
 * the processes other than the node leave the node `nodeBudgetUs` per event (negative: the target
 * is out of reach even for a node that cost nothing). An estimate: costs per event move with
 * batch sizes (ClickHouse's per-part cost), but not by the factors the gaps are made of.
 */
function cpuBudget(s, cores) {
  const rate = TARGET_RATES[s.id];
  if (!rate || !s.cpuCores) return null;
  const perSec = rate.unit === "request" ? s.requestsPerSec : s.acceptedEventsPerSec;
  if (!(perSec > 0)) return null;
  let allCores = 0;
  let otherCores = 0;
  for (const [name, used] of Object.entries(s.cpuCores)) {
    allCores += used;
    if (!isNodeProcess(name)) otherCores += used;
  }
  const allUs = (allCores * 1e6) / perSec;
  const othersUs = (otherCores * 1e6) / perSec;
  const round = (x) => +x.toFixed(2);
  return {
    unit: rate.unit,
    machineUsPer: round(allUs),
    othersUsPer: round(othersUs),
    nodeUsPer: round(allUs - othersUs),
    affordablePerSec: Math.round((cores * 1e6) / allUs),
    targetPerSec: rate.perSec,
    targetUsPer: round((cores * 1e6) / rate.perSec),
    nodeBudgetUs: round((cores * 1e6) / rate.perSec - othersUs),
  };
}

function targetMet(s) {
  const p99 = s.latencyMs.p99;
  switch (s.id) {
    case "a":
      return s.acceptedEventsPerSec >= 150_000 && s.allLanded === true && s.errors === 0;
    case "b":
      return s.requestsPerSec >= 25_000 && p99 < 25;
    case "c":
      return s.acceptedEventsPerSec >= 200_000 && p99 < 50;
    case "d":
      return p99 < 200 && s.errors === 0;
    case "e":
      return s.acceptedEventsPerSec >= 150_000 && s.allLanded === true && s.errors === 0;
    default:
      return null;
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});

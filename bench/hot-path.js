"use strict";
/**
 * Per-stage CPU cost (process CPU time, GC threads included) of the single-process hot path, without sockets or servers: the node's own
 * compiled modules (dist/) run on the bench's events, one stage at a time, so a change to one
 * stage shows up as µs per event here with far less noise than an end-to-end scenario.
 *
 *   node bench/hot-path.js [--events=100000] [--per-request=100] [--ids] [--rounds=5]
 *
 * Stages: decode (UTF-8 check + JSON.parse + body checks), validate (normalise, limits, schema
 * packs, PII policy with the default config), session (mailbox, dedup window, seq tracking;
 * persist resolves at once), format (ClickHouse TabSeparated lines encoded into the insert body).
 * `--ids` gives every event a client event_id (the dedup window then has work to do).
 * Run `npm run build` first.
 */
const path = require("node:path");
const { randomUUID } = require("node:crypto");

const dist = path.join(__dirname, "..", "dist");
const { loadConfig } = require(path.join(dist, "config/env.js"));
const { parseBody } = require(path.join(dist, "nodes/edge/decode-body.js"));
const { eventChecksFromConfig } = require(path.join(dist, "actors/validator/event-checks.js"));
const { validateBatch } = require(path.join(dist, "actors/validator/validate-batch.js"));
const { SessionActor } = require(path.join(dist, "actors/session/session-actor.js"));
const { groupBySession } = require(path.join(dist, "nodes/edge/ingest-handler.js"));
const { encodeInsertBody } = require(path.join(dist, "actors/storage-writer/clickhouse/clickhouse-sink.js"));
const { makeEvent } = require("./lib/events");

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, "").split("=");
    return [k, v ?? "true"];
  }),
);
const totalEvents = Number(args.events ?? 100_000);
const perRequest = Number(args["per-request"] ?? 100);
const withIds = args.ids === "true";
const requests = Math.ceil(totalEvents / perRequest);

const config = loadConfig({ LOG_LEVEL: "silent", CLICKHOUSE_URL: "http://127.0.0.1:8123" });
const checks = eventChecksFromConfig(config);
const limits = { maxBodyBytes: config.maxBodyBytes, maxEventsPerBatch: config.maxEventsPerBatch, maxDepth: config.maxJsonDepth };

const now = Date.now();
const bodies = [];
for (let r = 0; r < requests; r++) {
  const events = [];
  for (let i = 0; i < perRequest; i++) {
    const event = makeEvent(`s-${r}`, i, now);
    if (withIds) event.event_id = randomUUID();
    events.push(event);
  }
  bodies.push(Buffer.from(JSON.stringify(perRequest === 1 ? events[0] : { events })));
}

/** CPU time of the whole process (all threads, GC helpers included), in ms: steadier than wall time on a shared machine. */
function cpuMs() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function time(label, fn) {
  const start = cpuMs();
  const out = fn();
  const ms = cpuMs() - start;
  return { label, ms, out };
}

/** One pass over every body, stage by stage; returns ms per stage. */
async function pass(actor) {
  const ms = {};
  const decoded = time("decode", () => bodies.map((b) => parseBody(b.toString("utf8"), limits).events));
  ms.decode = decoded.ms;
  const validated = time("validate", () =>
    decoded.out.map((events) => validateBatch(events, { tenantId: "bench", receivedAt: now }, checks).accepted),
  );
  ms.validate = validated.ms;
  const sessionStart = cpuMs();
  for (const accepted of validated.out) {
    await actor.ingest({ tenant_id: "bench", sessions: groupBySession(accepted) });
  }
  ms.session = cpuMs() - sessionStart;
  // The storage writer's batches: 5,000 events (about what (a) keeps in flight).
  const all = validated.out.flat();
  ms.format = time("format", () => {
    let bytes = 0;
    for (let i = 0; i < all.length; i += 5000) bytes += encodeInsertBody(all.slice(i, i + 5000), now).bytes;
    return bytes;
  }).ms;
  return ms;
}

async function main() {
  const rounds = Number(args.rounds ?? 5);
  const actor = new SessionActor({ dedupWindow: config.dedupWindow, persist: () => Promise.resolve() });
  const passes = [];
  for (let r = 0; r < rounds; r++) passes.push(await pass(actor));
  const n = requests * perRequest;
  const median = (values) => values.sort((x, y) => x - y)[Math.floor(values.length / 2)];
  let total = 0;
  for (const stage of Object.keys(passes[0])) {
    const ms = median(passes.map((p) => p[stage]));
    total += ms;
    process.stdout.write(`${stage.padEnd(9)} ${((ms * 1000) / n).toFixed(2).padStart(7)} µs/event\n`);
  }
  process.stdout.write(
    `${"total".padEnd(9)} ${((total * 1000) / n).toFixed(2).padStart(7)} µs/event ` +
      `(median of ${rounds} passes over ${n} events, ${perRequest}/request${withIds ? ", client ids" : ""})\n`,
  );
}

main().catch((error) => {
  process.stderr.write(`${error.stack}\n`);
  process.exit(1);
});

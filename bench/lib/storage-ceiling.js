"use strict";
/**
 * The storage ceiling: the same events inserted straight into a table created by the node's own
 * DDL (migrations.js eventsTableSql) over HTTP, `concurrency` inserts of `rowsPerInsert` rows at
 * a time, for `durationSec`. No node in between: this is what ClickHouse on this machine can take.
 *
 * `format`: "JSONEachRow" (the ceiling; rows are the node's column mapping `toEventRow`
 * as JSON) or "TabSeparated" (the node's own insert format, written by its `encodeInsertBody`).
 */
const path = require("node:path");
const { randomUUID } = require("node:crypto");
const { ROOT, chQuery } = require("./servers");
const { makeEvent } = require("./events");

const { encodeInsertBody, toEventRow } = require(path.join(ROOT, "dist/actors/storage-writer/clickhouse/clickhouse-sink.js"));
const { eventsTableSql, EVENT_INSERT_COLUMNS } = require(path.join(ROOT, "dist/actors/storage-writer/clickhouse/migrations.js"));

async function storageCeiling({ url, durationSec, format = "JSONEachRow", rowsPerInsert = 20_000, concurrency = 2, database = "bench_ceiling" }) {
  await chQuery(url, `CREATE DATABASE IF NOT EXISTS ${database}`);
  await chQuery(url, eventsTableSql(database));
  const now = Date.now();
  // A few distinct bodies (distinct event ids), cycled.
  const bodies = [];
  for (let b = 0; b < 4; b++) {
    const events = [];
    for (let i = 0; i < rowsPerInsert; i++) {
      const raw = makeEvent(`ceiling-${b}-${i % 1000}`, i, now);
      const event = {
        tenant_id: "bench",
        event_id: randomUUID(),
        event_name: raw.event_name,
        session_id: raw.session_id,
        seq: raw.seq,
        user_id: raw.user_id,
        channel: raw.channel,
        timestamp: raw.timestamp,
        received_at: now,
        properties: raw.properties,
      };
      events.push(event);
    }
    bodies.push(
      format === "JSONEachRow"
        ? Buffer.from(events.map((event) => JSON.stringify(toEventRow(event, now)) + "\n").join(""))
        : Buffer.concat(encodeInsertBody(events, now).chunks),
    );
  }
  const sql = `INSERT INTO ${database}.events (${EVENT_INSERT_COLUMNS.join(", ")}) FORMAT ${format}`;
  const latencies = [];
  let rows = 0;
  let errors = 0;
  let next = 0;
  const deadline = Date.now() + durationSec * 1000;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < deadline) {
        const body = bodies[next++ % bodies.length];
        const t = process.hrtime.bigint();
        try {
          await chQuery(url, sql, body);
          rows += rowsPerInsert;
          latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
        } catch {
          errors++;
        }
      }
    }),
  );
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  latencies.sort((a, b) => a - b);
  const pct = (p) => +(latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0).toFixed(1);
  await chQuery(url, `DROP TABLE IF EXISTS ${database}.events`);
  return {
    rows,
    inserts: latencies.length,
    errors,
    durationSec: elapsed,
    eventsPerSec: Math.round(rows / elapsed),
    insertLatencyMs: { p50: pct(50), p95: pct(95), p99: pct(99) },
    rowsPerInsert,
    concurrency,
    format,
  };
}

module.exports = { storageCeiling };

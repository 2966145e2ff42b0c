/**
 * The ClickHouse path end to end with real servers: clickhouse-server 18.16 and nats-server.
 *  - cluster mode: ClickHouse stopped for 20 s under load and the forward target failing for a
 *    while; the stream holds the backlog, /ready says what is wrong, and afterwards every
 *    acknowledged event is in `ingest.events` exactly once (as seen with FINAL) and forwarded
 *    in per-session order;
 *  - single-process mode with CLICKHOUSE_URL: acknowledged events are rows once the 202 is sent;
 *    with SPOOL_DIR as well, acknowledged once spooled, and every one inserted exactly once
 *    through a ClickHouse outage and a kill -9 of the node in the middle of it.
 */
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startClickHouse, type ClickHouseTestServer } from "../support/clickhouse-server";
import {
  firstOccurrenceOrderViolations,
  runSessionClients,
  startCluster,
  waitFor,
  waitForCluster,
  waitForForwarded,
  type TestCluster,
} from "../support/cluster";
import { postEvents, startNodeProcess } from "../support/node-process";

async function query(ch: ClickHouseTestServer, sql: string): Promise<string> {
  const res = await fetch(`${ch.url}/?query=${encodeURIComponent(sql)}`);
  const text = await res.text();
  if (!res.ok) throw new Error(`ClickHouse ${res.status}: ${text}`);
  return text.trim();
}

describe("ClickHouse storage in cluster mode", () => {
  let ch: ClickHouseTestServer;
  let cluster: TestCluster;

  beforeAll(async () => {
    ch = await startClickHouse();
    cluster = await startCluster(["c1", "c2"], {
      CLICKHOUSE_URL: ch.url,
      // Small, frequent inserts so the test sees rows quickly.
      BATCH_MAX_EVENTS: "2000",
      BATCH_MAX_WAIT_MS: "100",
      FORWARD_BREAKER_FAILURES: "3",
      FORWARD_BREAKER_COOLDOWN_MS: "500",
    });
    await waitForCluster([...cluster.nodes.values()]);
  });

  afterAll(async () => {
    await cluster?.stop();
    await ch?.destroy();
  });

  it("rides out a 20 s ClickHouse outage and a failing forward target without losing or duplicating", async () => {
    let stop = false;
    const edges = () => [...cluster.nodes.values()];
    const clients = runSessionClients({ sessions: 60, eventsPerBatch: 10, edges, until: () => stop, pauseMs: 100, sessionPrefix: "ch" });

    await new Promise((r) => setTimeout(r, 2000));
    await ch.stop();
    cluster.receiver.failing = true;
    // While ClickHouse is down, clients are still acknowledged (JetStream is the buffer): the
    // edge stays ready and its /ready body reports the failing sink and the growing backlog.
    let readyBody: any = null;
    await waitFor(
      async () => {
        const res = await fetch(`${edges()[0]!.url}/ready`);
        readyBody = { httpStatus: res.status, body: (await res.json()) as any };
        readyBody.storage = readyBody.body.storage;
        return readyBody.storage?.ok === false && /sink failing/.test(readyBody.storage.reason);
      },
      15_000,
      "/ready to report the ClickHouse outage",
    );
    expect(readyBody.httpStatus).toBe(200);
    expect(readyBody.body.status).toBe("ready");
    expect(readyBody.storage.streamPending).toBeGreaterThanOrEqual(0);
    await new Promise((r) => setTimeout(r, 8000));
    cluster.receiver.failing = false;
    await new Promise((r) => setTimeout(r, 10_000)); // 20 s of outage in all
    await ch.start();
    await new Promise((r) => setTimeout(r, 2000));
    stop = true;
    const stats = await clients;
    expect(stats.acked.length).toBeGreaterThan(3000);

    const acked = new Set(stats.acked.map((a) => a.event_id));
    await waitFor(
      async () => Number(await query(ch, "SELECT count() FROM ingest.events FINAL")) >= acked.size,
      60_000,
      "the backlog to drain into ClickHouse",
    );
    expect(Number(await query(ch, "SELECT count() FROM ingest.events FINAL"))).toBe(acked.size);
    const stored = new Set((await query(ch, "SELECT event_id FROM ingest.events FINAL")).split("\n"));
    expect([...acked].filter((id) => !stored.has(id))).toEqual([]);
    // Millisecond timestamps and the tenant survive the trip.
    const row = JSON.parse(
      await query(ch, "SELECT tenant_id, session_id, seq, timestamp FROM ingest.events FINAL WHERE event_id = 'ch-7-3' FORMAT JSONEachRow"),
    ) as Record<string, unknown>;
    expect(row).toMatchObject({ tenant_id: "tenant-c", session_id: "ch-7", seq: "3" });
    expect(Number(row.timestamp)).toBeGreaterThan(1_700_000_000_000);

    const ready = await fetch(`${edges()[0]!.url}/ready`);
    expect(ready.status).toBe(200);

    await waitForForwarded(cluster, acked, 60_000, "every acknowledged event forwarded after the target recovered");
    expect(firstOccurrenceOrderViolations(cluster.receiver.events)).toEqual([]);
    const metrics = await (await fetch(`${edges()[0]!.url}/metrics`)).text();
    expect(metrics).toMatch(/ingest_stream_pending_messages\{[^}]*consumer="storage-writer"[^}]*\} \d+/);
    // The same figure from the count endpoint: an edge asks a storage writer (over NATS), which
    // counts with FINAL in ClickHouse; the other tenant sent none.
    const counted = async (key: string) =>
      (await (await fetch(`${edges()[1]!.url}/metrics?event_name=tick`, { headers: { "X-API-Key": key } })).json()) as { count: number };
    expect((await counted("cluster-key")).count).toBe(acked.size);
    expect((await counted("other-key")).count).toBe(0);
  }, 180_000);
});

describe("ClickHouse storage in single-process mode", () => {
  let ch: ClickHouseTestServer;

  beforeAll(async () => {
    ch = await startClickHouse();
  });

  afterAll(async () => {
    await ch?.destroy();
  });

  it("acknowledges only what ClickHouse committed", async () => {
    const node = await startNodeProcess({ CLICKHOUSE_URL: ch.url, CLICKHOUSE_DATABASE: "single", INGEST_API_KEYS: "k=t" });
    try {
      const events = Array.from({ length: 50 }, (_, i) => ({
        event_id: `sp-${i}`,
        event_name: "ch_single",
        session_id: `sp-${i % 5}`,
        seq: i,
        timestamp: 1_705_314_645_123 + i,
        properties: { i, nested: { ok: true } },
      }));
      const res = await postEvents(node.url, { events }, { "X-API-Key": "k" });
      expect(res.status, node.output().slice(-4000)).toBe(202);
      // No waiting: the 202 came after the insert committed.
      expect(await query(ch, "SELECT count() FROM single.events FINAL")).toBe("50");
      const row = JSON.parse(
        await query(ch, "SELECT timestamp, properties FROM single.events FINAL WHERE event_id = 'sp-3' FORMAT JSONEachRow"),
      ) as { timestamp: string; properties: string };
      expect(Number(row.timestamp)).toBe(1_705_314_645_126);
      expect(JSON.parse(row.properties)).toEqual({ i: 3, nested: { ok: true } });

      await ch.stop();
      const down = await postEvents(node.url, { events: [{ event_name: "x", session_id: "down" }] }, { "X-API-Key": "k" });
      expect(down.status).toBe(503);
      expect(down.headers.get("retry-after")).toBe("1");
      expect(down.body).toMatchObject({ error: { code: "unavailable" } });
      await ch.start();
    } finally {
      await node.stop();
    }
  });

  it("with SPOOL_DIR, acknowledges from the spool through a ClickHouse outage and a kill -9, and inserts each event once", async () => {
    const spoolDir = await fsp.mkdtemp(path.join(os.tmpdir(), "spool-it-"));
    const env = { CLICKHOUSE_URL: ch.url, CLICKHOUSE_DATABASE: "spooled", INGEST_API_KEYS: "k=t", SPOOL_DIR: spoolDir, SPOOL_INSERT_WAIT_MS: "50" };
    const count = async () => Number(await query(ch, "SELECT count() FROM spooled.events FINAL"));
    const batch = (from: number, n: number) => ({
      events: Array.from({ length: n }, (_, i) => ({ event_id: `sp-${from + i}`, event_name: "spooled", session_id: `s-${(from + i) % 7}`, seq: from + i })),
    });
    let node = await startNodeProcess(env);
    try {
      expect((await postEvents(node.url, batch(0, 50), { "X-API-Key": "k" })).status, node.output().slice(-3000)).toBe(202);
      await waitFor(async () => (await count()) === 50, 10_000, "the spooled batch in ClickHouse");

      await ch.stop();
      for (let r = 1; r <= 10; r++) {
        const res = await postEvents(node.url, batch(r * 50, 50), { "X-API-Key": "k" });
        expect(res.status, JSON.stringify(res.body)).toBe(202);
      }
      // The node stays ready (the spool is the durable path) and says what waits.
      let ready: any = null;
      await waitFor(
        async () => {
          const res = await fetch(`${node.url}/ready`);
          ready = { status: res.status, body: await res.json() };
          return ready.body.storage?.spooled?.failingForMs > 0;
        },
        10_000,
        "/ready to report the failing inserts",
      );
      expect(ready.status).toBe(200);
      expect(ready.body.storage.spooled.events).toBe(500);
      // The gauges follow within a second.
      await waitFor(
        async () => /ingest_spool_pending_events(\{[^}]*\})? 500\n/.test(await (await fetch(`${node.url}/metrics`)).text()),
        5_000,
        "the spool gauge",
      );
      // And so does the status page, with a warning once the inserts have failed for a second.
      let status: any = null;
      await waitFor(
        async () => {
          status = await (await fetch(`${node.url}/status`)).json();
          return status.warnings.length > 0;
        },
        10_000,
        "the status page's spool warning",
      );
      expect(status.totals.spooledEvents).toBe(500);
      expect(status.warnings).toEqual([expect.stringMatching(/spool inserts into ClickHouse failing for \d+ s \(500 events waiting in the spool\)$/)]);
      // Acknowledged events exist only in the spool now: the node dies without a word.
      await node.kill9();
      await ch.start();
      node = await startNodeProcess(env);
      await waitFor(async () => (await count()) === 550, 20_000, "the spool's events inserted after the restart");
      const stored = (await query(ch, "SELECT event_id FROM spooled.events FINAL ORDER BY seq")).split("\n");
      expect(stored).toEqual(Array.from({ length: 550 }, (_, i) => `sp-${i}`));
      // A clean stop inserts what waits (the linger would otherwise hold it for 50 ms).
      expect((await postEvents(node.url, batch(550, 5), { "X-API-Key": "k" })).status).toBe(202);
      expect((await node.stop()).code).toBe(0);
      expect(await count()).toBe(555);
      expect(Number(await query(ch, "SELECT count() FROM spooled.events"))).toBeLessThanOrEqual(555 + 50);
    } finally {
      await node.stop();
      await fsp.rm(spoolDir, { recursive: true, force: true });
    }
  }, 90_000);

  it("answers seed 003's and seed 004's count queries from what it stored, per tenant", async () => {
    const node = await startNodeProcess({ CLICKHOUSE_URL: ch.url, CLICKHOUSE_DATABASE: "counts", INGEST_API_KEYS: "k=t,k2=t2" });
    try {
      const at = (iso: string) => Date.parse(iso);
      const views = Array.from({ length: 30 }, (_, i) => ({
        event_id: `v-${i}`,
        event_name: "product_view",
        user_id: `u${i % 4}`,
        channel: i < 20 ? "web" : "mobile",
        timestamp: at("2024-08-11T18:00:00Z") + i * 60_000,
      }));
      expect((await postEvents(node.url, { events: views }, { "X-API-Key": "k" })).status).toBe(202);
      // Resent (same ids): acknowledged as duplicates, counted once.
      expect((await postEvents(node.url, { events: views }, { "X-API-Key": "k" })).body).toMatchObject({ accepted: 0, duplicates: 30 });
      // Seed 003's example event, one per request with its Idempotency-Key; and another tenant's view.
      const login = { event_name: "login", timestamp: "2026-02-13T20:00:00Z" };
      expect((await postEvents(node.url, login, { "X-API-Key": "k", "Idempotency-Key": "example1" }, "/events")).status).toBe(202);
      expect((await postEvents(node.url, { events: [{ ...views[0], event_id: "other" }] }, { "X-API-Key": "k2" })).status).toBe(202);

      const get = async (path: string, key: string | null = "k") => {
        const res = await fetch(`${node.url}${path}`, { headers: key ? { "X-API-Key": key } : {} });
        return { status: res.status, type: res.headers.get("content-type"), body: (await res.json().catch(() => null)) as any };
      };
      // Seed 004's request, verbatim (the window is [2024-08-11 18:13:20, 2024-08-12 18:13:20)).
      const seed004 = await get("/metrics?event_name=product_view&from=1723400000&to=1723486400&group_by=channel");
      expect(seed004.status, node.output().slice(-3000)).toBe(200);
      // Views 0..13 are before 18:13:20.
      expect(seed004.body).toEqual({
        event_name: "product_view",
        from: 1723400000,
        to: 1723486400,
        count: 16,
        total_events: 16,
        unique_users: 4,
        grouped_by: "channel",
        data: [
          { group: "mobile", total_events: 10, unique_users: 4 },
          { group: "web", total_events: 6, unique_users: 4 },
        ],
        truncated: false,
      });
      // Seed 003's: [from, to) in ISO-8601, answered with `count`.
      const seed003 = await get("/metrics?event_name=login&from=2026-02-13T00:00:00Z&to=2026-02-14T00:00:00Z");
      expect(seed003.body).toMatchObject({ event_name: "login", count: 1 });
      expect((await get("/v1/metrics?event_name=login&from=2026-02-13T20:00:01Z&to=2026-02-14T00:00:00Z")).body.count).toBe(0);
      const hourly = await get("/v1/metrics?event_name=product_view&from=2024-08-11T00:00:00Z&to=2024-08-12T00:00:00Z&group_by=hour");
      expect(hourly.body.data).toEqual([{ group: "2024-08-11T18:00:00Z", total_events: 30, unique_users: 4 }]);
      // The other tenant sees its own view only.
      expect((await get("/v1/metrics?event_name=product_view&from=1723334400&to=1723420800", "k2")).body.count).toBe(1);

      expect(await get("/v1/metrics?event_name=product_view", null)).toMatchObject({ status: 401, body: { error: { code: "unauthorized" } } });
      expect(await get("/v1/metrics?event_name=product_view", "wrong")).toMatchObject({ status: 401 });
      expect(await get("/v1/metrics?event_name=x&group_by=user")).toMatchObject({
        status: 400,
        body: { error: { code: "invalid_query", message: "group_by must be one of channel, hour, day" } },
      });
      // Without an event_name, /metrics is still the Prometheus text, with these requests counted.
      const scrape = await fetch(`${node.url}/metrics`);
      expect(scrape.headers.get("content-type")).toMatch(/^text\/plain/);
      const text = await scrape.text();
      expect(text).toMatch(/ingest_http_requests\{[^}]*route="\/v1\/metrics"[^}]*status="200"[^}]*\} [1-9]/);
      expect(text).toMatch(/ingest_http_requests\{[^}]*route="\/v1\/metrics"[^}]*status="401"[^}]*\} 2/);

      await ch.stop();
      const down = await get("/v1/metrics?event_name=login");
      expect(down).toMatchObject({ status: 503, body: { error: { code: "store_unavailable" } } });
      await ch.start();
      expect((await get("/metrics?event_name=login&from=2026-02-13T00:00:00Z&to=2026-02-14T00:00:00Z")).body.count).toBe(1);
    } finally {
      await node.stop();
    }
  });
});

/**
 * The ClickHouse path end to end with real servers: clickhouse-server 18.16 and nats-server.
 *  - cluster mode: ClickHouse stopped for 20 s under load and the forward target failing for a
 *    while; the stream holds the backlog, /ready says what is wrong, and afterwards every
 *    acknowledged event is in `ingest.events` exactly once (as seen with FINAL) and forwarded
 *    in per-session order;
 *  - single-process mode with CLICKHOUSE_URL: acknowledged events are rows once the 202 is sent.
 */
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
});

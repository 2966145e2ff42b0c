/**
 * Cluster-wide rate limits with real processes: nats-server and three node processes in cluster
 * mode, each running an edge and a rate-limiter. One API key is limited to R events/s (burst B)
 * by TENANTS_FILE; clients hammer all three edges at once for about six seconds. Because every
 * edge leases the key's tokens from the one rate-limiter that owns the key (consistent hash),
 * the events accepted cluster-wide over that time are B + R × t within 10%, not 3 × R. Every
 * refusal is a 429 with Retry-After (whole seconds) and the JSON error body.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postEvents, type NodeProcess } from "../support/node-process";
import { startCluster, waitFor, waitForCluster, type TestCluster } from "../support/cluster";

// The limit must sit well below what three nodes, NATS and JetStream can durably take on the
// test machine (a 2-core CI box also running other tests), or the test would measure the
// machine instead of the limiter: with clients that cannot keep the bucket drained, tokens
// spill over the burst and fewer than R get through. 1000/s leaves that margin.
const RATE = 1000;
const BURST = 200;
const EVENTS_PER_REQUEST = 50;
const CLIENTS_PER_EDGE = 6;
const HAMMER_MS = 6000;

describe("cluster-wide rate limit", () => {
  let cluster: TestCluster;
  let configDir: string;

  beforeAll(async () => {
    configDir = fs.mkdtempSync(path.join(os.tmpdir(), "ingest-rl-"));
    const tenantsFile = path.join(configDir, "tenants.json");
    fs.writeFileSync(tenantsFile, JSON.stringify({ tenants: { "tenant-rl": { rate_per_sec: RATE, burst: BURST } } }));
    cluster = await startCluster(["rl-1", "rl-2", "rl-3"], {
      INGEST_API_KEYS: "rl-key=tenant-rl,free-key=tenant-free",
      TENANTS_FILE: tenantsFile,
    });
    await waitForCluster([...cluster.nodes.values()]);
    // Every edge must see all three rate-limiters, so all compute the same owner for the key.
    await new Promise((r) => setTimeout(r, 2000));
  });

  afterAll(async () => {
    await cluster?.stop();
    if (configDir) fs.rmSync(configDir, { recursive: true, force: true });
  });

  it(`a key limited to ${RATE} events/s gets ${RATE} ± 10% through across three edges`, async () => {
    const edges: NodeProcess[] = [...cluster.nodes.values()];
    const accepted = { total: 0, byEdge: new Map<string, number>() };
    const refusals: Array<{ status: number; retryAfter: string | null; body: unknown }> = [];
    const other: Array<{ status: number; body: unknown }> = [];
    const ackedIds: string[] = [];
    let stop = false;
    let sequence = 0;

    const started = Date.now();
    const clients = edges.flatMap((edge, e) =>
      Array.from({ length: CLIENTS_PER_EDGE }, async (_, c) => {
        while (!stop) {
          const n = sequence++;
          const events = Array.from({ length: EVENTS_PER_REQUEST }, (_, i) => ({
            event_id: `rl-${n}-${i}`,
            event_name: "tick",
            session_id: `rl-${e}-${c}`,
            seq: n * EVENTS_PER_REQUEST + i,
          }));
          const res = await postEvents(edge.url, { events }, { "X-API-Key": "rl-key" });
          if (res.status === 202) {
            accepted.total += res.body.accepted;
            accepted.byEdge.set(edge.url, (accepted.byEdge.get(edge.url) ?? 0) + res.body.accepted);
            ackedIds.push(...events.map((ev) => ev.event_id));
          } else if (res.status === 429) {
            if (refusals.length < 2000) refusals.push({ status: res.status, retryAfter: res.headers.get("retry-after"), body: res.body });
            // Hammering: retry soon rather than after Retry-After, to keep the bucket drained.
            await new Promise((r) => setTimeout(r, 10));
          } else {
            other.push({ status: res.status, body: res.body });
          }
        }
      }),
    );
    await new Promise((r) => setTimeout(r, HAMMER_MS));
    stop = true;
    // Tokens are taken when a request arrives: requests still in flight got theirs before now.
    const seconds = (Date.now() - started) / 1000;
    await Promise.all(clients);

    expect(other).toEqual([]);
    // Every edge admitted a share: the limit is shared, not owned by one edge.
    for (const edge of edges) expect(accepted.byEdge.get(edge.url) ?? 0, edge.url).toBeGreaterThan(0);
    const rate = (accepted.total - BURST) / seconds;
    console.info(`rate limit: ${accepted.total} events accepted in ${seconds.toFixed(2)} s → ${rate.toFixed(0)} events/s after the burst; ${refusals.length} refusals sampled`);
    expect(rate).toBeGreaterThanOrEqual(RATE * 0.9);
    expect(rate).toBeLessThanOrEqual(RATE * 1.1);

    expect(refusals.length).toBeGreaterThan(0);
    for (const refusal of refusals) {
      expect(refusal.body).toEqual({ error: { code: "rate_limited", message: "Rate limit exceeded" } });
      expect(refusal.retryAfter).toMatch(/^[1-9][0-9]*$/);
    }

    // Another key of another tenant is not slowed by this one.
    const free = await postEvents(edges[0]!.url, { events: [{ event_name: "free", session_id: "free-1" }] }, { "X-API-Key": "free-key" });
    expect(free.status).toBe(202);

    // What was acknowledged is what gets stored: no more, no less.
    await waitFor(
      async () => (await cluster.storedRows()).filter((r) => r.tenant_id === "tenant-rl").length >= ackedIds.length,
      30_000,
      "acknowledged events to be stored",
    );
    const stored = (await cluster.storedRows()).filter((r) => r.tenant_id === "tenant-rl");
    expect(new Set(stored.map((r) => r.event_id)).size).toBe(ackedIds.length);
  });
});

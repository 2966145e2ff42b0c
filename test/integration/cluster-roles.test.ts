/**
 * Services scale independently: an edge-only node in front of two worker nodes (session,
 * validator, rate-limiter, storage-writer, forwarder). Every Moleculer hop crosses NATS; the
 * events still land once, in order, and worker nodes answer operators on their own port.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ClusterStatus } from "../../actors/status/cluster-status";
import { readSegments } from "../../actors/storage-writer/file-sink";
import { postEvents } from "../support/node-process";
import { firstOccurrenceOrderViolations, startCluster, waitFor, waitForCluster, type TestCluster } from "../support/cluster";

const WORKER = { SERVICES: "session,validator,rate-limiter,storage-writer,forwarder" };

describe("cluster with split roles", () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = await startCluster([]);
    await cluster.addNode("w1", WORKER);
    await cluster.addNode("w2", WORKER);
    await cluster.addNode("e1", { SERVICES: "edge" });
    await waitForCluster([...cluster.nodes.values()]);
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it("routes through edge-only and worker-only nodes", async () => {
    const edge = cluster.nodes.get("e1")!;
    const sessions = 40;
    await Promise.all(
      Array.from({ length: sessions }, async (_, s) => {
        for (let b = 0; b < 5; b++) {
          const events = Array.from({ length: 5 }, (_, i) => ({
            event_id: `roles-${s}-${b * 5 + i}`,
            event_name: "step",
            session_id: `roles-${s}`,
            seq: b * 5 + i,
          }));
          const res = await postEvents(edge.url, { events }, { "X-API-Key": "cluster-key" });
          expect(res.status).toBe(202);
          expect(res.body).toEqual({ accepted: 5, duplicates: 0, rejected: [] });
        }
      }),
    );
    const expected = sessions * 25;
    await waitFor(async () => (await cluster.storedRows()).length >= expected, 20_000, "stored rows");
    const rows = await cluster.storedRows();
    expect(new Set(rows.map((r) => r.event_id)).size).toBe(expected);
    // Both workers' storage writers took a share of the stream (one durable consumer group).
    for (const worker of ["w1", "w2"]) {
      expect((await readSegments(path.join(cluster.root, worker))).length).toBeGreaterThan(0);
    }
    expect(fs.existsSync(path.join(cluster.root, "e1"))).toBe(false);
    await waitFor(() => cluster.receiver.events.length >= expected, 20_000, "forwarded events");
    expect(firstOccurrenceOrderViolations(cluster.receiver.events)).toEqual([]);
  });

  it("every node serves the cluster's status page: all nodes, their services, ring shares and figures", async () => {
    for (const id of ["e1", "w1"]) {
      const doc = (await (await fetch(`${cluster.nodes.get(id)!.url}/status`)).json()) as ClusterStatus;
      expect(doc).toMatchObject({ mode: "cluster", reportedBy: id, warnings: [], totals: { nodes: 3, nodesReporting: 3 } });
      const byId = new Map(doc.nodes.map((n) => [n.id, n]));
      expect([...byId.keys()]).toEqual(["e1", "w1", "w2"]);
      expect(byId.get("e1")!.services).toEqual(["edge"]);
      expect(byId.get("w1")!.services).toEqual(["forwarder", "rate-limiter", "session", "storage-writer", "validator"]);
      expect(byId.get("e1")!.ringShare).toBeNull();
      const shares = ["w1", "w2"].map((w) => byId.get(w)!.ringShare!);
      expect(shares[0]! + shares[1]!).toBeCloseTo(1, 6);
      for (const share of shares) expect(share).toBeGreaterThan(0.3);
      for (const node of byId.values()) expect(node.error).toBeNull();
      // The first test's 1,000 events: accepted at the edge, stored by the two workers together.
      expect(byId.get("e1")!.status!.events.accepted).toBe(1_000);
      expect(byId.get("w1")!.status!.storage.rows + byId.get("w2")!.status!.storage.rows).toBe(1_000);
    }
  });

  it("an edge-only node asks a worker's storage writer for event counts; file sinks answer 501 across NATS", async () => {
    const res = await fetch(`${cluster.nodes.get("e1")!.url}/v1/metrics?event_name=step`, { headers: { "X-API-Key": "cluster-key" } });
    expect(res.status).toBe(501);
    expect(await res.json()).toEqual({
      error: { code: "counts_unsupported", message: "Event counts need ClickHouse storage (CLICKHOUSE_URL)" },
    });
  });

  it("worker nodes answer /health, /ready and /metrics on their port", async () => {
    const worker = cluster.nodes.get("w1")!;
    expect((await fetch(`${worker.url}/health`)).status).toBe(200);
    expect((await fetch(`${worker.url}/ready`)).status).toBe(200);
    const metrics = await (await fetch(`${worker.url}/metrics`)).text();
    expect(metrics).toMatch(/ingest_storage_rows\{[^}]*\} \d+/);
  });
});

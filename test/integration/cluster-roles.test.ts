/**
 * Services scale independently: an edge-only node in front of two worker nodes (session,
 * validator, rate-limiter, storage-writer, forwarder). Every Moleculer hop crosses NATS; the
 * events still land once, in order, and worker nodes answer operators on their own port.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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

  it("worker nodes answer /health, /ready and /metrics on their port", async () => {
    const worker = cluster.nodes.get("w1")!;
    expect((await fetch(`${worker.url}/health`)).status).toBe(200);
    expect((await fetch(`${worker.url}/ready`)).status).toBe(200);
    const metrics = await (await fetch(`${worker.url}/metrics`)).text();
    expect(metrics).toMatch(/ingest_storage_rows\{[^}]*\} \d+/);
  });
});

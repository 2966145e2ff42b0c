/**
 * The node as an operator runs it (a child process, single-process mode, file sink), driven over
 * real HTTP: events from many sessions land in the segment files with their fields, in
 * per-session order, exactly once; rejected requests store nothing; the forwarder sees the same
 * ordered stream; SIGTERM drains without losing an acknowledged event.
 */
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ClusterStatus } from "../../actors/status/cluster-status";
import { readSegments } from "../../actors/storage-writer/file-sink";
import { postEvents, startNodeProcess, type NodeProcess } from "../support/node-process";
import { SEED_000_REQUEST, seed002AttemptFields } from "../support/seed-requests";
import { startForwardReceiver, type ForwardReceiver } from "../support/cluster";

describe("single-process node", () => {
  let dataDir: string;
  let node: NodeProcess;
  let receiver: ForwardReceiver;
  const acked: Array<{ event_id: string; session: string; seq: number }> = [];

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ingest-it-"));
    receiver = await startForwardReceiver();
    node = await startNodeProcess({
      DATA_DIR: dataDir,
      INGEST_API_KEYS: "key-a=tenant-a,key-b=tenant-b",
      FORWARD_URL: receiver.url,
      BATCH_MAX_WAIT_MS: "5",
      NODE_ID: "it-single",
    });
  });

  afterAll(async () => {
    await node?.stop("SIGKILL");
    await receiver?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it("answers health and readiness", async () => {
    expect((await fetch(`${node.url}/health`)).status).toBe(200);
    const ready = await fetch(`${node.url}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: "ready", storage: { ok: true } });
  });

  it("accepts the reference SDK request verbatim", async () => {
    const res = await postEvents(node.url, SEED_000_REQUEST, { "X-API-Key": "key-a" });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ accepted: 1, duplicates: 0, rejected: [] });
  });

  it("takes seed 003's request as it is: POST /events, one event, its key in Idempotency-Key", async () => {
    const headers = { "X-API-Key": "key-a", "Idempotency-Key": `example-${randomUUID()}` };
    const body = '{"event_name":"login","timestamp":"2026-02-13T20:00:00Z"}';
    expect((await postEvents(node.url, body, headers, "/events")).body).toEqual({ accepted: 1, duplicates: 0, rejected: [] });
    expect((await postEvents(node.url, body, headers, "/events")).body).toEqual({ accepted: 0, duplicates: 1, rejected: [] });
    const rows = (await readSegments(dataDir)).filter((r) => r.event_id === headers["Idempotency-Key"]);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ event_name: "login", timestamp: "2026-02-13T20:00:00.000Z" });
  });

  it("takes seed 004's request as it is at POST /events, and a list of them at /events/bulk", async () => {
    const key = { "X-API-Key": "key-a" };
    // Seed 004's example event, verbatim.
    const event = {
      event_name: "product_view",
      channel: "web",
      campaign_id: "summer_sale_2024",
      user_id: "user_12345",
      timestamp: 1708732800000,
      tags: ["electronics", "featured"],
      metadata: { product_id: "SKU-001", page_url: "/products/laptop" },
    };
    expect((await postEvents(node.url, event, key, "/events")).body).toEqual({ accepted: 1, duplicates: 0, rejected: [] });
    expect((await postEvents(node.url, [event, { ...event, channel: "fax" }], key, "/events/bulk")).body).toEqual({
      accepted: 1,
      duplicates: 0,
      rejected: [{ index: 1, errors: ["channel must be one of: web, mobile, api, email, push"] }],
    });
  });

  it("takes the learning platform's typed endpoints (seed 002) as they are", async () => {
    const key = { "X-API-Key": "key-a" };
    const session = randomUUID();
    const user = randomUUID();
    // Seed 002's attempt event, field for field, with real UUIDs for its placeholders.
    const attempt = { user_id: user, session_id: session, ...seed002AttemptFields({ item_id: randomUUID(), client_attempt_id: randomUUID() }) };
    const placement = { placement_id: randomUUID(), user_id: user, items_administered: 15, overall_accuracy: 0.73, was_completed: true, end_reason: "completed_normally", results: { ability_estimates: {}, recommendations: {} } };
    expect((await postEvents(node.url, attempt, key, "/api/v1/events/attempt")).body).toEqual({ accepted: 1, duplicates: 0, rejected: [] });
    expect((await postEvents(node.url, placement, key, "/api/v1/events/placement")).body).toEqual({ accepted: 1, duplicates: 0, rejected: [] });
    // Its client-generated UUID is the event's id: a resend is a duplicate.
    expect((await postEvents(node.url, attempt, key, "/api/v1/events/attempt")).body).toEqual({ accepted: 0, duplicates: 1, rejected: [] });
    // The typed schemas still apply.
    const bad = await postEvents(node.url, { ...attempt, client_attempt_id: randomUUID(), quality: 9 }, key, "/api/v1/events/attempt");
    expect(bad.status).toBe(400);
    expect(bad.body.rejected[0].errors).toContain("properties.quality must be <= 5");
    // The batch endpoint takes events that name themselves.
    const batch = await postEvents(node.url, { events: [{ event_type: "session_end", session_id: session, user_id: user }] }, key, "/api/v1/events/batch");
    expect(batch.body).toMatchObject({ accepted: 1 });
    expect((await postEvents(node.url, attempt, key, "/api/v1/events/unknown")).status).toBe(404);
    expect((await fetch(`${node.url}/api/v1/events/attempt`)).status).toBe(405);

    // Acknowledged means durable: the rows are in the segments already.
    const rows = (await readSegments(dataDir)).filter((r) => r.user_id === user);
    const byName = new Map(rows.map((r) => [r.event_name, r]));
    expect([...byName.keys()].sort()).toEqual(["attempt", "placement", "session_end"]);
    expect(rows).toHaveLength(3);
    expect(byName.get("attempt")).toMatchObject({ event_id: attempt.client_attempt_id, session_id: session, properties: { item_id: attempt.item_id, quality: 4, correct: true } });
    expect(byName.get("placement")).toMatchObject({ event_id: placement.placement_id, session_id: `user:${user}`, properties: { overall_accuracy: 0.73 } });
  });

  it("stores events from many sessions in per-session order, exactly once", async () => {
    const sessions = 25;
    const batchesPerSession = 6;
    const perBatch = 8;
    await Promise.all(
      Array.from({ length: sessions }, async (_, s) => {
        for (let b = 0; b < batchesPerSession; b++) {
          const events = Array.from({ length: perBatch }, (_, i) => {
            const seq = b * perBatch + i;
            return {
              event_id: `s${s}-e${seq}`,
              event_name: "page_view",
              session_id: `sess-${s}`,
              seq,
              user_id: `user-${s}`,
              timestamp: 1_700_000_000_000 + seq,
              channel: "web",
              properties: { path: `/p/${seq}`, n: seq },
            };
          });
          // Authorization: Bearer works as well as X-API-Key.
          const headers: Record<string, string> = s % 2 === 0 ? { "X-API-Key": "key-a" } : { Authorization: "Bearer key-a" };
          const res = await postEvents(node.url, { events }, headers);
          expect(res.status).toBe(202);
          expect(res.body).toEqual({ accepted: perBatch, duplicates: 0, rejected: [] });
          for (const e of events) acked.push({ event_id: e.event_id, session: e.session_id, seq: e.seq });
        }
      }),
    );

    // A retried batch is absorbed as duplicates.
    const retry = await postEvents(
      node.url,
      { events: [{ event_id: "s0-e0", event_name: "page_view", session_id: "sess-0", seq: 0, user_id: "user-0" }] },
      { "X-API-Key": "key-a" },
    );
    expect(retry.status).toBe(202);
    expect(retry.body).toEqual({ accepted: 0, duplicates: 1, rejected: [] });

    const rows = (await readSegments(dataDir)).filter((r) => String(r.event_id).startsWith("s"));
    expect(rows).toHaveLength(sessions * batchesPerSession * perBatch);
    expect(new Set(rows.map((r) => r.event_id)).size).toBe(rows.length);
    const sample = rows.find((r) => r.event_id === "s3-e5")!;
    expect(sample).toEqual({
      tenant_id: "tenant-a",
      event_id: "s3-e5",
      session_id: "sess-3",
      seq: 5,
      event_name: "page_view",
      user_id: "user-3",
      channel: "web",
      timestamp: new Date(1_700_000_000_005).toISOString(),
      received_at: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T.*Z$/),
      properties: { path: "/p/5", n: 5 },
    });
    const bySession = new Map<string, number[]>();
    for (const r of rows) bySession.set(String(r.session_id), [...(bySession.get(String(r.session_id)) ?? []), Number(r.seq)]);
    for (const seqs of bySession.values()) expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
  });

  it("forwards the same per-session ordered stream", async () => {
    const deadline = Date.now() + 10_000;
    const expected = acked.length;
    while (receiver.events.filter((e) => String(e.event_id).startsWith("s")).length < expected && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const forwarded = receiver.events.filter((e) => String(e.event_id).startsWith("s"));
    expect(forwarded).toHaveLength(expected);
    const bySession = new Map<string, number[]>();
    for (const e of forwarded) bySession.set(e.session_id, [...(bySession.get(e.session_id) ?? []), e.seq]);
    for (const seqs of bySession.values()) expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
  });

  it("partially accepts a batch and lists rejected events by index", async () => {
    const res = await postEvents(
      node.url,
      {
        events: [
          { event_id: "partial-ok", event_name: "ok", session_id: "p" },
          { event_id: "partial-bad-1", session_id: "p" },
          { event_id: "partial-bad-2", event_name: "x", session_id: "p", seq: -1 },
        ],
      },
      { "X-API-Key": "key-b" },
    );
    expect(res.status).toBe(202);
    expect(res.body).toEqual({
      accepted: 1,
      duplicates: 0,
      rejected: [
        { index: 1, errors: ["event_name is required"] },
        { index: 2, errors: ["seq must be a non-negative integer"] },
      ],
    });
  });

  it("rejects an event dated more than a day ahead of its arrival, and stores the rest", async () => {
    const now = Date.now();
    const res = await postEvents(
      node.url,
      {
        events: [
          { event_id: "clock-ok", event_name: "ok", session_id: "clock", timestamp: now + 3_600_000 },
          { event_id: "clock-ahead", event_name: "ok", session_id: "clock", timestamp: now + 3 * 86_400_000 },
          { event_id: "clock-micros", event_name: "ok", session_id: "clock", timestamp: now * 1000 },
        ],
      },
      { "X-API-Key": "key-b" },
    );
    expect(res.status).toBe(202);
    expect(res.body.accepted).toBe(1);
    expect(res.body.rejected).toEqual([
      { index: 1, errors: [expect.stringMatching(/^timestamp must be at most 1 day ahead of the server's clock \(is (2|3) days ahead/)] },
      { index: 2, errors: [expect.stringMatching(/^timestamp must be at most 1 day ahead/)] },
    ]);
    // The 202 came after the commit: the file already holds what was accepted, and only that.
    expect((await readSegments(dataDir)).filter((r) => String(r.event_id).startsWith("clock-")).map((r) => r.event_id)).toEqual(["clock-ok"]);
  });

  it("corrects a device clock from the batch's sent_at, so a clock days ahead loses nothing", async () => {
    const ahead = 3 * 86_400_000; // the device's clock
    const deviceNow = Date.now() + ahead;
    const res = await postEvents(
      node.url,
      {
        sent_at: new Date(deviceNow).toISOString(),
        events: [
          { event_id: "skew-1", event_name: "tap", session_id: "skew", timestamp: deviceNow - 60_000 },
          { event_id: "skew-2", event_name: "tap", session_id: "skew" },
        ],
      },
      { "X-API-Key": "key-b" },
    );
    expect(res.body).toEqual({ accepted: 2, duplicates: 0, rejected: [] });
    const rows = (await readSegments(dataDir)).filter((r) => String(r.event_id).startsWith("skew-"));
    const at = (id: string) => Date.parse(String(rows.find((r) => r.event_id === id)!.timestamp));
    // A minute before it was sent, by the server's clock (give or take the request's trip).
    expect(Math.abs(at("skew-1") - (Date.now() - 60_000))).toBeLessThan(5_000);
    expect(Math.abs(at("skew-2") - Date.now())).toBeLessThan(5_000);
    // The same batch without sent_at is three days ahead: rejected, as the limits say.
    const unmarked = await postEvents(node.url, { events: [{ event_id: "skew-3", event_name: "tap", timestamp: deviceNow }] }, { "X-API-Key": "key-b" });
    expect(unmarked.status).toBe(400);
    expect(unmarked.body.rejected[0].errors[0]).toMatch(/^timestamp must be at most 1 day ahead/);
    const bad = await postEvents(node.url, { sent_at: "soon", events: [{ event_name: "tap" }] }, { "X-API-Key": "key-b" });
    expect(bad).toMatchObject({ status: 400, body: { error: { code: "invalid_body", message: "sent_at must be an ISO-8601 string or epoch milliseconds" } } });
  });

  it("rejects bad requests with the error model and stores nothing from them", async () => {
    const marker = { event_name: "must_not_store", session_id: "rejected" };
    const cases: Array<{ body: string | Buffer; headers: Record<string, string>; status: number; code: string }> = [
      { body: JSON.stringify({ events: [marker] }), headers: {}, status: 401, code: "unauthorized" },
      { body: JSON.stringify({ events: [marker] }), headers: { "X-API-Key": "wrong" }, status: 401, code: "unauthorized" },
      { body: '{"events":[{"event_name":"must_not_store"', headers: { "X-API-Key": "key-a" }, status: 400, code: "invalid_json" },
      { body: JSON.stringify({ events: "nope" }), headers: { "X-API-Key": "key-a" }, status: 400, code: "invalid_body" },
      {
        body: JSON.stringify({ events: [{ ...marker, event_name: 42 }] }),
        headers: { "X-API-Key": "key-a" },
        status: 400,
        code: "invalid_events",
      },
      {
        body: JSON.stringify({ events: [marker] }),
        headers: { "X-API-Key": "key-a", "content-type": "application/xml" },
        status: 415,
        code: "unsupported_media_type",
      },
      {
        body: JSON.stringify({ events: [{ ...marker, properties: { pad: "x".repeat(600_000) } }] }),
        headers: { "X-API-Key": "key-a" },
        status: 413,
        code: "payload_too_large",
      },
      {
        body: zlib.gzipSync(Buffer.alloc(5_000_000, 0x20)),
        headers: { "X-API-Key": "key-a", "content-encoding": "gzip" },
        status: 413,
        code: "payload_too_large",
      },
    ];
    for (const c of cases) {
      const res = await fetch(`${node.url}/v1/events`, {
        method: "POST",
        headers: { "content-type": "application/json", ...c.headers },
        body: c.body,
      });
      expect({ status: res.status, body: await res.json() }).toMatchObject({ status: c.status, body: { error: { code: c.code } } });
    }
    const gz = await fetch(`${node.url}/v1/events`, {
      method: "POST",
      headers: { "content-type": "application/json", "content-encoding": "gzip", "X-API-Key": "key-b" },
      body: zlib.gzipSync(JSON.stringify({ events: [{ event_id: "gzip-ok", event_name: "gz", session_id: "gz" }] })),
    });
    expect(gz.status).toBe(202);
    const rows = await readSegments(dataDir);
    expect(rows.filter((r) => r.event_name === "must_not_store")).toHaveLength(0);
    expect(rows.filter((r) => r.event_id === "gzip-ok")).toHaveLength(1);
  });

  it("keeps tenants apart: the same event_id in another tenant is not a duplicate", async () => {
    const event = { event_id: "shared-id", event_name: "x", session_id: "s1" };
    expect((await postEvents(node.url, { events: [event] }, { "X-API-Key": "key-a" })).body.accepted).toBe(1);
    expect((await postEvents(node.url, { events: [event] }, { "X-API-Key": "key-b" })).body.accepted).toBe(1);
    const rows = (await readSegments(dataDir)).filter((r) => r.event_id === "shared-id");
    expect(rows.map((r) => r.tenant_id).sort()).toEqual(["tenant-a", "tenant-b"]);
  });

  it("serves Prometheus metrics with the product counters", async () => {
    const text = await (await fetch(`${node.url}/metrics`)).text();
    expect(text).toMatch(/ingest_events_received\{[^}]*tenant="tenant-a"[^}]*\} \d+/);
    expect(text).toMatch(/ingest_events_accepted\{[^}]*\} \d+/);
    expect(text).toMatch(/ingest_events_rejected\{[^}]*reason="unauthorized"[^}]*\} [1-9]/);
    expect(text).toMatch(/ingest_events_rejected\{[^}]*reason="invalid"[^}]*\} [1-9]/);
    expect(text).toMatch(/ingest_events_duplicates\{[^}]*\} [1-9]/);
    expect(text).toMatch(/ingest_storage_batches_flushed\{[^}]*\} [1-9]/);
    expect(text).toMatch(/ingest_storage_flush_latency_ms_count\{[^}]*\} [1-9]/);
  });

  it("answers a count query (seeds 003, 004) honestly: the file sink cannot count", async () => {
    const ask = (path: string, key?: string) => fetch(`${node.url}${path}`, { headers: key ? { "X-API-Key": key } : {} });
    const res = await ask("/metrics?event_name=login", "key-a");
    expect(res.status).toBe(501);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("counts_unsupported");
    // The request is judged before the store is asked: a bad key 401, a bad query 400.
    expect((await ask("/v1/metrics?event_name=login")).status).toBe(401);
    expect((await ask("/v1/metrics?from=1", "key-a")).status).toBe(400);
    // Counts are a GET.
    expect((await fetch(`${node.url}/v1/metrics?event_name=login`, { method: "POST", headers: { "X-API-Key": "key-a" } })).status).toBe(405);
  });

  it("serves the status page: JSON by default, HTML to a browser", async () => {
    const res = await fetch(`${node.url}/status`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json");
    const doc = (await res.json()) as ClusterStatus;
    expect(doc).toMatchObject({ mode: "single-process", reportedBy: "it-single", warnings: [] });
    expect(doc.nodes).toHaveLength(1);
    const self = doc.nodes[0]!;
    expect(self).toMatchObject({ id: "it-single", available: true, ringShare: null, error: null });
    expect(self.services).toEqual(["edge", "forwarder", "rate-limiter", "session", "storage-writer", "validator"]);
    // The earlier tests' traffic: every figure comes from this node's own counters.
    const status = self.status!;
    expect(status.events.accepted).toBeGreaterThan(0);
    expect(status.storage.rows).toBeGreaterThanOrEqual(status.events.accepted);
    expect(status.storage.commits).toBeGreaterThan(0);
    expect(status.memoryMB.rss).toBeGreaterThan(0);
    expect(doc.totals).toMatchObject({ nodes: 1, nodesReporting: 1 });

    const page = await fetch(`${node.url}/status`, { headers: { Accept: "text/html,application/xhtml+xml" } });
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const html = await page.text();
    expect(html).toContain("<td>it-single");
    expect(html).toContain("No warnings.");
  });

  it("gathers the status at most once a second, however often it is asked", async () => {
    const ask = async () => ((await (await fetch(`${node.url}/status`)).json()) as ClusterStatus).generatedAt;
    await new Promise((r) => setTimeout(r, 1_100)); // past the previous test's document
    const burst = await Promise.all(Array.from({ length: 20 }, ask));
    expect(new Set(burst).size).toBe(1);
    await new Promise((r) => setTimeout(r, 1_100));
    expect(await ask()).not.toBe(burst[0]);
  });

  it("drains on SIGTERM: every acknowledged event is stored, the process exits 0 in time", async () => {
    const ackedIds: string[] = [];
    let sending = true;
    const senders = Array.from({ length: 8 }, async (_, w) => {
      for (let i = 0; sending; i++) {
        const events = Array.from({ length: 20 }, (_, k) => ({
          event_id: `drain-${w}-${i}-${k}`,
          event_name: "drain",
          session_id: `drain-${w}`,
          seq: i * 20 + k,
        }));
        try {
          const res = await postEvents(node.url, { events }, { "X-API-Key": "key-a" });
          if (res.status === 202) ackedIds.push(...events.map((e) => e.event_id));
        } catch {
          return; // connection refused or reset once the node is gone
        }
      }
    });
    await new Promise((r) => setTimeout(r, 300));
    const exit = await node.stop("SIGTERM");
    sending = false;
    await Promise.all(senders);
    expect(exit.code).toBe(0);
    expect(exit.ms).toBeLessThan(10_000);
    expect(ackedIds.length).toBeGreaterThan(0);
    const stored = new Set((await readSegments(dataDir)).map((r) => String(r.event_id)));
    const missing = ackedIds.filter((id) => !stored.has(id));
    expect(missing).toEqual([]);
  });
});

/**
 * The per-user rate limit on a real node: a flooding user's extra events are rejected by index
 * while the rest of the request is stored; a request of nothing but them is 429; a tenant without
 * the limit is untouched; nothing rejected is stored.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readSegments } from "../../actors/storage-writer/file-sink";
import { IngestClient, type Rejection } from "../../nodes/client/ingest-client";
import { configFileDir } from "../support/config-files";
import { postEvents, startNodeProcess, type NodeProcess } from "../support/node-process";

describe("per-user rate limit (single-process node)", () => {
  const { dir, writeFile } = configFileDir("user-limit-");
  let node: NodeProcess;
  const key = { "X-API-Key": "k" };
  const event = (user: string, n: number, extra: Record<string, unknown> = {}) => ({
    event_name: "tap",
    user_id: user,
    event_id: `${user}-${n}`,
    ...extra,
  });

  beforeAll(async () => {
    node = await startNodeProcess({
      DATA_DIR: path.join(dir, "data"),
      INGEST_API_KEYS: "k=school,f=free",
      // The default limit, which "free" turns off; "school" gets bursts of 5 and one event per
      // 20 s after them, so no refill can land between the test's requests.
      RATE_LIMIT_USER_EVENTS_PER_SEC: "1",
      TENANTS_FILE: writeFile("tenants.json", { tenants: { school: { user_rate_per_sec: 0.05, user_burst: 5 }, free: { user_rate_per_sec: 0 } } }),
      BATCH_MAX_WAIT_MS: "5",
    });
  });

  afterAll(async () => {
    await node?.stop();
  });

  it("rejects a flooding user's events past its bucket, by index, and stores the rest of the request", async () => {
    const events = [
      event("flood", 0),
      event("calm", 0),
      ...[1, 2, 3, 4, 5, 6, 7].map((n) => event("flood", n)),
      event("calm", 1),
      { event_name: "tap", session_id: "anon-1" }, // no user: counts for its session
    ];
    const res = await postEvents(node.url, { events }, key);
    expect(res.status, node.output().slice(-2000)).toBe(202);
    expect(res.body.accepted).toBe(5 + 2 + 1);
    // flood-5, -6, -7 are indices 6, 7, 8.
    expect(res.body.rejected.map((r: { index: number }) => r.index)).toEqual([6, 7, 8]);
    expect(res.body.rejected[0].errors[0]).toMatch(/^over the per-user rate limit .*; retry in 60 s$/);
    // Machine-readable: this refusal is for now, not for good.
    expect(res.body.rejected[0].retry_after_ms).toBe(60_000);

    // A request of nothing but over-limit events: 429 with Retry-After, nothing stored.
    const again = await postEvents(node.url, { events: [event("flood", 8), event("flood", 9)] }, key);
    expect(again.status).toBe(429);
    expect(Number(again.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(again.body.error).toEqual({
      code: "rate_limited",
      message: "Every event's sender (user_id, else session_id) is over the per-user rate limit",
    });
  });

  it("merges its rejections with the validator's, each at the event's own index", async () => {
    // flood is still empty; calm has 3 of 5 left. Index 2 is invalid (no event_name).
    const events = [event("flood", 10), event("calm", 2), { user_id: "calm", event_id: "calm-bad" }, event("calm", 3)];
    const res = await postEvents(node.url, { events }, key);
    expect(res.status).toBe(202);
    expect(res.body.accepted).toBe(2);
    expect(res.body.rejected).toEqual([
      { index: 0, errors: [expect.stringMatching(/^over the per-user rate limit/)], retry_after_ms: expect.any(Number) },
      { index: 2, errors: ["event_name is required"] },
    ]);
  });

  it("gives the Idempotency-Key only to the event of a single-event request, not to the survivor of a larger one", async () => {
    const res = await postEvents(
      node.url,
      { events: [event("flood", 11), { event_name: "tap", user_id: "idem" }] },
      { ...key, "Idempotency-Key": "the-key" },
    );
    expect(res.status).toBe(202);
    expect(res.body.accepted).toBe(1);
    const single = await postEvents(node.url, { event_name: "tap", user_id: "idem2" }, { ...key, "Idempotency-Key": "the-key-2" });
    expect(single.body.accepted).toBe(1);
    const rows = await readSegments(path.join(dir, "data"));
    const ids = (user: string) => rows.filter((r) => r.user_id === user).map((r) => r.event_id);
    expect(ids("idem")).toHaveLength(1);
    expect(ids("idem")[0]).not.toBe("the-key");
    expect(ids("idem2")).toEqual(["the-key-2"]);
  });

  it("applies to WebSocket batches too; the SDK reports the refused events with their retryAfterMs", async () => {
    const rejections: Rejection[] = [];
    const client = new IngestClient({ url: `ws://127.0.0.1:${node.port}/v1/stream`, apiKey: "k", maxBatchDelayMs: 50, onRejected: (r) => rejections.push(r) });
    for (let n = 0; n < 7; n++) client.track(event("ws-flood", n));
    await client.close();
    expect(rejections.map((r) => (r.kind === "event" ? [r.event.event_id, r.retryAfterMs] : r))).toEqual([
      ["ws-flood-5", 40_000],
      ["ws-flood-6", 40_000],
    ]);
    expect(client.stats().eventsAcked).toBe(7);
  });

  it("leaves a tenant without the limit alone, and stored nothing it rejected", async () => {
    const res = await postEvents(node.url, { events: Array.from({ length: 30 }, (_, n) => event("busy", n)) }, { "X-API-Key": "f" });
    expect(res.body).toEqual({ accepted: 30, duplicates: 0, rejected: [] });

    const rows = await readSegments(path.join(dir, "data"));
    const stored = new Set(rows.map((r) => `${r.tenant_id}/${r.event_id}`));
    for (const id of ["flood-0", "flood-4", "calm-0", "calm-1", "calm-2", "calm-3"]) expect(stored.has(`school/${id}`), id).toBe(true);
    for (const id of ["ws-flood-0", "ws-flood-4"]) expect(stored.has(`school/${id}`), id).toBe(true);
    for (const id of ["flood-5", "flood-6", "flood-7", "flood-8", "flood-9", "flood-10", "flood-11", "calm-bad", "ws-flood-5", "ws-flood-6"]) {
      expect(stored.has(`school/${id}`), id).toBe(false);
    }
    expect(rows.filter((r) => r.tenant_id === "free")).toHaveLength(30);

    const metrics = await (await fetch(`${node.url}/metrics`)).text();
    expect(metrics).toMatch(/ingest_events_rejected\{[^}]*reason="user_rate_limited"[^}]*\} 9/);
    expect(metrics).toMatch(/ingest_ratelimit_throttled\{[^}]*scope="user"[^}]*\} 5/);
  });
});

/**
 * IngestClient against the real stream route (uWS, in process) with a scripted handler: batching
 * by count and by delay, throttles honoured before resending, retryable errors resent,
 * final errors and per-event rejections reported through onRejected, flush/close semantics.
 */
import uWS from "uWebSockets.js";
import { afterEach, describe, expect, it } from "vitest";
import { IngestError } from "../../actors/common/errors";
import { ApiKeyStore } from "../../nodes/edge/api-keys";
import type { IngestAnswer } from "../../nodes/edge/ingest-handler";
import { registerStreamRoute } from "../../nodes/edge/ws-stream";
import { IngestClient, type IngestClientOptions, type Rejection } from "../../nodes/client/ingest-client";

type Script = (events: Array<Record<string, unknown>>, call: number) => Promise<IngestAnswer>;

let cleanup: Array<() => void> = [];
afterEach(() => {
  for (const fn of cleanup) fn();
  cleanup = [];
});

async function server(script: Script) {
  const calls: Array<{ at: number; ids: string[] }> = [];
  const app = uWS.App();
  registerStreamRoute(app, {
    handler: {
      ingest: (_principal, events) => {
        const list = events as Array<Record<string, unknown>>;
        calls.push({ at: Date.now(), ids: list.map((e) => String(e.event_id)) });
        return script(list, calls.length);
      },
    },
    keys: new ApiKeyStore([{ key: "k", tenant: "t" }]),
    limits: { maxPayloadBytes: 64 * 1024, maxEventsPerBatch: 100, maxDepth: 32, idleTimeoutSec: 0, maxInflight: 8, maxBackpressureBytes: 1 << 20 },
  });
  const listen = await new Promise<uWS.us_listen_socket>((resolve, reject) =>
    app.listen("127.0.0.1", 0, (s) => (s ? resolve(s) : reject(new Error("listen failed")))),
  );
  cleanup.push(() => {
    uWS.us_listen_socket_close(listen);
    app.close();
  });
  return { calls, url: `ws://127.0.0.1:${uWS.us_socket_local_port(listen)}/v1/stream` };
}

const accept = (events: unknown[]): Promise<IngestAnswer> => Promise.resolve({ accepted: events.length, duplicates: 0, rejected: [] });

function newClient(url: string, options: Partial<IngestClientOptions> = {}, rejections: Rejection[] = []): IngestClient {
  const client = new IngestClient({ url, apiKey: "k", maxBatchEvents: 10, maxBatchDelayMs: 5, onRejected: (r) => rejections.push(r), ...options });
  cleanup.push(() => client.destroy());
  return client;
}

describe("IngestClient", () => {
  it("batches by count and by delay, with increasing seqs, and adds event ids", async () => {
    const { calls, url } = await server(accept);
    const client = newClient(url, { maxBatchEvents: 4, maxBatchDelayMs: 30 });
    for (let i = 0; i < 9; i++) client.track({ event_id: `e${i}`, event_name: "x", session_id: "s" });
    const noId = { event_name: "no id", session_id: "s" };
    client.track(noId);
    const nullId = { event_name: "null id", session_id: "s", event_id: null, messageId: undefined };
    client.track(nullId);
    await client.flush();
    expect(calls.map((c) => c.ids.length)).toEqual([4, 4, 3]);
    expect(calls[2]!.ids[1]).toMatch(/^[0-9a-f-]{36}$/);
    expect(calls[2]!.ids[2]).toMatch(/^[0-9a-f-]{36}$/);
    expect(calls[2]!.ids[2]).not.toBe(calls[2]!.ids[1]);
    // The caller's objects are not changed.
    expect(noId).toEqual({ event_name: "no id", session_id: "s" });
    expect(nullId.event_id).toBeNull();
    expect(client.stats()).toMatchObject({ sent: 3, acked: 3, resent: 0, eventsAcked: 11 });

    // A lone event goes out after maxBatchDelayMs without a flush.
    client.track({ event_id: "late", event_name: "x" });
    for (let i = 0; i < 100 && calls.length < 4; i++) await new Promise((r) => setTimeout(r, 5));
    expect(calls[3]!.ids).toEqual(["late"]);
    await client.close();
  });

  it("reports each durable batch through onAck with its counts and latency", async () => {
    const { url } = await server(async (events) => {
      await new Promise((r) => setTimeout(r, 20));
      return { accepted: events.length - 1, duplicates: 1, rejected: [] };
    });
    const acks: Array<{ seq: number; events: number; accepted: number; duplicates: number; latencyMs: number }> = [];
    const client = newClient(url, { maxBatchEvents: 3, onAck: (a) => acks.push(a) });
    for (let i = 0; i < 6; i++) client.track({ event_id: `a${i}`, event_name: "x", session_id: "s" });
    await client.flush();
    expect(acks.map(({ seq, events, accepted, duplicates }) => ({ seq, events, accepted, duplicates }))).toEqual([
      { seq: 0, events: 3, accepted: 2, duplicates: 1 },
      { seq: 1, events: 3, accepted: 2, duplicates: 1 },
    ]);
    for (const ack of acks) expect(ack.latencyMs).toBeGreaterThanOrEqual(15);
    await client.close();
  });

  it("pauses for a throttle and resends the refused batch with the same event ids", async () => {
    let limited = false;
    const { calls, url } = await server((events) => {
      if (!limited) {
        limited = true;
        return Promise.reject(new IngestError("rate_limited", undefined, 0.2));
      }
      return accept(events);
    });
    const client = newClient(url);
    for (let i = 0; i < 5; i++) client.track({ event_id: `t${i}`, event_name: "x", session_id: "s" });
    await client.flush();
    expect(calls).toHaveLength(2);
    expect(calls[1]!.ids).toEqual(calls[0]!.ids);
    expect(calls[1]!.at - calls[0]!.at).toBeGreaterThanOrEqual(190);
    expect(client.stats()).toMatchObject({ throttled: 1, resent: 1, acked: 1, eventsAcked: 5 });
  });

  it("resends after unavailable, and reports final errors and rejected events through onRejected", async () => {
    const { calls, url } = await server((events, call) => {
      if (events.some((e) => e.event_name === "flaky") && call === 1) return Promise.reject(new IngestError("unavailable", undefined, 1));
      if (events.some((e) => e.event_name === "boom")) return Promise.reject(new Error("handler bug"));
      return Promise.resolve({
        accepted: events.filter((e) => e.event_name !== "bad").length,
        duplicates: 0,
        rejected: events.flatMap((e, index) => (e.event_name === "bad" ? [{ index, errors: ["event_name is bad"] }] : [])),
      });
    });
    const rejections: Rejection[] = [];
    const client = newClient(url, { maxBatchEvents: 2, reconnect: { baseMs: 10 } }, rejections);
    client.track({ event_id: "f1", event_name: "flaky", session_id: "a" });
    client.track({ event_id: "f2", event_name: "ok", session_id: "a" });
    client.track({ event_id: "b1", event_name: "boom", session_id: "b" });
    client.track({ event_id: "b2", event_name: "ok", session_id: "b" });
    client.track({ event_id: "g1", event_name: "ok", session_id: "c" });
    client.track({ event_id: "g2", event_name: "bad", session_id: "c" });
    await client.flush();
    expect(calls.filter((c) => c.ids[0] === "f1")).toHaveLength(2);
    expect(rejections).toEqual(
      expect.arrayContaining([
        { kind: "batch", seq: 1, events: [expect.objectContaining({ event_id: "b1" }), expect.objectContaining({ event_id: "b2" })], code: "internal", message: "Internal error" },
        { kind: "event", seq: 2, index: 1, event: expect.objectContaining({ event_id: "g2" }), errors: ["event_name is bad"] },
      ]),
    );
    expect(rejections).toHaveLength(2);
    expect(client.stats()).toMatchObject({ acked: 2, resent: 1 });
  });

  it("flush waits for what was tracked before it, close flushes, destroy rejects pending flushes", async () => {
    let release: (() => void) | null = null;
    const { url } = await server((events) => new Promise((resolve) => (release = () => resolve({ accepted: events.length, duplicates: 0, rejected: [] }))));
    const client = newClient(url);
    client.track({ event_id: "w1", event_name: "x" });
    let flushed = false;
    const flush = client.flush().then(() => (flushed = true));
    for (let i = 0; i < 100 && !release; i++) await new Promise((r) => setTimeout(r, 5));
    expect(flushed).toBe(false);
    release!();
    await flush;
    expect(flushed).toBe(true);
    await client.close();
    expect(client.connection?.readyState ?? "closed").toBe("closed");
    expect(() => client.track({ event_name: "after close" })).toThrow(/closed/);

    const other = newClient(url);
    other.track({ event_id: "w2", event_name: "x" });
    const pending = other.flush();
    other.destroy();
    await expect(pending).rejects.toThrow(/destroyed/);
  });
});

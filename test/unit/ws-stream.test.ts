/**
 * The stream route on a real uWS app with a scripted IngestHandler: acks only after the batch
 * finished, out of order across sessions but never within one, throttle and error frames for
 * retryable failures (and later batches of the same sessions held back until the resend), the
 * in-flight cap, msgpack replies, and the shutdown sequence (refuse, drain, close behind acks).
 */
import { unpack } from "msgpackr";
import uWS from "uWebSockets.js";
import { afterEach, describe, expect, it } from "vitest";
import { IngestError } from "../../actors/common/errors";
import { ApiKeyStore, type Principal } from "../../nodes/edge/api-keys";
import type { IngestAnswer } from "../../nodes/edge/ingest-handler";
import { registerStreamRoute, type StreamHandle } from "../../nodes/edge/ws-stream";
import { WsHandshakeError, WsSocket } from "../../nodes/client/ws-socket";

interface Call {
  events: unknown[];
  principal: Principal;
  resolve(answer: IngestAnswer): void;
  reject(error: unknown): void;
}

const until = async (check: () => boolean, what: string) => {
  for (let i = 0; i < 300; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
};

const settle = () => new Promise((r) => setTimeout(r, 30));

const batch = (seq: number, session: string, n = 1) =>
  JSON.stringify({ seq, events: Array.from({ length: n }, (_, i) => ({ event_id: `${seq}-${i}`, event_name: "e", session_id: session })) });

const ok = (accepted: number): IngestAnswer => ({ accepted, duplicates: 0, rejected: [] });

let cleanup: Array<() => void> = [];
afterEach(() => {
  for (const fn of cleanup) fn();
  cleanup = [];
});

async function setup(
  limits: Partial<{ maxInflight: number }> = {},
  unauthenticated?: (address: string, forwardedFor: string | undefined) => number | null,
) {
  const calls: Call[] = [];
  const frames = { connections: [] as number[], outcomes: [] as string[] };
  const app = uWS.App();
  const handle: StreamHandle = registerStreamRoute(app, {
    handler: {
      ingest: (principal, events) => new Promise<IngestAnswer>((resolve, reject) => calls.push({ principal, events, resolve, reject })),
    },
    keys: new ApiKeyStore([{ key: "k", tenant: "t" }]),
    unauthenticated,
    limits: {
      maxPayloadBytes: 64 * 1024,
      maxEventsPerBatch: 100,
      maxDepth: 32,
      idleTimeoutSec: 0,
      maxInflight: limits.maxInflight ?? 8,
      maxBackpressureBytes: 1024 * 1024,
    },
    record: {
      connections: (n) => frames.connections.push(n),
      frame: (outcome) => frames.outcomes.push(outcome),
      unauthorized: () => frames.outcomes.push("unauthorized"),
    },
  });
  const listen = await new Promise<uWS.us_listen_socket>((resolve, reject) =>
    app.listen("127.0.0.1", 0, (s) => (s ? resolve(s) : reject(new Error("listen failed")))),
  );
  const url = `ws://127.0.0.1:${uWS.us_socket_local_port(listen)}/v1/stream`;
  const open = async () => {
    const ws = await WsSocket.connect(url, { headers: { "X-API-Key": "k" } });
    const received: any[] = [];
    ws.on("message", (data) => received.push(typeof data === "string" ? JSON.parse(data) : { msgpack: unpack(data) }));
    const closed = new Promise<number>((resolve) => ws.on("close", (code) => resolve(code)));
    cleanup.push(() => ws.terminate());
    return { ws, received, closed };
  };
  cleanup.push(() => {
    uWS.us_listen_socket_close(listen);
    app.close();
  });
  return { calls, frames, handle, url, open };
}

describe("registerStreamRoute", () => {
  it("acks each batch once its ingest finished: out of order across sessions, in order within one", async () => {
    const { calls, open, frames } = await setup();
    const { ws, received } = await open();
    ws.send(batch(1, "A"));
    ws.send(batch(2, "B"));
    ws.send(batch(3, "A"));
    await until(() => calls.length === 2, "two ingest calls");
    await settle();
    // Batch 3 shares session A with batch 1: it has not started.
    expect(calls).toHaveLength(2);
    expect(received).toEqual([]);
    calls[1]!.resolve(ok(1));
    await until(() => received.length === 1, "ack 2");
    expect(received[0]).toEqual({ ack: 2, accepted: 1, duplicates: 0, rejected: [] });
    calls[0]!.resolve({ accepted: 0, duplicates: 1, rejected: [{ index: 0, errors: ["x"] }] });
    await until(() => calls.length === 3, "batch 3 to start");
    expect(received[1]).toEqual({ ack: 1, accepted: 0, duplicates: 1, rejected: [{ index: 0, errors: ["x"] }] });
    expect((calls[2]!.events[0] as { event_id: string }).event_id).toBe("3-0");
    expect(calls[2]!.principal.tenant).toBe("t");
    calls[2]!.resolve(ok(1));
    await until(() => received.length === 3, "ack 3");
    expect(frames.outcomes).toEqual(["acked", "acked", "acked"]);
    expect(frames.connections).toEqual([1]);
  });

  it("answers in msgpack to binary frames", async () => {
    const { calls, open } = await setup();
    const { ws, received } = await open();
    const { pack } = await import("msgpackr");
    ws.send(pack({ seq: 4, events: [{ event_name: "e" }] }));
    await until(() => calls.length === 1, "ingest");
    calls[0]!.resolve(ok(1));
    await until(() => received.length === 1, "ack");
    expect(received[0]).toEqual({ msgpack: { ack: 4, accepted: 1, duplicates: 0, rejected: [] } });
  });

  it("turns rate_limited into throttle + error, and holds later batches of the session until the resend", async () => {
    const { calls, open } = await setup();
    const { ws, received } = await open();
    ws.send(batch(1, "A"));
    ws.send(batch(2, "A"));
    await until(() => calls.length === 1, "first call");
    calls[0]!.reject(new IngestError("rate_limited", undefined, 0.25));
    await until(() => received.length === 4, "refusals of 1 and 2");
    expect(received).toEqual([
      { throttle: { retry_after_ms: 250 } },
      { error: { code: "rate_limited", message: "Rate limit exceeded", seq: 1 } },
      { throttle: { retry_after_ms: 250 } },
      { error: { code: "rate_limited", message: expect.stringMatching(/earlier batch/), seq: 2 } },
    ]);
    // Batch 2 never reached the handler; a new batch 3 of session A is refused too, B goes.
    ws.send(batch(3, "A"));
    ws.send(batch(4, "B"));
    await until(() => received.length === 6 && calls.length === 2, "3 refused, 4 started");
    expect(received.slice(4)).toEqual([
      { throttle: { retry_after_ms: 250 } },
      { error: { code: "rate_limited", message: expect.stringMatching(/Resend batch 1/), seq: 3 } },
    ]);
    // The resend of 1, then 2 and 3, go through in order.
    ws.send(batch(1, "A"));
    ws.send(batch(2, "A"));
    ws.send(batch(3, "A"));
    await until(() => calls.length === 3, "resend of 1");
    calls[2]!.resolve(ok(1));
    await until(() => calls.length === 4, "2");
    calls[3]!.resolve(ok(1));
    await until(() => calls.length === 5, "3");
    calls[4]!.resolve(ok(1));
    calls[1]!.resolve(ok(1));
    await until(() => received.filter((f) => "ack" in f).length === 4, "acks");
    expect(received.filter((f) => "ack" in f).map((f) => f.ack).sort()).toEqual([1, 2, 3, 4]);
  });

  it("reports unavailable and internal failures for that batch and keeps the socket open", async () => {
    const { calls, open } = await setup();
    const { ws, received } = await open();
    ws.send(batch(1, "A"));
    ws.send(batch(2, "B"));
    await until(() => calls.length === 2, "calls");
    calls[0]!.reject(new IngestError("unavailable", undefined, 1));
    calls[1]!.reject(new Error("boom"));
    await until(() => received.length === 2, "errors");
    expect(received).toContainEqual({ error: { code: "unavailable", message: expect.any(String), seq: 1 } });
    expect(received).toContainEqual({ error: { code: "internal", message: "Internal error", seq: 2 } });
    ws.send(batch(1, "A"));
    await until(() => calls.length === 3, "resend");
    calls[2]!.resolve(ok(1));
    await until(() => received.length === 3, "ack");
    expect(received[2]).toEqual({ ack: 1, accepted: 1, duplicates: 0, rejected: [] });
    expect(ws.readyState).toBe("open");
  });

  it("refuses batches over the in-flight cap with a throttle and too_many_inflight, without calling ingest", async () => {
    const { calls, open } = await setup({ maxInflight: 2 });
    const { ws, received } = await open();
    ws.send(batch(1, "A"));
    ws.send(batch(2, "B"));
    ws.send(batch(3, "C"));
    await until(() => received.length === 2, "refusal");
    expect(calls).toHaveLength(2);
    expect(received).toEqual([{ throttle: { retry_after_ms: expect.any(Number) } }, { error: { code: "too_many_inflight", message: expect.any(String), seq: 3 } }]);
    calls[0]!.resolve(ok(1));
    await until(() => received.length === 3, "ack 1");
    ws.send(batch(3, "C"));
    await until(() => calls.length === 3, "3 admitted after an ack");
  });

  it("refuses a bad key with 401 before the upgrade, and 429 once the address is over its budget", async () => {
    const addresses: Array<[string, string | undefined]> = [];
    const { url, frames } = await setup({}, (address, forwardedFor) => {
      addresses.push([address, forwardedFor]);
      return addresses.length > 1 ? 1500 : null;
    });
    const first = (await WsSocket.connect(url, { headers: { "X-API-Key": "nope" } }).catch((e: unknown) => e)) as WsHandshakeError;
    expect([first.status, JSON.parse(first.body).error.code]).toEqual([401, "unauthorized"]);
    const second = (await WsSocket.connect(`${url}?api_key=nope`, { headers: { "X-Forwarded-For": "203.0.113.9" } }).catch((e: unknown) => e)) as WsHandshakeError;
    expect([second.status, JSON.parse(second.body).error.code, second.headers["retry-after"]]).toEqual([429, "rate_limited", "2"]);
    // The peer and the header as sent; whether the header is believed is the edge's call (TRUSTED_PROXIES).
    expect(addresses).toEqual([
      ["127.0.0.1", undefined],
      ["127.0.0.1", "203.0.113.9"],
    ]);
    expect(frames.outcomes).toEqual(["unauthorized", "unauthorized"]);
    expect(frames.connections).toEqual([]);
  });

  it("closes on a frame-level violation after the error frame", async () => {
    const { open, frames } = await setup();
    const { ws, received, closed } = await open();
    ws.send('{"seq":1}');
    expect(await closed).toBe(1007);
    expect(received).toEqual([{ error: { code: "invalid_frame", message: '"events" must be an array', seq: 1 } }]);
    expect(frames.outcomes).toEqual(["invalid"]);
    await until(() => frames.connections.at(-1) === 0, "gauge back to 0");
  });

  it("on shutdown refuses new sockets and batches, waits for in-flight ones, then closes behind their acks", async () => {
    const { calls, open, handle, url } = await setup();
    const { ws, received, closed } = await open();
    ws.send(batch(1, "A"));
    await until(() => calls.length === 1, "call");
    handle.stopAccepting();
    ws.send(batch(2, "B"));
    await until(() => received.length === 1, "shutting_down");
    expect(received[0]).toEqual({ error: { code: "shutting_down", message: expect.any(String), seq: 2 } });
    const refused = await WsSocket.connect(url, { headers: { "X-API-Key": "k" } }).catch((e: unknown) => e);
    expect((refused as WsHandshakeError).status).toBe(503);

    let drained = false;
    const draining = handle.drained().then(() => (drained = true));
    await settle();
    expect(drained).toBe(false);
    expect(handle.inFlight()).toBe(1);
    calls[0]!.resolve(ok(1));
    await draining;
    handle.closeAll(1001, "node shutting down");
    expect(await closed).toBe(1001);
    expect(received[1]).toEqual({ ack: 1, accepted: 1, duplicates: 0, rejected: [] });
    expect(handle.inFlight()).toBe(0);
  });
});

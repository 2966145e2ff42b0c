/**
 * GET /v1/stream over a real node process: many concurrent SDK streams (JSON and msgpack)
 * deliver every event exactly once; a dropped connection and a throttled client lose nothing and
 * keep per-session order; bad frames and bad keys get their stable codes; a client that stops
 * reading its acks cannot grow the node's memory; SIGTERM lets in-flight batches finish.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pack, unpack } from "msgpackr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readSegments } from "../../actors/storage-writer/file-sink";
import { IngestClient, type IngestClientOptions, type Rejection } from "../../nodes/client/ingest-client";
import { WsHandshakeError, WsSocket, type WsConnectOptions } from "../../nodes/client/ws-socket";
import { startNodeProcess, type NodeProcess } from "../support/node-process";

const KEY = "ws-key";

function wsUrl(node: NodeProcess, query = ""): string {
  return `ws://127.0.0.1:${node.port}/v1/stream${query}`;
}

/** A raw stream that records every server frame and how it closed. */
async function rawStream(url: string, options: WsConnectOptions = { headers: { "X-API-Key": KEY } }) {
  const ws = await WsSocket.connect(url, options);
  const frames: any[] = [];
  ws.on("message", (data) => frames.push(typeof data === "string" ? JSON.parse(data) : unpack(data)));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on("close", (code, reason) => resolve({ code, reason })));
  ws.on("error", () => undefined);
  return { ws, frames, closed };
}

async function waitFor(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function rssKiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]);
}

function bySession(rows: Array<Record<string, unknown>>): Map<string, number[]> {
  const sessions = new Map<string, number[]>();
  for (const r of rows) {
    const list = sessions.get(String(r.session_id)) ?? [];
    list.push(Number(r.seq));
    sessions.set(String(r.session_id), list);
  }
  return sessions;
}

function expectExactlyOnceInOrder(rows: Array<Record<string, unknown>>, expectedIds: string[]): void {
  const ids = rows.map((r) => String(r.event_id));
  expect(ids.length).toBe(expectedIds.length);
  expect(new Set(ids)).toEqual(new Set(expectedIds));
  for (const [session, seqs] of bySession(rows)) {
    expect({ session, seqs }).toEqual({ session, seqs: [...seqs].sort((a, b) => a - b) });
  }
}

function client(node: NodeProcess, options: Partial<IngestClientOptions> = {}, rejections: Rejection[] = []): IngestClient {
  return new IngestClient({
    url: wsUrl(node),
    apiKey: KEY,
    maxBatchEvents: 20,
    maxBatchDelayMs: 5,
    maxInFlight: 8,
    reconnect: { baseMs: 20, maxMs: 500 },
    onRejected: (r) => rejections.push(r),
    ...options,
  });
}

describe("WebSocket streams", () => {
  let dataDir: string;
  let node: NodeProcess;

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ingest-ws-"));
    node = await startNodeProcess({
      DATA_DIR: dataDir,
      INGEST_API_KEYS: `${KEY}=tenant-ws`,
      BATCH_MAX_WAIT_MS: "5",
      NODE_ID: "it-ws",
      WS_MAX_BACKPRESSURE_BYTES: String(256 * 1024),
    });
  });

  afterAll(async () => {
    await node?.stop("SIGKILL");
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it("delivers every event of 200 concurrent streams exactly once, JSON and msgpack", async () => {
    const streams = 200;
    const perSession = 15;
    const rejections: Rejection[] = [];
    const expected: string[] = [];
    const clients = Array.from({ length: streams }, (_, c) => client(node, { encoding: c % 2 === 0 ? "json" : "msgpack", maxBatchEvents: 10 }, rejections));
    await Promise.all(
      clients.map(async (cl, c) => {
        for (let seq = 0; seq < perSession; seq++) {
          for (const s of [0, 1]) {
            const id = `many-${c}-${s}-${seq}`;
            expected.push(id);
            cl.track({ event_id: id, event_name: "view", session_id: `many-${c}-${s}`, seq, properties: { c, encoding: c % 2 ? "msgpack" : "json" } });
          }
          if (seq % 5 === 4) await new Promise((r) => setTimeout(r, 1));
        }
        await cl.close();
      }),
    );
    expect(rejections).toEqual([]);
    const totals = clients.map((c) => c.stats());
    expect(totals.reduce((n, s) => n + s.eventsAcked, 0)).toBe(expected.length);
    const rows = (await readSegments(dataDir)).filter((r) => String(r.event_id).startsWith("many-"));
    expectExactlyOnceInOrder(rows, expected);
    expect(rows.find((r) => r.event_id === "many-1-0-3")).toMatchObject({ tenant_id: "tenant-ws", session_id: "many-1-0", seq: 3, properties: { c: 1, encoding: "msgpack" } });
  });

  it("loses nothing when the connection drops mid-stream, and keeps per-session order", async () => {
    const cl = client(node, { maxBatchEvents: 15, maxInFlight: 8 });
    const expected: string[] = [];
    const rounds = 5;
    // The client connects on its first event.
    cl.track({ event_id: "drop-first", event_name: "step", session_id: "drop-first" });
    expected.push("drop-first");
    let i = 0;
    for (let round = 0; round < rounds; round++) {
      await waitFor(() => cl.connection?.readyState === "open", "the client to (re)connect");
      // Sent synchronously on the open socket, so un-acked when the TCP connection is dropped under them.
      for (const end = i + 600; i < end; i++) {
        const session = i % 7;
        const id = `drop-${session}-${i}`;
        expected.push(id);
        cl.track({ event_id: id, event_name: "step", session_id: `drop-${session}`, seq: i });
      }
      cl.connection!.socket.destroy();
      await new Promise((r) => setTimeout(r, 20));
    }
    await cl.close();
    const stats = cl.stats();
    expect(stats.reconnects).toBeGreaterThanOrEqual(rounds);
    expect(stats.resent).toBeGreaterThanOrEqual(rounds);
    const rows = (await readSegments(dataDir)).filter((r) => String(r.event_id).startsWith("drop-"));
    expectExactlyOnceInOrder(rows, expected);
  });

  it("answers bad frames with stable error codes and close codes", async () => {
    const big = JSON.stringify({ seq: 1, events: [{ event_name: "x", pad: "p".repeat(530_000) }] });
    const cases: Array<{ name: string; frame: string | Buffer; code: string; close: number; seq?: number }> = [
      { name: "invalid JSON", frame: '{"seq":1,"events":[', code: "invalid_frame", close: 1007 },
      { name: "not msgpack", frame: Buffer.from([0xc1, 0x00]), code: "invalid_frame", close: 1007 },
      { name: "an array", frame: "[1,2,3]", code: "invalid_frame", close: 1007 },
      { name: "no seq", frame: '{"events":[]}', code: "invalid_frame", close: 1007 },
      { name: "events not an array", frame: '{"seq":4,"events":"x"}', code: "invalid_frame", close: 1007, seq: 4 },
      { name: "msgpack without seq", frame: pack({ events: [] }), code: "invalid_frame", close: 1007 },
      { name: "a poisoned key", frame: '{"seq":5,"events":[{"__proto__":{"x":1}}]}', code: "unsafe_json", close: 1008, seq: 5 },
      { name: "too many events", frame: JSON.stringify({ seq: 6, events: Array.from({ length: 1001 }, () => ({})) }), code: "too_many_events", close: 1009, seq: 6 },
      { name: "an oversize frame", frame: big, code: "frame_too_large", close: 1009 },
    ];
    for (const c of cases) {
      const stream = await rawStream(wsUrl(node));
      stream.ws.send(c.frame);
      const closed = await stream.closed;
      const error: Record<string, unknown> = { code: c.code, message: expect.any(String) };
      if (c.seq !== undefined) error.seq = c.seq;
      expect({ name: c.name, frames: stream.frames, close: closed.code }).toEqual({ name: c.name, frames: [{ error }], close: c.close });
    }
    // A good frame on a fresh stream after all that still works.
    const ok = await rawStream(wsUrl(node));
    ok.ws.send(JSON.stringify({ seq: 0, events: [{ event_id: "after-bad", event_name: "x", session_id: "bad" }] }));
    for (let i = 0; i < 200 && ok.frames.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(ok.frames).toEqual([{ ack: 0, accepted: 1, duplicates: 0, rejected: [] }]);
    ok.ws.close();
  });

  it("authenticates by header, bearer, query or subprotocol, and refuses a bad key with 401 and no socket", async () => {
    const ways = (key: string): Array<{ url: string; options: WsConnectOptions; protocol: string }> => [
      { url: wsUrl(node), options: { headers: { "X-API-Key": key } }, protocol: "" },
      { url: wsUrl(node), options: { headers: { Authorization: `Bearer ${key}` } }, protocol: "" },
      { url: wsUrl(node, `?api_key=${encodeURIComponent(key)}`), options: {}, protocol: "" },
      { url: wsUrl(node), options: { protocols: ["ingest.v1", `key.${key}`] }, protocol: "ingest.v1" },
      { url: wsUrl(node), options: { protocols: [`key.${key}`] }, protocol: `key.${key}` },
    ];
    for (const way of ways(KEY)) {
      const stream = await rawStream(way.url, way.options);
      expect(stream.ws.protocol).toBe(way.protocol);
      stream.ws.send(JSON.stringify({ seq: 9, events: [] }));
      for (let i = 0; i < 200 && stream.frames.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
      expect(stream.frames).toEqual([{ ack: 9, accepted: 0, duplicates: 0, rejected: [] }]);
      stream.ws.close();
      await stream.closed;
    }
    for (const way of [...ways("wrong-key"), { url: wsUrl(node), options: {}, protocol: "" }]) {
      const error = await WsSocket.connect(way.url, way.options).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(WsHandshakeError);
      expect((error as WsHandshakeError).status).toBe(401);
      expect(JSON.parse((error as WsHandshakeError).body)).toEqual({ error: { code: "unauthorized", message: "Missing or unknown API key" } });
    }
    // The client gives up on a refused key instead of reconnecting forever.
    const errors: Error[] = [];
    const refused = new IngestClient({ url: wsUrl(node), apiKey: "wrong-key", onError: (e) => errors.push(e) });
    refused.track({ event_name: "x" });
    await expect(refused.flush()).rejects.toBeInstanceOf(WsHandshakeError);
    expect(errors).toHaveLength(1);
  });

  it("keeps the node's memory bounded when a client stops reading acks, and keeps serving others", async () => {
    const before = rssKiB(node.child.pid!);
    const stalled = await rawStream(wsUrl(node));
    // Never read again: acks, throttles and errors pile up towards this socket.
    stalled.ws.socket.pause();
    const event = { event_name: "flood", session_id: "flood", properties: { pad: "f".repeat(200) } };
    let peak = before;
    let sent = 0;
    const deadline = Date.now() + 8000;
    for (let seq = 0; seq < 60_000 && Date.now() < deadline && stalled.ws.readyState === "open"; seq++) {
      const ok = stalled.ws.send(JSON.stringify({ seq, events: [event, event, event, event, event] }));
      sent++;
      if (!ok) {
        await Promise.race([new Promise<void>((r) => stalled.ws.once("drain", () => r())), new Promise((r) => setTimeout(r, 200))]);
      }
      if (seq % 500 === 0) peak = Math.max(peak, rssKiB(node.child.pid!));
    }
    peak = Math.max(peak, rssKiB(node.child.pid!));
    expect(sent).toBeGreaterThan(2000);

    // Another client is served meanwhile.
    const other = client(node);
    for (let i = 0; i < 100; i++) other.track({ event_id: `other-${i}`, event_name: "x", session_id: "other", seq: i });
    await other.close();
    expect(other.stats().eventsAcked).toBe(100);
    stalled.ws.terminate();

    // Frames over the in-flight cap were refused, not queued; what was sent is ~MBs of frames.
    const metrics = await (await fetch(`${node.url}/metrics`)).text();
    expect(metrics).toMatch(/ingest_ws_frames\{[^}]*outcome="throttled"[^}]*\} [1-9]/);
    expect((peak - before) / 1024).toBeLessThan(96);
  });

  it("lets in-flight batches finish on SIGTERM: every acked batch is stored, streams close with 1001", async () => {
    const stream = await rawStream(wsUrl(node));
    const acked = new Set<number>();
    stream.ws.on("message", (data) => {
      const frame = JSON.parse(String(data)) as { ack?: number };
      if (frame.ack !== undefined) acked.add(frame.ack);
    });
    let seq = 0;
    const sendSome = () => {
      for (let i = 0; i < 10 && stream.ws.readyState === "open"; i++, seq++) {
        stream.ws.send(JSON.stringify({ seq, events: [{ event_id: `term-${seq}`, event_name: "t", session_id: `term-${seq % 3}`, seq }] }));
      }
    };
    sendSome();
    await new Promise((r) => setTimeout(r, 100));
    sendSome();
    const exit = node.stop("SIGTERM");
    sendSome();
    const closed = await stream.closed;
    const { code } = await exit;
    expect(code).toBe(0);
    expect(closed.code).toBe(1001);
    expect(acked.size).toBeGreaterThanOrEqual(10);
    const stored = new Set((await readSegments(dataDir)).map((r) => String(r.event_id)));
    expect([...acked].filter((s) => !stored.has(`term-${s}`))).toEqual([]);
  });
});

describe("a throttled WebSocket client", () => {
  let dataDir: string;
  let node: NodeProcess;

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ingest-ws-throttle-"));
    node = await startNodeProcess({
      DATA_DIR: dataDir,
      INGEST_API_KEYS: `${KEY}=tenant-slow`,
      BATCH_MAX_WAIT_MS: "5",
      NODE_ID: "it-ws-throttle",
      RATE_LIMIT_EVENTS_PER_SEC: "400",
      RATE_LIMIT_BURST: "200",
    });
  });

  afterAll(async () => {
    await node?.stop("SIGKILL");
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it("slows down to the rate limit and loses nothing", async () => {
    const rejections: Rejection[] = [];
    const cl = client(node, { encoding: "msgpack", maxBatchEvents: 25, maxInFlight: 4 }, rejections);
    const expected: string[] = [];
    const started = Date.now();
    for (let i = 0; i < 1200; i++) {
      const id = `slow-${i}`;
      expected.push(id);
      cl.track({ event_id: id, event_name: "slow", session_id: `slow-${i % 4}`, seq: i });
    }
    await cl.close();
    const elapsed = Date.now() - started;
    const stats = cl.stats();
    expect(rejections).toEqual([]);
    expect(stats.throttled).toBeGreaterThan(0);
    expect(stats.resent).toBeGreaterThan(0);
    // 1200 events at 400/s after a 200 burst cannot take much less than 2.5 s.
    expect(elapsed).toBeGreaterThan(2000);
    const rows = (await readSegments(dataDir)).filter((r) => String(r.event_id).startsWith("slow-"));
    expectExactlyOnceInOrder(rows, expected);
  });
});

import { afterEach, describe, expect, it } from "vitest";
import { ServiceBroker, Transporters, type Context } from "moleculer";
import { MsgPackrSerializer } from "../../actors/common/msgpack-serializer";
import type { IngestEvent, SessionIngestRequest } from "../../actors/common/event";

/** Events with the awkward values a real batch has: nulls, >32-bit ints, floats, unicode, nesting. */
function makeEvents(n: number, tenant = "tenant-1"): IngestEvent[] {
  return Array.from({ length: n }, (_, i) => ({
    tenant_id: tenant,
    event_id: `evt-${i}-${"x".repeat(i % 7)}`,
    event_name: i % 3 === 0 ? "page_view" : "purchase ✓",
    session_id: i % 4 === 0 ? `user:${i % 13}` : `sess-${i % 17}`,
    seq: i % 5 === 0 ? null : i,
    user_id: i % 2 === 0 ? null : `u-${i}`,
    channel: i % 6 === 0 ? null : "web",
    timestamp: 1_700_000_000_000 + i * 1_001,
    received_at: 1_700_000_000_500 + i * 1_001,
    properties:
      i % 3 === 0
        ? {}
        : {
            price: i * 1.25 - 3.5,
            count: -i,
            big: Number.MAX_SAFE_INTEGER - i,
            tags: ["a", "b", `t${i % 3}`],
            nested: { ok: i % 2 === 0, note: "ünïcødé 🚀", deep: { list: [1, null, { z: "" }] } },
            [`dyn_${i % 11}`]: `value-${i}`,
          },
  }));
}

function roundTrip<T extends Record<string, unknown>>(s: MsgPackrSerializer, obj: T, type: string): unknown {
  const buf = s.serialize(obj, type);
  expect(Buffer.isBuffer(buf)).toBe(true);
  return s.deserialize(buf, type);
}

const tracing = { ver: "4", sender: "node-a" };

/** Every packet type of Moleculer 0.14's protocol v4, shaped like transit builds them. */
function samplePackets(): Array<[string, Record<string, unknown>]> {
  const request: SessionIngestRequest = {
    tenant_id: "tenant-1",
    sessions: [
      { session_id: "sess-1", events: makeEvents(300) },
      { session_id: "user:7", events: makeEvents(200, "tenant-1") },
    ],
  };
  const meta = { $tenant: "tenant-1", auth: { scopes: ["ingest"] }, empty: {} };
  return [
    [
      "REQ",
      {
        ...tracing,
        id: "req-1",
        action: "session.ingest",
        params: request,
        meta,
        timeout: 5000,
        level: 1,
        tracing: null,
        parentID: null,
        requestID: "req-1",
        caller: "edge",
        stream: false,
        seq: undefined,
      },
    ],
    [
      "RES",
      { ...tracing, id: "req-1", meta, success: true, data: { accepted: 500, duplicates: 0 }, stream: false },
    ],
    [
      "RES",
      {
        ...tracing,
        id: "req-2",
        meta: {},
        success: false,
        data: null,
        error: {
          name: "MoleculerRetryableError",
          message: "session actor busy",
          nodeID: "node-b",
          code: 503,
          type: "BUSY",
          retryable: true,
          stack: "Error: session actor busy\n    at x (y.js:1:1)",
          data: { session_id: "sess-1" },
        },
      },
    ],
    [
      "EVENT",
      {
        ...tracing,
        id: "evt-1",
        event: "ingest.accepted",
        data: { count: 3, events: makeEvents(3) },
        groups: ["storage"],
        broadcast: false,
        meta: {},
        level: 1,
        tracing: true,
        parentID: null,
        requestID: "evt-1",
        caller: null,
        needAck: null,
      },
    ],
    ["DISCOVER", { ...tracing }],
    [
      "INFO",
      {
        ...tracing,
        services: [{ name: "session", fullName: "session", settings: {}, metadata: {}, actions: { "session.ingest": { name: "session.ingest", rawName: "ingest" } }, events: {} }],
        ipList: ["10.0.0.1"],
        hostname: "host-a",
        client: { type: "nodejs", version: "0.14.36", langVersion: "v20.0.0" },
        config: {},
        instanceID: "8b1c",
        metadata: { zone: "a" },
        seq: 3,
      },
    ],
    ["HEARTBEAT", { ...tracing, cpu: 12.5 }],
    ["PING", { ...tracing, time: 1_700_000_000_123, id: "ping-1" }],
    ["PONG", { ...tracing, time: 1_700_000_000_123, id: "ping-1", arrived: 1_700_000_000_125 }],
    ["DISCONNECT", { ...tracing }],
    ["GOSSIP_HELLO", { ...tracing, host: "10.0.0.1", port: 4445 }],
    ["GOSSIP_REQ", { ...tracing, online: { "node-b": [3, 7, 12] }, offline: { "node-c": 2 } }],
    ["GOSSIP_RES", { ...tracing, online: { "node-a": [[], 4, 9] } }],
  ];
}

describe("MsgPackrSerializer", () => {
  it.each(samplePackets())("round-trips a %s packet exactly", (type, payload) => {
    // toStrictEqual also checks undefined-valued keys and that objects stay plain objects.
    expect(roundTrip(new MsgPackrSerializer(), payload, type)).toStrictEqual(payload);
  });

  it("keeps Buffer params a Buffer (stream chunks, binary payloads) and undefined/null apart", () => {
    const s = new MsgPackrSerializer();
    const bin = Buffer.from([0, 1, 2, 250, 255]);
    const back = roundTrip(s, { ...tracing, id: "r", action: "a", params: bin, meta: {} }, "REQ") as {
      params: unknown;
    };
    expect(Buffer.isBuffer(back.params)).toBe(true);
    expect(Buffer.compare(back.params as Buffer, bin)).toBe(0);

    const undef = roundTrip(s, { ...tracing, id: "r", action: "a", params: undefined, meta: {} }, "REQ");
    expect(undef).toHaveProperty("params", undefined);
    const nul = roundTrip(s, { ...tracing, id: "r", action: "a", params: null, meta: {} }, "REQ");
    expect(nul).toHaveProperty("params", null);
  });

  it("writes self-contained messages: a fresh instance decodes the 50th message of another", () => {
    const sender = new MsgPackrSerializer();
    const messages: Array<[Buffer, Record<string, unknown>]> = [];
    for (let i = 0; i < 50; i++) {
      const payload = { ...tracing, id: `req-${i}`, action: "session.ingest", params: { events: makeEvents(20 + i) }, meta: {} };
      messages.push([sender.serialize(payload, "REQ"), payload]);
    }
    // Decode out of order, each with a serializer that saw nothing before (another process).
    for (const i of [49, 0, 25]) {
      const [buf, payload] = messages[i] as [Buffer, Record<string, unknown>];
      expect(new MsgPackrSerializer().deserialize(buf, "REQ")).toStrictEqual(payload);
    }
  });

  it("is smaller than Moleculer's JSON serializer for an event batch", () => {
    const payload = { ...tracing, id: "r", action: "a", params: { events: makeEvents(1000) }, meta: {} };
    const packed = new MsgPackrSerializer().serialize(payload, "REQ");
    expect(packed.length).toBeLessThan(Buffer.byteLength(JSON.stringify(payload)) / 2);
  });

  it("rejects bytes that do not decode to a packet object", () => {
    const s = new MsgPackrSerializer();
    expect(() => s.deserialize(s.serialize(42 as unknown as Record<string, unknown>), "REQ")).toThrow(/not an object/);
  });

  describe("inside real brokers (in-memory Fake transporter)", () => {
    let brokers: ServiceBroker[] = [];
    afterEach(async () => {
      await Promise.all(brokers.map((b) => b.stop()));
      brokers = [];
    });

    /** Checks every packet the broker really sends: decode(encode(p)) must equal p. */
    class CheckingSerializer extends MsgPackrSerializer {
      readonly seen = new Set<string>();
      readonly mismatches: string[] = [];
      override serialize(obj: Record<string, unknown>, type?: string): Buffer {
        const buf = super.serialize(obj, type);
        this.seen.add(type ?? "?");
        try {
          expect(new MsgPackrSerializer().deserialize(buf, type)).toStrictEqual(obj);
        } catch (err) {
          this.mismatches.push(`${type}: ${(err as Error).message.slice(0, 300)}`);
        }
        return buf;
      }
    }

    it("carries a request/response with 1,000 events, an error and an event", async () => {
      const namespace = `ser-${process.pid}-${Date.now()}`;
      const serA = new CheckingSerializer();
      const serB = new CheckingSerializer();
      const common = { namespace, logger: false } as const;
      const a = new ServiceBroker({ ...common, nodeID: "a", transporter: new Transporters.Fake(), serializer: serA });
      const b = new ServiceBroker({ ...common, nodeID: "b", transporter: new Transporters.Fake(), serializer: serB });
      brokers.push(a, b);
      let eventPayload: unknown;
      b.createService({
        name: "echo",
        actions: {
          echo: (ctx: Context<SessionIngestRequest>) => ctx.params,
          fail: () => {
            throw new Error("boom");
          },
        },
        events: {
          "ingest.note": (ctx: Context<unknown>) => {
            eventPayload = ctx.params;
          },
        },
      });
      await Promise.all([a.start(), b.start()]);
      await a.waitForServices("echo", 5000);

      const params: SessionIngestRequest = {
        tenant_id: "tenant-1",
        sessions: [{ session_id: "sess-1", events: makeEvents(1000) }],
      };
      const back = await a.call<SessionIngestRequest, SessionIngestRequest>("echo.echo", params, { nodeID: "b" });
      expect(back).toStrictEqual(params);

      await expect(a.call("echo.fail", {}, { nodeID: "b" })).rejects.toThrow("boom");

      a.emit("ingest.note", { n: 1, events: makeEvents(2) });
      await expect.poll(() => eventPayload, { timeout: 2000 }).toStrictEqual({ n: 1, events: makeEvents(2) });
      await a.ping("b", 2000);

      expect([...serA.seen].sort()).toEqual(expect.arrayContaining(["EVENT", "INFO", "PING", "REQ"]));
      expect([...serB.seen].sort()).toEqual(expect.arrayContaining(["INFO", "PONG", "RES"]));
      expect([...serA.mismatches, ...serB.mismatches]).toEqual([]);
    });
  });
});

import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { Errors, ServiceBroker, type Context } from "moleculer";
import { MsgPackrSerializer } from "../../actors/common/msgpack-serializer";
import type { IngestEvent, SessionIngestRequest, SessionIngestResult } from "../../actors/common/event";
import { startNatsServer, type NatsServerHandle } from "../support/nats-server";

function makeEvents(n: number): IngestEvent[] {
  return Array.from({ length: n }, (_, i) => ({
    tenant_id: "tenant-1",
    event_id: `evt-${i}`,
    event_name: i % 2 === 0 ? "page_view" : "purchase",
    session_id: `sess-${i % 10}`,
    seq: i % 3 === 0 ? null : i,
    user_id: i % 4 === 0 ? null : `user-${i % 50}`,
    channel: i % 5 === 0 ? null : "web",
    timestamp: 1_700_000_000_000 + i * 37,
    received_at: 1_700_000_100_000 + i * 37,
    properties:
      i % 3 === 0 ? {} : { price: i * 0.01, tags: ["x", `y${i % 4}`], nested: { deep: { ok: true, n: -i } }, text: "ü ✓ 🚀" },
  }));
}

describe("Moleculer over a real nats-server with MsgPackrSerializer", () => {
  let server: NatsServerHandle;
  let caller: ServiceBroker;
  let callee: ServiceBroker;
  const callerSerializer = new MsgPackrSerializer();
  const calleeSerializer = new MsgPackrSerializer();

  beforeAll(async () => {
    server = await startNatsServer({ jetstream: false });
    const namespace = `it-${process.pid}-${Date.now()}`; // isolates runs sharing a server
    const common = { namespace, logger: false, transporter: server.url } as const;
    caller = new ServiceBroker({ ...common, nodeID: "edge-1", serializer: callerSerializer });
    callee = new ServiceBroker({ ...common, nodeID: "session-1", serializer: calleeSerializer });
    callee.createService({
      name: "session",
      actions: {
        echo: (ctx: Context<SessionIngestRequest>) => ctx.params,
        count: (ctx: Context<SessionIngestRequest>): SessionIngestResult => ({
          accepted: ctx.params.sessions.reduce((n, s) => n + s.events.length, 0),
          duplicates: 0,
        }),
        bytes: (ctx: Context<Buffer>) => ({ isBuffer: Buffer.isBuffer(ctx.params), hex: ctx.params.toString("hex") }),
        reject: () => {
          throw new Errors.MoleculerClientError("tenant over quota", 429, "QUOTA", { tenant_id: "tenant-1" });
        },
      },
    });
    await Promise.all([caller.start(), callee.start()]);
    await caller.waitForServices("session", 10_000);
  });

  afterAll(async () => {
    await Promise.all([caller?.stop(), callee?.stop()]);
    await server?.stop();
  });

  it("calls an action on the other node with 1,000 events and gets them back intact", async () => {
    const serialize = vi.spyOn(callerSerializer, "serialize");
    const deserialize = vi.spyOn(callerSerializer, "deserialize");
    const params: SessionIngestRequest = {
      tenant_id: "tenant-1",
      sessions: [
        { session_id: "sess-1", events: makeEvents(600) },
        { session_id: "sess-2", events: makeEvents(400) },
      ],
    };
    const back = await caller.call<SessionIngestRequest, SessionIngestRequest>("session.echo", params, {
      nodeID: "session-1",
    });
    expect(back).toStrictEqual(params);
    expect(back).not.toBe(params); // it really crossed the wire, not a local shortcut
    expect(serialize.mock.calls.some(([, type]) => type === "REQ")).toBe(true);
    expect(deserialize.mock.calls.some(([, type]) => type === "RES")).toBe(true);
    serialize.mockRestore();
    deserialize.mockRestore();

    const counted = await caller.call<SessionIngestResult, SessionIngestRequest>("session.count", params);
    expect(counted).toEqual({ accepted: 1000, duplicates: 0 });
  });

  it("carries a Buffer param as a Buffer", async () => {
    const r = await caller.call<{ isBuffer: boolean; hex: string }, Buffer>("session.bytes", Buffer.from([1, 2, 255]));
    expect(r).toEqual({ isBuffer: true, hex: "0102ff" });
  });

  it("carries a remote error with its code, type and data", async () => {
    const err: unknown = await caller.call("session.reject", {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Errors.MoleculerClientError);
    expect(err).toMatchObject({
      message: "tenant over quota",
      code: 429,
      type: "QUOTA",
      data: { tenant_id: "tenant-1" },
      nodeID: "session-1",
    });
  });
});

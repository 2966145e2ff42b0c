import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Events, connect, nanos, type JetStreamClient, type JetStreamManager, type NatsConnection } from "nats";
import {
  BatchConsumer,
  ensureEventStream,
  publishBatch,
  type BatchConsumerOptions,
  type BatchMessage,
  type EventStreamConfig,
} from "../../actors/common/jetstream";
import { decodeBatch } from "../../actors/common/batch-codec";
import type { IngestEvent } from "../../actors/common/event";
import { makeStreamEvents } from "../support/stream-events";
import { startNatsServer, type NatsServerHandle } from "../support/nats-server";


const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let server: NatsServerHandle;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
let streamNo = 0;
const consumers: BatchConsumer[] = [];

/** A fresh stream per test, so counts and durables never leak between tests. */
async function freshStream(overrides: Partial<EventStreamConfig> = {}): Promise<{ name: string; subject: string }> {
  streamNo++;
  const name = `EVENTS_${streamNo}`;
  await ensureEventStream(jsm, {
    name,
    subjects: [`events.${streamNo}.>`],
    maxAgeMs: 60 * 60_000,
    maxBytes: 64 * 1024 * 1024,
    duplicateWindowMs: 2 * 60_000,
    replicas: 1,
    storage: "file",
    ...overrides,
  });
  return { name, subject: `events.${streamNo}.batch` };
}

function consumer(opts: BatchConsumerOptions): BatchConsumer {
  const c = new BatchConsumer(nc, { expiresMs: 1_000, ...opts });
  consumers.push(c);
  return c;
}

beforeAll(async () => {
  server = await startNatsServer({ jetstream: true });
  nc = await connect({ servers: server.url });
  js = nc.jetstream();
  jsm = await nc.jetstreamManager();
});

afterEach(async () => {
  await Promise.all(consumers.splice(0).map((c) => c.stop()));
});

afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

describe("ensureEventStream", () => {
  it("creates, then leaves alone, then updates the stream", async () => {
    const cfg: EventStreamConfig = {
      name: "ENSURE",
      subjects: ["ensure.>"],
      maxAgeMs: 60_000,
      maxBytes: 1024 * 1024,
      duplicateWindowMs: 30_000,
      replicas: 1,
      storage: "memory",
    };
    const first = await ensureEventStream(jsm, cfg);
    expect(first.action).toBe("created");
    expect(first.info.config.duplicate_window).toBe(nanos(30_000));
    expect((await ensureEventStream(jsm, cfg)).action).toBe("unchanged");
    const bigger = await ensureEventStream(jsm, { ...cfg, maxBytes: 2 * 1024 * 1024, subjects: ["ensure.>", "more.>"] });
    expect(bigger.action).toBe("updated");
    expect(bigger.info.config.max_bytes).toBe(2 * 1024 * 1024);
    expect(bigger.info.config.subjects.sort()).toEqual(["ensure.>", "more.>"]);
    await expect(ensureEventStream(jsm, { ...cfg, storage: "file" })).rejects.toThrow(/storage/);
  });
});

describe("publishBatch", () => {
  it("stores each batch as one message that reads back intact", async () => {
    const { name, subject } = await freshStream();
    const batches = [makeStreamEvents(1, "a"), makeStreamEvents(250, "b"), makeStreamEvents(1000, "c")];
    const seqs: number[] = [];
    for (const [i, b] of batches.entries()) {
      const r = await publishBatch(js, subject, b, `batch-${i}`);
      expect(r.duplicate).toBe(false);
      seqs.push(r.seq);
    }
    expect(seqs).toEqual([1, 2, 3]);
    for (const [i, seq] of seqs.entries()) {
      const stored = await jsm.streams.getMessage(name, { seq });
      expect(stored.header.get("Nats-Msg-Id")).toBe(`batch-${i}`);
      expect(decodeBatch(stored.data)).toStrictEqual(batches[i]);
    }
  });

  it("treats the same msgId as a duplicate and stores it once", async () => {
    const { name, subject } = await freshStream();
    const events = makeStreamEvents(10, "dup");
    const first = await publishBatch(js, subject, events, "req-42:sess-1");
    const again = await publishBatch(js, subject, events, "req-42:sess-1");
    expect(first).toEqual({ seq: 1, duplicate: false });
    expect(again).toEqual({ seq: 1, duplicate: true });
    const other = await publishBatch(js, subject, events, "req-43:sess-1");
    expect(other).toEqual({ seq: 2, duplicate: false });
    expect((await jsm.streams.info(name)).state.messages).toBe(2);
    await expect(publishBatch(js, subject, events, "")).rejects.toThrow(/msgId/);
  });
});

describe("BatchConsumer", () => {
  it("hands fetched messages to the handler in batches, decoded, and acks stick", async () => {
    const { name, subject } = await freshStream();
    const sent = new Map<string, IngestEvent[]>();
    for (let i = 0; i < 40; i++) {
      const events = makeStreamEvents(1 + (i % 5), `m${i}`);
      sent.set(`m${i}`, events);
      await publishBatch(js, subject, events, `m${i}`);
    }
    const got = new Map<number, IngestEvent[]>();
    const batchSizes: number[] = [];
    const c = consumer({
      stream: name,
      durable: "reader",
      maxMessages: 16,
      handler: async (msgs) => {
        batchSizes.push(msgs.length);
        for (const m of msgs) {
          got.set(m.seq, m.events);
          m.ack();
        }
      },
    });
    await c.start();
    await expect.poll(() => got.size, { timeout: 5_000 }).toBe(40);
    for (const [seq, events] of got) expect(events).toStrictEqual(sent.get(`m${seq - 1}`));
    // The backlog was there before start: batching must have grouped it, within the limit.
    expect(Math.max(...batchSizes)).toBeGreaterThan(1);
    expect(Math.max(...batchSizes)).toBeLessThanOrEqual(16);
    await c.stop();
    await expect
      .poll(async () => (await jsm.consumers.info(name, "reader")).num_ack_pending, { timeout: 2_000 })
      .toBe(0);
    expect((await jsm.consumers.info(name, "reader")).num_pending).toBe(0);
  });

  it("shares one durable between two consumers: each message to exactly one, both get some", async () => {
    const { name, subject } = await freshStream();
    const seen: Array<Map<number, number>> = [new Map(), new Map()];
    const make = (k: 0 | 1): BatchConsumer =>
      consumer({
        stream: name,
        durable: "group",
        maxMessages: 8,
        handler: async (msgs) => {
          for (const m of msgs) seen[k]!.set(m.seq, (seen[k]!.get(m.seq) ?? 0) + 1);
          await sleep(10); // both stay busy part of the time, as real handlers would
          for (const m of msgs) m.ack();
        },
      });
    await Promise.all([make(0).start(), make(1).start()]);
    const total = 200;
    await Promise.all(
      Array.from({ length: total }, (_, i) => publishBatch(js, subject, makeStreamEvents(2, `g${i}`), `g${i}`)),
    );
    await expect.poll(() => seen[0]!.size + seen[1]!.size, { timeout: 10_000 }).toBe(total);
    const [a, b] = seen as [Map<number, number>, Map<number, number>];
    expect(a.size).toBeGreaterThan(0);
    expect(b.size).toBeGreaterThan(0);
    for (const seq of a.keys()) expect(b.has(seq)).toBe(false);
    expect([...a.values(), ...b.values()].every((n) => n === 1)).toBe(true);
    expect(new Set([...a.keys(), ...b.keys()]).size).toBe(total);
  });

  it("redelivers messages that were handled but never acked to another consumer after ack_wait", async () => {
    const { name, subject } = await freshStream();
    const lazySeen: number[] = [];
    // ack_wait well past the pull's 1 s expiry: the lazy consumer's stop() (which drains its open
    // pull) ends before the messages are due again, so none is redelivered to it while it stops
    // (it would nak that one at once, and the diligent consumer would see a third delivery).
    const lazy = consumer({
      stream: name,
      durable: "work",
      ackWaitMs: 3_000,
      handler: async (msgs) => {
        for (const m of msgs) lazySeen.push(m.seq); // and never ack
      },
    });
    await lazy.start();
    for (let i = 0; i < 3; i++) await publishBatch(js, subject, makeStreamEvents(3, `r${i}`), `r${i}`);
    await expect.poll(() => lazySeen.length, { timeout: 3_000 }).toBe(3);
    const deliveredAt = Date.now();
    await lazy.stop();

    const redelivered: BatchMessage[] = [];
    const diligent = consumer({
      stream: name,
      durable: "work",
      ackWaitMs: 3_000,
      handler: async (msgs) => {
        for (const m of msgs) {
          redelivered.push(m);
          m.ack();
        }
      },
    });
    await diligent.start();
    // Every one comes back, none before ack_wait. Once, under the full suite's load, one message
    // came a third time before another's second delivery ([1, 3, 3]; cause not found): how often
    // each is delivered is the server's timing, that all of them are redelivered is the contract.
    const seqs = (): number[] => [...new Set(redelivered.map((m) => m.seq))].sort();
    await expect.poll(seqs, { timeout: 8_000 }).toEqual([1, 2, 3]);
    expect(Date.now() - deliveredAt).toBeGreaterThanOrEqual(2_900); // not before ack_wait
    expect(redelivered.every((m) => m.redelivered && m.deliveryCount >= 2)).toBe(true);
    expect(redelivered.find((m) => m.seq === 2)?.events).toStrictEqual(makeStreamEvents(3, "r1"));
  });

  it("naks with a delay when the handler throws, then redelivers", async () => {
    const { name, subject } = await freshStream();
    const calls: Array<{ at: number; seqs: number[]; redelivered: boolean[] }> = [];
    const c = consumer({
      stream: name,
      durable: "flaky",
      nakDelayMs: 700,
      handler: async (msgs) => {
        calls.push({ at: Date.now(), seqs: msgs.map((m) => m.seq), redelivered: msgs.map((m) => m.redelivered) });
        if (calls.length === 1) throw new Error("storage down");
        for (const m of msgs) m.ack();
      },
    });
    await c.start();
    await publishBatch(js, subject, makeStreamEvents(2, "f0"), "f0");
    await expect.poll(() => calls.length, { timeout: 5_000 }).toBe(2);
    const [failed, retry] = calls as [(typeof calls)[0], (typeof calls)[0]];
    expect(failed).toMatchObject({ seqs: [1], redelivered: [false] });
    expect(retry).toMatchObject({ seqs: [1], redelivered: [true] });
    expect(retry.at - failed.at).toBeGreaterThanOrEqual(600); // the nak delay, not ack_wait (30 s)
    expect(retry.at - failed.at).toBeLessThan(5_000);
  });

  it("does not nak messages the handler settled before throwing", async () => {
    const { name, subject } = await freshStream();
    const seen: number[] = [];
    const c = consumer({
      stream: name,
      durable: "ack-then-throw",
      nakDelayMs: 100,
      handler: async (msgs) => {
        for (const m of msgs) {
          seen.push(m.seq);
          m.ack();
        }
        throw new Error("failed after acking");
      },
    });
    await c.start();
    await publishBatch(js, subject, makeStreamEvents(1, "x"), "x");
    await expect.poll(() => seen, { timeout: 3_000 }).toEqual([1]);
    await sleep(600); // several nak delays: a wrongly nak'ed message would be back by now
    expect(seen).toEqual([1]);
    expect((await jsm.consumers.info(name, "ack-then-throw")).num_ack_pending).toBe(0);
  });

  it("terminates an undecodable message and keeps going", async () => {
    const { name, subject } = await freshStream();
    await js.publish(subject, new TextEncoder().encode("not msgpack {"), { msgID: "junk" });
    await publishBatch(js, subject, makeStreamEvents(2, "ok"), "ok");
    const handled: number[] = [];
    const c = consumer({
      stream: name,
      durable: "robust",
      handler: async (msgs) => {
        for (const m of msgs) {
          handled.push(m.seq);
          m.ack();
        }
      },
    });
    await c.start();
    await expect.poll(() => handled, { timeout: 3_000 }).toEqual([2]);
    await expect
      .poll(async () => (await jsm.consumers.info(name, "robust")).num_ack_pending, { timeout: 2_000 })
      .toBe(0);
  });

  it("stop() finishes the in-flight handler, stops fetching and hands unhandled messages back at once", async () => {
    const { name, subject } = await freshStream();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let entered!: () => void;
    const inHandler = new Promise<void>((r) => (entered = r));
    const firstSeen: number[] = [];
    let handlerDone = false;
    const first = consumer({
      stream: name,
      durable: "shutdown",
      ackWaitMs: 30_000, // long: anything handed over before 30 s was nak'ed by stop()
      handler: async (msgs) => {
        for (const m of msgs) firstSeen.push(m.seq);
        entered();
        await gate;
        for (const m of msgs) m.ack();
        handlerDone = true;
      },
    });
    await first.start();
    expect(first.running).toBe(true);
    await publishBatch(js, subject, makeStreamEvents(1, "s0"), "s0");
    await inHandler;
    // These land in the still-open fetch while the handler is blocked.
    await publishBatch(js, subject, makeStreamEvents(1, "s1"), "s1");
    await publishBatch(js, subject, makeStreamEvents(1, "s2"), "s2");

    let stopped = false;
    const stopping = first.stop().then(() => {
      stopped = true;
    });
    await sleep(150);
    expect(stopped).toBe(false); // waits for the in-flight handler
    expect(first.running).toBe(false);
    const t0 = Date.now();
    release();
    await stopping;
    expect(handlerDone).toBe(true);
    expect(Date.now() - t0).toBeLessThan(2_500); // bounded by expiresMs (1 s) + slack
    expect(firstSeen).toEqual([1]);

    // Published after stop: the stopped consumer must not take it.
    await publishBatch(js, subject, makeStreamEvents(1, "s3"), "s3");
    await sleep(300);
    expect(firstSeen).toEqual([1]);

    const next: BatchMessage[] = [];
    const second = consumer({
      stream: name,
      durable: "shutdown",
      ackWaitMs: 30_000,
      handler: async (msgs) => {
        for (const m of msgs) {
          next.push(m);
          m.ack();
        }
      },
    });
    const startedAt = Date.now();
    await second.start();
    await expect.poll(() => next.length, { timeout: 5_000 }).toBe(3);
    expect(Date.now() - startedAt).toBeLessThan(5_000); // long before the 30 s ack_wait
    expect(next.map((m) => m.seq).sort()).toEqual([2, 3, 4]); // 1 was acked, never again
    // 2 and 3 had reached the first consumer's open fetch: stop() nak'ed them back.
    expect(next.filter((m) => m.seq !== 4).every((m) => m.redelivered)).toBe(true);
    expect(next.find((m) => m.seq === 4)?.redelivered).toBe(false);
  });
});

// Last on purpose: it crashes the shared server (the shared connection reconnects on its own).
describe("durability across a server crash", () => {
  it("keeps stored batches and the duplicate window through kill -9 and restart", async () => {
    const { name, subject } = await freshStream({ storage: "file" });
    const own = await connect({ servers: server.url, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
    try {
      const ownJs = own.jetstream();
      const events = makeStreamEvents(100, "crash");
      const first = await publishBatch(ownJs, subject, events, "crash-1");
      const reconnected = (async () => {
        for await (const st of own.status()) if (st.type === Events.Reconnect) return;
      })();
      server.kill9();
      await server.restart();
      // A request sent while disconnected is not replayed by the client (it times out), so a
      // real publisher retries; here we simply wait for the reconnect.
      await reconnected;
      // A publisher that never saw its PubAck retries after the crash: still a duplicate.
      const retried = await publishBatch(ownJs, subject, events, "crash-1", { timeoutMs: 5_000 });
      expect(retried).toEqual({ seq: first.seq, duplicate: true });
      const ownJsm = await own.jetstreamManager();
      expect(decodeBatch((await ownJsm.streams.getMessage(name, { seq: first.seq })).data)).toStrictEqual(events);
    } finally {
      await own.close();
    }
  });
});

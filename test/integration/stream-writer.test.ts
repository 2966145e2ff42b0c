/**
 * The cluster storage writer against a real nats-server: a message whose commit finished but
 * whose ack was lost on the way is redelivered by JetStream after the ack wait; the writer
 * recognises it by its stream sequence and acks it without writing its events again.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type JetStreamManager, type NatsConnection } from "nats";
import pino from "pino";
import { ensureEventStream, publishBatch } from "../../actors/common/jetstream";
import type { IngestEvent } from "../../actors/common/event";
import type { Sink } from "../../actors/storage-writer/sink";
import { StreamWriter } from "../../actors/storage-writer/stream-writer";
import { startNatsServer, type NatsServerHandle } from "../support/nats-server";

const ACK_WAIT_MS = 1_000;

function makeEvents(n: number, tag: string): IngestEvent[] {
  return Array.from({ length: n }, (_, i) => ({
    tenant_id: "tenant-1",
    event_id: `${tag}-${i}`,
    event_name: "view",
    session_id: `sess-${i % 3}`,
    seq: i,
    user_id: null,
    channel: null,
    timestamp: 1_700_000_000_000 + i,
    received_at: 1_700_000_000_500 + i,
    properties: {},
  }));
}

/** Counts how often each event id was written. */
class CountingSink implements Sink {
  readonly name = "counting";
  readonly writes = new Map<string, number>();
  async start(): Promise<void> {}
  async ready(): Promise<{ ok: boolean }> {
    return { ok: true };
  }
  async close(): Promise<void> {}
  async write(events: readonly IngestEvent[]): Promise<void> {
    for (const e of events) this.writes.set(e.event_id, (this.writes.get(e.event_id) ?? 0) + 1);
  }
}

/**
 * Loses the first `n` final acks (`+ACK` to a `$JS.ACK.` subject) this connection sends, as a
 * network failure between the writer and the server would. The server itself is real; only the
 * client's outgoing publish is intercepted (nats.js sends message acks through its protocol
 * handler, not through `nc.publish`).
 */
function loseAcks(nc: NatsConnection, n: number): { lost: () => number } {
  const protocol = (nc as unknown as { protocol: { publish: (subject: string, data: Uint8Array, opts?: unknown) => void } }).protocol;
  const publish = protocol.publish.bind(protocol);
  let lost = 0;
  protocol.publish = (subject, data, opts) => {
    const finalAck = subject.startsWith("$JS.ACK.") && Buffer.from(data ?? []).toString() === "+ACK";
    if (finalAck && lost < n) {
      lost++;
      return;
    }
    publish(subject, data, opts);
  };
  return { lost: () => lost };
}

let server: NatsServerHandle;
let nc: NatsConnection;
let jsm: JetStreamManager;
let streamNo = 0;

beforeAll(async () => {
  server = await startNatsServer({ jetstream: true });
  nc = await connect({ servers: server.url });
  jsm = await nc.jetstreamManager();
});

afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

/** A fresh stream with `messages` messages of `eventsEach` events on one subject. */
async function streamWith(messages: number, eventsEach: number): Promise<{ stream: string; filter: string }> {
  streamNo++;
  const stream = `WRITER_${streamNo}`;
  await ensureEventStream(jsm, {
    name: stream,
    subjects: [`writer.${streamNo}.>`],
    maxAgeMs: 60 * 60_000,
    maxBytes: 16 * 1024 * 1024,
    duplicateWindowMs: 60_000,
    replicas: 1,
    storage: "file",
  });
  const js = nc.jetstream();
  for (let i = 0; i < messages; i++) await publishBatch(js, `writer.${streamNo}.p0`, makeEvents(eventsEach, `m${streamNo}-${i}`), `msg-${streamNo}-${i}`);
  return { stream, filter: `writer.${streamNo}.>` };
}

/** Publishes 3 messages of 50 events to a fresh stream; runs a writer whose first 3 acks are lost until all are acked. */
async function runWriterLosingAcks(dedupWindow: number): Promise<{ sink: CountingSink; redelivered: number; events: number }> {
  const { stream, filter } = await streamWith(3, 50);
  const sink = new CountingSink();
  const writerNc = await connect({ servers: server.url });
  const acks = loseAcks(writerNc, 3);
  const writer = new StreamWriter({
    nc: writerNc,
    stream,
    filterSubject: filter,
    sink,
    batchMaxEvents: 1_000,
    batchMaxWaitMs: 5,
    ackWaitMs: ACK_WAIT_MS,
    maxAckPending: 100,
    dedupWindow,
    logger: pino({ enabled: false }),
  });
  await writer.start();
  try {
    // Done when the 3 acks were lost, the 3 messages came back, and nothing is pending any more.
    await expect
      .poll(
        async () => {
          const info = await jsm.consumers.info(stream, "storage-writer");
          return acks.lost() === 3 && info.delivered.consumer_seq >= 6 && info.num_ack_pending === 0;
        },
        { timeout: 15_000, interval: 200 },
      )
      .toBe(true);
    const info = await jsm.consumers.info(stream, "storage-writer");
    expect(info.delivered.stream_seq).toBe(3);
    // Deliveries beyond the 3 messages are redeliveries.
    return { sink, redelivered: info.delivered.consumer_seq - 3, events: 150 };
  } finally {
    await writer.stop();
    await writerNc.close();
  }
}

describe("StreamWriter redeliveries", () => {
  it("acks a redelivered message it already committed without writing its events again", async () => {
    const { sink, redelivered, events } = await runWriterLosingAcks(1_000);
    // The lost acks did make JetStream redeliver (otherwise this test would prove nothing) ...
    expect(redelivered).toBeGreaterThan(0);
    // ... and every event reached the sink exactly once.
    expect(sink.writes.size).toBe(events);
    expect([...sink.writes.values()].every((n) => n === 1)).toBe(true);
  }, 30_000);

  it("without the window (DEDUP_WINDOW=0) the same redelivery is written twice", async () => {
    const { sink, redelivered, events } = await runWriterLosingAcks(0);
    expect(redelivered).toBeGreaterThan(0);
    expect(sink.writes.size).toBe(events);
    expect([...sink.writes.values()].some((n) => n > 1)).toBe(true);
  }, 30_000);
});

/** A sink whose writes wait at a gate (ClickHouse slow or hanging) or fail until told otherwise. */
class GatedSink extends CountingSink {
  private open = false;
  private opened: Array<() => void> = [];
  failing = false;
  override async write(events: readonly IngestEvent[]): Promise<void> {
    if (this.failing) throw new Error("sink down");
    if (!this.open) await new Promise<void>((resolve) => this.opened.push(resolve));
    await super.write(events);
  }
  release(): void {
    this.open = true;
    for (const resolve of this.opened.splice(0)) resolve();
  }
}

describe("StreamWriter backpressure", () => {
  const writerFor = (sink: Sink, stream: string, filter: string, writerNc: NatsConnection) =>
    new StreamWriter({
      nc: writerNc,
      stream,
      filterSubject: filter,
      sink,
      batchMaxEvents: 100,
      batchMaxWaitMs: 5,
      ackWaitMs: 30_000,
      maxAckPending: 1_000,
      dedupWindow: 1_000,
      maxPendingEvents: 300,
      fetchMaxMessages: 4,
      retryBaseMs: 20,
      retryMaxMs: 50,
      logger: pino({ enabled: false }),
    });

  it("stops pulling while the sink is behind, then stores everything once it catches up", async () => {
    // 40 messages of 50 events: far more than the 300 events the writer may hold uncommitted.
    const { stream, filter } = await streamWith(40, 50);
    const sink = new GatedSink();
    const writerNc = await connect({ servers: server.url });
    const writer = writerFor(sink, stream, filter, writerNc);
    await writer.start();
    try {
      await expect.poll(() => writer.pendingEvents, { timeout: 10_000 }).toBeGreaterThanOrEqual(300);
      // Give it time to over-pull if it were going to.
      await new Promise((r) => setTimeout(r, 1_500));
      // At most one fetch (4 messages of 50) past the limit; the rest stays in the stream.
      expect(writer.pendingEvents).toBeLessThanOrEqual(300 + 4 * 50);
      const held = await jsm.consumers.info(stream, "storage-writer");
      expect(held.num_pending).toBeGreaterThan(0);
      expect(sink.writes.size).toBe(0);

      sink.release();
      await expect
        .poll(async () => (await jsm.consumers.info(stream, "storage-writer")).num_ack_pending === 0 && sink.writes.size === 2_000, {
          timeout: 15_000,
          interval: 100,
        })
        .toBe(true);
      expect([...sink.writes.values()].every((n) => n === 1)).toBe(true);
      expect((await jsm.consumers.info(stream, "storage-writer")).num_pending).toBe(0);
    } finally {
      await writer.stop();
      await writerNc.close();
    }
  }, 30_000);

  it("stops promptly while held back by a failing sink, leaving the messages to the stream", async () => {
    const { stream, filter } = await streamWith(20, 50);
    const sink = new GatedSink();
    sink.failing = true;
    const writerNc = await connect({ servers: server.url });
    const writer = writerFor(sink, stream, filter, writerNc);
    await writer.start();
    await expect.poll(() => writer.pendingEvents, { timeout: 10_000 }).toBeGreaterThanOrEqual(300);
    const started = Date.now();
    await writer.stop();
    // The open pull (expires 2 s) is the only wait: the held-back fetch does not block stop().
    expect(Date.now() - started).toBeLessThan(5_000);
    await writerNc.close();
    expect(sink.writes.size).toBe(0);
    // Nothing was acked: every message is still there for the next writer.
    const info = await jsm.consumers.info(stream, "storage-writer");
    expect(info.ack_floor.stream_seq).toBe(0);
  }, 30_000);
});

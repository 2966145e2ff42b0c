import type { JetStreamClient } from "nats";
import { describe, expect, it } from "vitest";
import { decodeBatch, encodeBatch } from "../../actors/common/batch-codec";
import type { IngestEvent } from "../../actors/common/event";
import { partitionOf, partitionSubject } from "../../actors/common/event-stream";
import { batchMessageId, StreamPersister } from "../../actors/session/stream-persister";

function sessionEvents(session: string, n: number): IngestEvent[] {
  return Array.from({ length: n }, (_, i) => ({
    tenant_id: "t1",
    event_id: `${session}-${i}`,
    event_name: "click",
    session_id: session,
    seq: i,
    user_id: null,
    channel: "web",
    timestamp: 1_700_000_000_000 + i,
    received_at: 1_700_000_000_500,
    properties: { path: `/page/${i}`, n: i },
  }));
}

interface Published {
  subject: string;
  events: IngestEvent[];
  bytes: number;
  msgID: string | undefined;
}

/** A persister whose JetStream client records each publish (what the stream would store). */
function recordingPersister(maxPayloadBytes = 1024 * 1024, partitions = 4) {
  const published: Published[] = [];
  const js = {
    publish: async (subject: string, data: Uint8Array, opts?: { msgID?: string }) => {
      published.push({ subject, events: decodeBatch(data), bytes: data.length, msgID: opts?.msgID });
      return { seq: published.length, duplicate: false, stream: "EVENTS" };
    },
  } as unknown as JetStreamClient;
  const persister = new StreamPersister({ js: () => js, partitions, maxPayloadBytes, publishTimeoutMs: 1_000, maxCoalescedEvents: 10_000 });
  return { persister, published };
}

describe("StreamPersister", () => {
  it("one publish per partition for the turns of a tick, made and unmade bodies together, in order, id over the events", async () => {
    const { persister, published } = recordingPersister(1024 * 1024, 1);
    const a = sessionEvents("a", 3);
    const b = sessionEvents("b", 2);
    const c = sessionEvents("c", 4);
    await Promise.all([persister.persist(a, encodeBatch(a).slice()), persister.persist(b), persister.persist(c, encodeBatch(c).slice())]);
    expect(published).toHaveLength(1);
    expect(published[0]!.events).toStrictEqual([...a, ...b, ...c]);
    expect(published[0]!.msgID).toBe(batchMessageId([...a, ...b, ...c]));
    expect(published[0]!.subject).toBe(partitionSubject(0));
  });

  it("splits by partition subject", async () => {
    const { persister, published } = recordingPersister(1024 * 1024, 4);
    const sessions = ["a", "b", "c", "d", "e", "f", "g", "h"].map((s) => sessionEvents(s, 2));
    await Promise.all(sessions.map((events, i) => persister.persist(events, i % 2 === 0 ? encodeBatch(events).slice() : undefined)));
    for (const message of published) {
      for (const event of message.events) expect(partitionSubject(partitionOf("t1", event.session_id, 4))).toBe(message.subject);
    }
    expect(published.flatMap((m) => m.events).length).toBe(16);
  });

  it("a message over the payload limit goes out as halves in order, a made body's events split and packed anew", async () => {
    const big = sessionEvents("big", 400);
    const small = sessionEvents("small", 10);
    const limit = Math.floor(encodeBatch(big).length / 3);
    const { persister, published } = recordingPersister(limit, 1);
    await Promise.all([persister.persist(small, encodeBatch(small).slice()), persister.persist(big, encodeBatch(big).slice())]);
    expect(published.length).toBeGreaterThan(3);
    for (const message of published) {
      expect(message.bytes).toBeLessThanOrEqual(limit);
      expect(message.msgID).toBe(batchMessageId(message.events));
    }
    expect(published.flatMap((m) => m.events)).toStrictEqual([...small, ...big]);
  });
});

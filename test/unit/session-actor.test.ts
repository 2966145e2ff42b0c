import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SERVER_ASSIGNED_ID, type IngestEvent, type SessionIngestRequest } from "../../actors/common/event";
import { SessionActor, type SessionActorOptions } from "../../actors/session/session-actor";
import { deferred, type Deferred } from "../support/deferred";


async function flush(): Promise<void> {
  for (let i = 0; i < 30; i++) await Promise.resolve();
}

const T0 = Date.UTC(2024, 0, 15, 10, 30, 45);

function ev(tenant: string, session: string, id: string, seq: number | null = null): IngestEvent {
  return {
    tenant_id: tenant,
    event_id: id,
    event_name: "click",
    session_id: session,
    seq,
    user_id: null,
    channel: null,
    timestamp: T0,
    received_at: T0,
    properties: {},
  };
}

/** One request of one tenant: sessions given as [session, events]. */
function req(tenant: string, ...sessions: Array<[string, IngestEvent[]]>): SessionIngestRequest {
  return { tenant_id: tenant, sessions: sessions.map(([session_id, events]) => ({ session_id, events })) };
}

/** Request for tenant t1 with one session s1 holding events of the given ids/seqs. */
function s1(...events: Array<[string, number | null] | string>): SessionIngestRequest {
  return req(
    "t1",
    ["s1", events.map((e) => (typeof e === "string" ? ev("t1", "s1", e) : ev("t1", "s1", e[0], e[1])))],
  );
}

const ids = (events: IngestEvent[]) => events.map((e) => e.event_id);

function recordingActor(over: Partial<SessionActorOptions> = {}) {
  const persisted: string[][] = [];
  const durable: string[][] = [];
  const actor = new SessionActor({
    dedupWindow: 1_000,
    persist: async (events) => {
      persisted.push(ids(events));
    },
    onDurable: (events) => durable.push(ids(events)),
    ...over,
  });
  return { actor, persisted, durable };
}

describe("SessionActor ordering", () => {
  it("a session's second batch is not persisted before the first resolves (slow persist)", async () => {
    const calls: Array<{ ids: string[]; gate: Deferred }> = [];
    const actor = new SessionActor({
      dedupWindow: 100,
      persist: (events) => {
        const gate = deferred();
        calls.push({ ids: ids(events), gate });
        return gate.promise;
      },
    });
    const first = actor.ingest(s1("a1", "a2"));
    const second = actor.ingest(s1("b1"));
    const third = actor.ingest(s1("c1"));
    await flush();
    expect(calls.map((c) => c.ids)).toEqual([["a1", "a2"]]);

    calls[0].gate.resolve();
    expect(await first).toEqual({ accepted: 2, duplicates: 0, seqGaps: 0, seqDuplicates: 0 });
    await flush();
    expect(calls.map((c) => c.ids)).toEqual([["a1", "a2"], ["b1"]]);

    calls[1].gate.resolve();
    await second;
    await flush();
    expect(calls.map((c) => c.ids)).toEqual([["a1", "a2"], ["b1"], ["c1"]]);
    calls[2].gate.resolve();
    await third;
  });

  it("persist order follows arrival order when persist durations vary", async () => {
    const persisted: string[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const actor = new SessionActor({
      dedupWindow: 1_000,
      persist: async (events) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        // Earlier batches are slower: a wrong implementation would finish them out of order.
        const delay = 20 - Number(events[0].event_id.slice(1));
        await new Promise((r) => setTimeout(r, Math.max(0, delay)));
        persisted.push(...ids(events));
        inFlight--;
      },
    });
    const all = Array.from({ length: 20 }, (_, i) => actor.ingest(s1(`e${i}`)));
    await Promise.all(all);
    expect(persisted).toEqual(Array.from({ length: 20 }, (_, i) => `e${i}`));
    expect(maxInFlight).toBe(1);
  });

  it("different sessions persist concurrently", async () => {
    const started: string[] = [];
    const gates = new Map<string, Deferred>();
    const actor = new SessionActor({
      dedupWindow: 100,
      persist: (events) => {
        const session = events[0].session_id;
        started.push(session);
        const g = deferred();
        gates.set(session, g);
        return g.promise;
      },
    });
    const one = actor.ingest(req("t1", ["s1", [ev("t1", "s1", "x1")]], ["s2", [ev("t1", "s2", "y1")]]));
    const other = actor.ingest(req("t1", ["s3", [ev("t1", "s3", "z1")]]));
    await flush();
    expect(started.sort()).toEqual(["s1", "s2", "s3"]);
    expect(actor.activeMailboxes).toBe(3);
    gates.get("s3")!.resolve();
    expect(await other).toEqual({ accepted: 1, duplicates: 0, seqGaps: 0, seqDuplicates: 0 });
    gates.get("s1")!.resolve();
    gates.get("s2")!.resolve();
    expect(await one).toEqual({ accepted: 2, duplicates: 0, seqGaps: 0, seqDuplicates: 0 });
    await flush();
    expect(actor.activeMailboxes).toBe(0);
  });

  it("the same session id in two tenants is two mailboxes (runs concurrently)", async () => {
    const started: string[] = [];
    const gates: Deferred[] = [];
    const actor = new SessionActor({
      dedupWindow: 100,
      persist: (events) => {
        started.push(events[0].tenant_id);
        const g = deferred();
        gates.push(g);
        return g.promise;
      },
    });
    const a = actor.ingest(req("A", ["s", [ev("A", "s", "1")]]));
    const b = actor.ingest(req("B", ["s", [ev("B", "s", "1")]]));
    await flush();
    expect(started).toEqual(["A", "B"]);
    gates.forEach((g) => g.resolve());
    await Promise.all([a, b]);
  });
});

describe("SessionActor duplicates", () => {
  it.each([
    { name: "no duplicates", batch: ["a", "b", "c"], persisted: ["a", "b", "c"], accepted: 3, duplicates: 0 },
    { name: "one repeat", batch: ["a", "b", "a"], persisted: ["a", "b"], accepted: 2, duplicates: 1 },
    { name: "all the same", batch: ["a", "a", "a", "a"], persisted: ["a"], accepted: 1, duplicates: 3 },
    { name: "two pairs", batch: ["a", "b", "b", "a", "c"], persisted: ["a", "b", "c"], accepted: 3, duplicates: 2 },
  ])("within a batch: $name", async ({ batch, persisted: expected, accepted, duplicates }) => {
    const { actor, persisted } = recordingActor();
    expect(await actor.ingest(s1(...batch))).toEqual({ accepted, duplicates, seqGaps: 0, seqDuplicates: 0 });
    expect(persisted).toEqual([expected]);
  });

  it("matches a Set-based reference for any sequence of batches (small and large, UUIDs in both cases, other ids, window 0 and tiny windows)", async () => {
    // A small pool of ids, so repeats within and across batches are common; the same UUID in
    // capitals and a mixed-case spelling are other ids.
    const uuid = (n: number) => `0000000${n}-aaaa-4bbb-8ccc-dddddddddd0${n}`;
    const pool = [uuid(1), uuid(2), uuid(3), uuid(1).toUpperCase(), uuid(2).toUpperCase(), "0000000a-AAAA-4bbb-8ccc-dddddddddd0a", "x", "y", "evt-1"];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(0, 1, 2, 3, 50),
        fc.array(fc.array(fc.integer({ min: 0, max: pool.length - 1 }), { minLength: 1, maxLength: 90 }), { minLength: 1, maxLength: 6 }),
        async (window, batches) => {
          const { actor, persisted } = recordingActor({ dedupWindow: window });
          // Reference: an insertion-ordered set of remembered ids, forgetting the oldest past `window`
          // per kind (UUIDs and other ids are separate parts, each at least `window` long).
          const remembered: string[][] = [[], []];
          const isUuid = (id: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id) || /^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/.test(id);
          for (const batch of batches) {
            const idsOf = batch.map((i) => pool[i]!);
            const seenInBatch = new Set<string>();
            const expected: string[] = [];
            for (const id of idsOf) {
              const known = window > 0 && remembered[isUuid(id) ? 0 : 1]!.includes(id);
              if (!seenInBatch.has(id) && !known) expected.push(id);
              seenInBatch.add(id);
            }
            const before = persisted.length;
            const totals = await actor.ingest(s1(...idsOf));
            expect(totals.accepted).toBe(expected.length);
            expect(totals.duplicates).toBe(idsOf.length - expected.length);
            expect(persisted.slice(before)).toEqual(expected.length > 0 ? [expected] : []);
            for (const id of expected) {
              const part = remembered[isUuid(id) ? 0 : 1]!;
              part.push(id);
              if (part.length > window) part.shift();
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("across batches: remembered ids are counted and not persisted", async () => {
    const { actor, persisted } = recordingActor();
    expect(await actor.ingest(s1("a", "b"))).toMatchObject({ accepted: 2, duplicates: 0 });
    expect(await actor.ingest(s1("b", "c", "a"))).toMatchObject({ accepted: 1, duplicates: 2 });
    // A batch of nothing but duplicates is not persisted at all.
    expect(await actor.ingest(s1("a", "b", "c"))).toMatchObject({ accepted: 0, duplicates: 3 });
    expect(persisted).toEqual([["a", "b"], ["c"]]);
  });

  it("dedups by (tenant, event_id) across sessions of the same tenant", async () => {
    const { actor, persisted } = recordingActor();
    await actor.ingest(req("t1", ["s1", [ev("t1", "s1", "same")]]));
    expect(await actor.ingest(req("t1", ["s2", [ev("t1", "s2", "same")]]))).toMatchObject({
      accepted: 0,
      duplicates: 1,
    });
    expect(persisted).toEqual([["same"]]);
  });

  it("tenant isolation: the same event_id in two tenants is not a duplicate", async () => {
    const { actor, persisted } = recordingActor();
    expect(await actor.ingest(req("A", ["s", [ev("A", "s", "e1")]]))).toMatchObject({ accepted: 1, duplicates: 0 });
    expect(await actor.ingest(req("B", ["s", [ev("B", "s", "e1")]]))).toMatchObject({ accepted: 1, duplicates: 0 });
    expect(await actor.ingest(req("A", ["s", [ev("A", "s", "e1")]]))).toMatchObject({ accepted: 0, duplicates: 1 });
    expect(persisted).toEqual([["e1"], ["e1"]]);
  });

  it("tenant ids that would collide when concatenated stay apart", async () => {
    const { actor, persisted } = recordingActor();
    await actor.ingest(req("ab", ["s", [ev("ab", "s", "c")]]));
    expect(await actor.ingest(req("a", ["s", [ev("a", "s", "bc")]]))).toMatchObject({ accepted: 1, duplicates: 0 });
    expect(persisted).toEqual([["c"], ["bc"]]);
  });

  it("UUID ids (the SDKs' kind, held as numbers): duplicates per tenant, and a capitalised UUID is another id", async () => {
    const { actor, persisted } = recordingActor({ dedupWindow: 2 });
    const [u1, u2, u3] = ["6f1c2b1e-8d4a-4c1e-9b7a-2f3d4e5f6a7b", "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "ffffffff-0000-4000-8000-000000000001"];
    expect(await actor.ingest(req("t1", ["s", [ev("t1", "s", u1), ev("t1", "s", u2)]]))).toMatchObject({ accepted: 2, duplicates: 0 });
    expect(await actor.ingest(req("t1", ["s", [ev("t1", "s", u1)]]))).toMatchObject({ accepted: 0, duplicates: 1 });
    expect(await actor.ingest(req("t2", ["s", [ev("t2", "s", u1)]]))).toMatchObject({ accepted: 1, duplicates: 0 });
    expect(await actor.ingest(req("t1", ["s", [ev("t1", "s", u1.toUpperCase())]]))).toMatchObject({ accepted: 1, duplicates: 0 });
    // Four UUIDs taken (t1 u1, t1 u2, t2 u1, t1 U1) by a window of two: t1's u1 and u2 are forgotten.
    expect(await actor.ingest(req("t1", ["s", [ev("t1", "s", u3), ev("t1", "s", u1)]]))).toMatchObject({ accepted: 2, duplicates: 0 });
    expect(persisted).toEqual([[u1, u2], [u1], [u1.toUpperCase()], [u3, u1]]);
  });

  it("dedupWindow 0 disables dedup across batches", async () => {
    const { actor, persisted } = recordingActor({ dedupWindow: 0 });
    expect(await actor.ingest(s1("a"))).toMatchObject({ accepted: 1, duplicates: 0 });
    expect(await actor.ingest(s1("a"))).toMatchObject({ accepted: 1, duplicates: 0 });
    expect(await actor.ingest(s1("a", "b"))).toMatchObject({ accepted: 2, duplicates: 0 });
    expect(persisted).toEqual([["a"], ["a"], ["a", "b"]]);
  });

  it("the dedup window is bounded: the least recent id is forgotten", async () => {
    const { actor, persisted } = recordingActor({ dedupWindow: 2 });
    await actor.ingest(s1("a"));
    await actor.ingest(s1("b"));
    await actor.ingest(s1("c")); // evicts a
    expect(await actor.ingest(s1("a"))).toMatchObject({ accepted: 1, duplicates: 0 });
    expect(await actor.ingest(s1("a"))).toMatchObject({ accepted: 0, duplicates: 1 });
    expect(persisted).toEqual([["a"], ["b"], ["c"], ["a"]]);
  });

  it("ids the server assigned skip the window and do not take room in it", async () => {
    const { actor, persisted } = recordingActor({ dedupWindow: 1 });
    const assigned = (id: string): IngestEvent => ({ ...ev("t1", "s1", id), [SERVER_ASSIGNED_ID]: true }) as IngestEvent;
    await actor.ingest(s1("client-1"));
    // A server id equal to a remembered client id is not a duplicate (it cannot be a resend) ...
    expect(await actor.ingest(req("t1", ["s1", [assigned("client-1"), assigned("x")]]))).toMatchObject({
      accepted: 2,
      duplicates: 0,
    });
    // ... and it did not push the client id out of a window of one.
    expect(await actor.ingest(s1("client-1"))).toMatchObject({ accepted: 0, duplicates: 1 });
    // The same event after a serialised hop has lost its mark and is checked like any other.
    const remote = JSON.parse(JSON.stringify(assigned("client-1"))) as IngestEvent;
    expect(await actor.ingest(req("t1", ["s1", [remote]]))).toMatchObject({ accepted: 0, duplicates: 1 });
    expect(persisted).toEqual([["client-1"], ["client-1", "x"]]);
  });

  it("sums totals over every session of one request", async () => {
    const { actor } = recordingActor();
    await actor.ingest(req("t", ["s1", [ev("t", "s1", "old")]]));
    const stats = await actor.ingest(
      req(
        "t",
        ["s1", [ev("t", "s1", "a", 1), ev("t", "s1", "a", 1), ev("t", "s1", "old")]],
        ["s2", [ev("t", "s2", "b", 1), ev("t", "s2", "c", 3)]],
        ["s3", [ev("t", "s3", "d")]],
      ),
    );
    expect(stats).toEqual({ accepted: 4, duplicates: 2, seqGaps: 1, seqDuplicates: 0 });
  });
});

describe("SessionActor encoded batches", () => {
  const body = new Uint8Array([0x91, 0xc0]);
  const run = async (request: SessionIngestRequest) => {
    const calls: Array<{ ids: string[]; encoded: Uint8Array | undefined }> = [];
    const actor = new SessionActor({
      dedupWindow: 1_000,
      persist: async (events, encoded) => {
        calls.push({ ids: ids(events), encoded });
      },
    });
    await actor.ingest(request);
    return { actor, calls };
  };

  it("persists the batch's body with its events when every event is kept", async () => {
    const { calls } = await run({ tenant_id: "t1", sessions: [{ session_id: "s1", events: [ev("t1", "s1", "a"), ev("t1", "s1", "b")], encoded: body }] });
    expect(calls).toEqual([{ ids: ["a", "b"], encoded: body }]);
  });

  it("drops the body when a duplicate is left out (it would store the duplicate again)", async () => {
    const { actor, calls } = await run(s1("a"));
    await actor.ingest({ tenant_id: "t1", sessions: [{ session_id: "s1", events: [ev("t1", "s1", "a"), ev("t1", "s1", "b")], encoded: body }] });
    await actor.ingest({ tenant_id: "t1", sessions: [{ session_id: "s1", events: [ev("t1", "s1", "c"), ev("t1", "s1", "c")], encoded: body }] });
    expect(calls).toEqual([
      { ids: ["a"], encoded: undefined },
      { ids: ["b"], encoded: undefined },
      { ids: ["c"], encoded: undefined },
    ]);
  });
});

describe("SessionActor failed persist", () => {
  it("rejects ingest with the persist error, and the retry of the same events is not a duplicate", async () => {
    const boom = new Error("storage down");
    let fail = true;
    const persisted: string[][] = [];
    const durable: string[][] = [];
    const actor = new SessionActor({
      dedupWindow: 100,
      persist: async (events) => {
        if (fail) throw boom;
        persisted.push(ids(events));
      },
      onDurable: (events) => durable.push(ids(events)),
    });
    await expect(actor.ingest(s1(["a", 1], ["b", 2]))).rejects.toBe(boom);
    expect(durable).toEqual([]);
    fail = false;
    // Same events again: accepted, and seq 1,2 is not a seq duplicate (the failed batch was never tracked).
    expect(await actor.ingest(s1(["a", 1], ["b", 2]))).toEqual({
      accepted: 2,
      duplicates: 0,
      seqGaps: 0,
      seqDuplicates: 0,
    });
    expect(persisted).toEqual([["a", "b"]]);
    expect(durable).toEqual([["a", "b"]]);
    // Now they are remembered.
    expect(await actor.ingest(s1(["a", 1]))).toMatchObject({ accepted: 0, duplicates: 1 });
  });

  it("a failed batch does not block the session's next batch", async () => {
    const order: string[] = [];
    const actor = new SessionActor({
      dedupWindow: 100,
      persist: async (events) => {
        order.push(events[0].event_id);
        if (events[0].event_id === "bad") throw new Error("x");
      },
    });
    const bad = actor.ingest(s1("bad"));
    const good = actor.ingest(s1("good"));
    await expect(bad).rejects.toThrow("x");
    await expect(good).resolves.toMatchObject({ accepted: 1 });
    expect(order).toEqual(["bad", "good"]);
  });

  it("one failing session rejects the request while other sessions still persist", async () => {
    const persisted: string[] = [];
    const actor = new SessionActor({
      dedupWindow: 100,
      persist: async (events) => {
        if (events[0].session_id === "bad") throw new Error("bad session");
        persisted.push(...ids(events));
      },
    });
    await expect(
      actor.ingest(req("t", ["ok", [ev("t", "ok", "1")]], ["bad", [ev("t", "bad", "2")]])),
    ).rejects.toThrow("bad session");
    await actor.drain();
    expect(persisted).toEqual(["1"]);
  });
});

describe("SessionActor seq tracking", () => {
  it.each([
    { name: "contiguous", batches: [[0, 1, 2], [3, 4]], gaps: 0, dups: 0 },
    { name: "first seq is never a gap", batches: [[7]], gaps: 0, dups: 0 },
    { name: "one gap across batches", batches: [[1, 2, 3], [5]], gaps: 1, dups: 0 },
    { name: "gap inside a batch", batches: [[1, 4, 5, 9]], gaps: 2, dups: 0 },
    { name: "repeat inside a batch", batches: [[1, 1, 2]], gaps: 0, dups: 1 },
    { name: "repeat across batches", batches: [[1, 2], [2]], gaps: 0, dups: 1 },
    { name: "going backwards is a duplicate", batches: [[5], [3], [6]], gaps: 0, dups: 1 },
    { name: "gap then duplicate", batches: [[1, 3, 3, 2, 4]], gaps: 1, dups: 2 },
    { name: "null seq is ignored", batches: [[1, null, 2, null, 3]], gaps: 0, dups: 0 },
  ])("$name", async ({ batches, gaps, dups }) => {
    const { actor } = recordingActor();
    let id = 0;
    let seqGaps = 0;
    let seqDuplicates = 0;
    let accepted = 0;
    for (const b of batches) {
      const stats = await actor.ingest(s1(...b.map((seq): [string, number | null] => [`e${id++}`, seq])));
      seqGaps += stats.seqGaps;
      seqDuplicates += stats.seqDuplicates;
      accepted += stats.accepted;
    }
    expect({ seqGaps, seqDuplicates }).toEqual({ seqGaps: gaps, seqDuplicates: dups });
    // Seq anomalies are counted, never dropped.
    expect(accepted).toBe(batches.flat().length);
  });

  it("tracks seq per session and per tenant", async () => {
    const { actor } = recordingActor();
    await actor.ingest(req("A", ["s1", [ev("A", "s1", "a1", 1)]]));
    await actor.ingest(req("A", ["s2", [ev("A", "s2", "a2", 5)]]));
    await actor.ingest(req("B", ["s1", [ev("B", "s1", "b1", 9)]]));
    // Continues each one: no gaps, no duplicates.
    const stats = await actor.ingest(req("A", ["s1", [ev("A", "s1", "a3", 2)]], ["s2", [ev("A", "s2", "a4", 6)]]));
    expect(stats).toEqual({ accepted: 2, duplicates: 0, seqGaps: 0, seqDuplicates: 0 });
    expect(await actor.ingest(req("B", ["s1", [ev("B", "s1", "b2", 10)]]))).toMatchObject({ seqGaps: 0 });
  });

  it("an event-id duplicate does not count as a seq duplicate", async () => {
    const { actor } = recordingActor();
    await actor.ingest(s1(["a", 1]));
    expect(await actor.ingest(s1(["a", 1]))).toEqual({ accepted: 0, duplicates: 1, seqGaps: 0, seqDuplicates: 0 });
  });
});

describe("SessionActor onDurable", () => {
  it("is called after persist resolves, in session order, with the fresh events only", async () => {
    const log: string[] = [];
    const gates: Deferred[] = [];
    const actor = new SessionActor({
      dedupWindow: 100,
      persist: (events) => {
        log.push(`persist ${ids(events).join(",")}`);
        const g = deferred();
        gates.push(g);
        return g.promise;
      },
      onDurable: (events) => log.push(`durable ${ids(events).join(",")}`),
    });
    const p1 = actor.ingest(s1("a", "a", "b"));
    const p2 = actor.ingest(s1("b", "c"));
    await flush();
    expect(log).toEqual(["persist a,b"]);
    gates[0].resolve();
    await flush();
    expect(log).toEqual(["persist a,b", "durable a,b", "persist c"]);
    gates[1].resolve();
    await Promise.all([p1, p2]);
    expect(log).toEqual(["persist a,b", "durable a,b", "persist c", "durable c"]);
  });

  it("is called before ingest resolves", async () => {
    const durable: string[][] = [];
    const actor = new SessionActor({
      dedupWindow: 100,
      persist: async () => undefined,
      onDurable: (events) => durable.push(ids(events)),
    });
    await actor.ingest(s1("x"));
    expect(durable).toEqual([["x"]]);
  });

  it("is not called for a batch that was only duplicates, nor for a failed one", async () => {
    let fail = false;
    const durable: string[][] = [];
    const actor = new SessionActor({
      dedupWindow: 100,
      persist: async () => {
        if (fail) throw new Error("f");
      },
      onDurable: (events) => durable.push(ids(events)),
    });
    await actor.ingest(s1("a"));
    await actor.ingest(s1("a"));
    fail = true;
    await expect(actor.ingest(s1("b"))).rejects.toThrow("f");
    expect(durable).toEqual([["a"]]);
  });
});

describe("SessionActor drain", () => {
  it("waits for queued turns, then rejects new ingests", async () => {
    const gate = deferred();
    const persisted: string[] = [];
    const actor = new SessionActor({
      dedupWindow: 100,
      persist: async (events) => {
        await gate.promise;
        persisted.push(...ids(events));
      },
    });
    const p1 = actor.ingest(s1("a"));
    const p2 = actor.ingest(s1("b"));
    let drained = false;
    const d = actor.drain().then(() => (drained = true));
    await flush();
    expect(drained).toBe(false);
    await expect(actor.ingest(s1("c"))).rejects.toThrow("session actor is draining");
    gate.resolve();
    await d;
    expect(drained).toBe(true);
    await expect(Promise.all([p1, p2])).resolves.toHaveLength(2);
    expect(persisted).toEqual(["a", "b"]);
    expect(actor.activeMailboxes).toBe(0);
    await expect(actor.ingest(s1("d"))).rejects.toThrow("session actor is draining");
    expect(persisted).toEqual(["a", "b"]);
  });

  it("drain() with nothing queued resolves at once", async () => {
    const { actor } = recordingActor();
    await expect(actor.drain()).resolves.toBeUndefined();
    await expect(actor.ingest(s1("x"))).rejects.toThrow("draining");
  });
});

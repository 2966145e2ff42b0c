import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Batcher, type BatcherOptions } from "../../actors/storage-writer/batcher";
import { deferred, track, type Deferred } from "../support/deferred";

/** A commit function that records what it was given and waits until the test opens its gate. */
function gatedCommit() {
  const gates: Deferred[] = [];
  const started: number[][] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const commit = async (items: number[]): Promise<void> => {
    started.push([...items]);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const gate = deferred();
    gates.push(gate);
    try {
      await gate.promise;
    } finally {
      inFlight--;
    }
  };
  return { commit, gates, started, maxInFlight: () => maxInFlight };
}


/** Runs queued microtasks without moving the fake clock. */
async function settle(): Promise<void> {
  await vi.advanceTimersByTimeAsync(0);
}

/** Tracks a promise's outcome without leaving a rejection unhandled. */

type Info = { items: number; durationMs: number; error?: unknown };

function harness(opts: Partial<BatcherOptions<number>> & { maxItems: number; maxWaitMs: number }) {
  const commits: number[][] = [];
  const infos: Info[] = [];
  const batcher = new Batcher<number>({
    commit: async (items) => {
      commits.push([...items]);
    },
    onCommitted: (info) => infos.push(info),
    ...opts,
  });
  return { batcher, commits, infos };
}

describe("Batcher", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it.each([
    // [maxItems, adds, expected commits (all closed by size, none left open)]
    [3, [[1], [2], [3]], [[1, 2, 3]]],
    [3, [[1, 2], [3]], [[1, 2, 3]]],
    [2, [[1], [2], [3], [4]], [[1, 2], [3, 4]]],
    [1, [[1], [2], [3]], [[1], [2], [3]]],
    [4, [[1, 2, 3, 4]], [[1, 2, 3, 4]]],
  ])("closes at maxItems=%i: adds %j → commits %j without waiting", async (maxItems, adds, expected) => {
    const { batcher, commits } = harness({ maxItems, maxWaitMs: 10_000 });
    const results = adds.map((a) => track(batcher.add(a)));
    await settle();
    expect(commits).toEqual(expected);
    expect(results.map((r) => r.state)).toEqual(adds.map(() => "fulfilled"));
    expect(batcher.pending).toBe(0);
  });

  it("closes at maxWaitMs after the batch's first item, not after the last", async () => {
    const { batcher, commits } = harness({ maxItems: 100, maxWaitMs: 1_000 });
    const a = track(batcher.add([1]));
    await vi.advanceTimersByTimeAsync(600);
    const b = track(batcher.add([2]));
    await vi.advanceTimersByTimeAsync(399);
    expect(commits).toEqual([]);
    expect(a.state).toBe("pending");
    await vi.advanceTimersByTimeAsync(1);
    expect(commits).toEqual([[1, 2]]);
    expect(a.state).toBe("fulfilled");
    expect(b.state).toBe("fulfilled");
  });

  it("the wait timer of a batch closed by size does not close the next batch early", async () => {
    const { batcher, commits } = harness({ maxItems: 2, maxWaitMs: 100 });
    void batcher.add([1, 2]); // closes at once
    await vi.advanceTimersByTimeAsync(90);
    const c = track(batcher.add([3]));
    await vi.advanceTimersByTimeAsync(20); // t=110: past the first batch's timer
    expect(commits).toEqual([[1, 2]]);
    expect(c.state).toBe("pending");
    await vi.advanceTimersByTimeAsync(80); // t=190 = 90 + 100
    expect(commits).toEqual([[1, 2], [3]]);
    expect(c.state).toBe("fulfilled");
  });

  it("with maxWaitMs 0 a batch closes on the next timer tick", async () => {
    const { batcher, commits } = harness({ maxItems: 100, maxWaitMs: 0 });
    void batcher.add([1]);
    void batcher.add([2]);
    expect(commits).toEqual([]);
    await vi.advanceTimersByTimeAsync(0);
    expect(commits).toEqual([[1, 2]]);
  });

  it("a single add() larger than maxItems stays together in one batch", async () => {
    const { batcher, commits } = harness({ maxItems: 3, maxWaitMs: 10_000 });
    const r = track(batcher.add([1, 2, 3, 4, 5, 6, 7]));
    await settle();
    expect(commits).toEqual([[1, 2, 3, 4, 5, 6, 7]]);
    expect(r.state).toBe("fulfilled");
  });

  it("an oversized add() after a partly filled batch closes that batch first, then commits alone", async () => {
    const { batcher, commits } = harness({ maxItems: 3, maxWaitMs: 10_000 });
    const a = track(batcher.add([1]));
    const b = track(batcher.add([2, 3, 4, 5, 6]));
    await settle();
    expect(commits).toEqual([[1], [2, 3, 4, 5, 6]]);
    expect([a.state, b.state]).toEqual(["fulfilled", "fulfilled"]);
  });

  it("adds that would overflow start a new batch (a call's items are never split)", async () => {
    const { batcher, commits } = harness({ maxItems: 4, maxWaitMs: 1_000 });
    const a = track(batcher.add([1, 2]));
    const b = track(batcher.add([3, 4, 5])); // 2 + 3 > 4 → [1,2] closes, [3,4,5] opens
    await settle();
    expect(commits).toEqual([[1, 2]]);
    expect(a.state).toBe("fulfilled");
    expect(b.state).toBe("pending");
    const c = track(batcher.add([6])); // 3 + 1 = 4 → closes by size
    await settle();
    expect(commits).toEqual([[1, 2], [3, 4, 5, 6]]);
    expect([b.state, c.state]).toEqual(["fulfilled", "fulfilled"]);
  });

  it("add([]) resolves at once and commits nothing", async () => {
    const { batcher, commits } = harness({ maxItems: 2, maxWaitMs: 10 });
    await expect(batcher.add([])).resolves.toBeUndefined();
    await vi.advanceTimersByTimeAsync(100);
    expect(commits).toEqual([]);
    expect(batcher.pending).toBe(0);
  });

  it("commits one at a time, in order: the second commit does not start before the first resolves", async () => {
    const { commit, gates, started, maxInFlight: peak } = gatedCommit();
    const batcher = new Batcher<number>({ maxItems: 2, maxWaitMs: 10_000, commit });
    const a = track(batcher.add([1, 2]));
    const b = track(batcher.add([3, 4]));
    const c = track(batcher.add([5, 6]));
    await settle();
    expect(started).toEqual([[1, 2]]);
    expect(batcher.pending).toBe(6);

    gates[0].resolve();
    await settle();
    expect(a.state).toBe("fulfilled");
    expect(b.state).toBe("pending");
    expect(started).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(batcher.pending).toBe(4);

    gates[1].resolve();
    await settle();
    expect(b.state).toBe("fulfilled");
    expect(started).toEqual([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    gates[2].resolve();
    await settle();
    expect(c.state).toBe("fulfilled");
    expect(peak()).toBe(1);
    expect(batcher.pending).toBe(0);
  });

  it("a failed commit rejects exactly that batch's add() promises; later batches still commit", async () => {
    const boom = new Error("disk full");
    const committed: number[][] = [];
    let call = 0;
    const infos: Info[] = [];
    const batcher = new Batcher<number>({
      maxItems: 3,
      maxWaitMs: 10_000,
      commit: async (items) => {
        call++;
        if (call === 2) throw boom;
        committed.push([...items]);
      },
      onCommitted: (info) => infos.push(info),
    });
    const results = [
      track(batcher.add([1, 2, 3])), // batch 1
      track(batcher.add([4])), // batch 2 (fails)
      track(batcher.add([5, 6])), // batch 2 (fails)
      track(batcher.add([7, 8, 9])), // batch 3
      track(batcher.add([10])), // batch 4 (open until flush)
    ];
    await batcher.flush();
    await settle();
    expect(results.map((r) => r.state)).toEqual(["fulfilled", "rejected", "rejected", "fulfilled", "fulfilled"]);
    expect(results[1].error).toBe(boom);
    expect(results[2].error).toBe(boom);
    expect(committed).toEqual([[1, 2, 3], [7, 8, 9], [10]]);
    expect(infos.map((i) => [i.items, i.error])).toEqual([
      [3, undefined],
      [3, boom],
      [3, undefined],
      [1, undefined],
    ]);
    expect(batcher.pending).toBe(0);
  });

  it("a commit that throws synchronously is treated like a rejected one", async () => {
    const boom = new Error("sync");
    let call = 0;
    const committed: number[][] = [];
    const batcher = new Batcher<number>({
      maxItems: 1,
      maxWaitMs: 10_000,
      commit: (items) => {
        call++;
        if (call === 1) throw boom;
        committed.push([...items]);
        return Promise.resolve();
      },
    });
    const a = track(batcher.add([1]));
    const b = track(batcher.add([2]));
    await settle();
    expect(a.state).toBe("rejected");
    expect(a.error).toBe(boom);
    expect(b.state).toBe("fulfilled");
    expect(committed).toEqual([[2]]);
  });

  it("flush() commits the open batch without waiting for maxWaitMs", async () => {
    const { batcher, commits } = harness({ maxItems: 100, maxWaitMs: 60_000 });
    const a = track(batcher.add([1, 2]));
    const b = track(batcher.add([3]));
    await batcher.flush();
    expect(commits).toEqual([[1, 2, 3]]);
    await settle();
    expect([a.state, b.state]).toEqual(["fulfilled", "fulfilled"]);
    // The cancelled timer fires nothing later.
    await vi.advanceTimersByTimeAsync(120_000);
    expect(commits).toEqual([[1, 2, 3]]);
  });

  it("flush() waits for batches already committing, and resolves with nothing open", async () => {
    const gate = deferred();
    const commits: number[][] = [];
    const batcher = new Batcher<number>({
      maxItems: 2,
      maxWaitMs: 60_000,
      commit: async (items) => {
        commits.push([...items]);
        if (items[0] === 1) await gate.promise;
      },
    });
    void batcher.add([1, 2]);
    void batcher.add([3]);
    let flushed = false;
    const f = batcher.flush().then(() => (flushed = true));
    await settle();
    expect(flushed).toBe(false);
    expect(commits).toEqual([[1, 2]]);
    gate.resolve();
    await f;
    expect(commits).toEqual([[1, 2], [3]]);
    await expect(batcher.flush()).resolves.toBeUndefined();
    expect(commits).toEqual([[1, 2], [3]]);
  });

  it("flush() resolves (does not reject) when the flushed batch fails; the add() rejects", async () => {
    const boom = new Error("nope");
    const batcher = new Batcher<number>({
      maxItems: 10,
      maxWaitMs: 60_000,
      commit: () => Promise.reject(boom),
    });
    const a = track(batcher.add([1]));
    await expect(batcher.flush()).resolves.toBeUndefined();
    await settle();
    expect(a.state).toBe("rejected");
    expect(a.error).toBe(boom);
    expect(batcher.pending).toBe(0);
  });

  it("`pending` counts items in the open batch and in batches waiting to commit", async () => {
    const gates: Deferred[] = [];
    const batcher = new Batcher<number>({
      maxItems: 3,
      maxWaitMs: 1_000,
      commit: () => {
        const g = deferred();
        gates.push(g);
        return g.promise;
      },
    });
    expect(batcher.pending).toBe(0);
    void batcher.add([1]);
    expect(batcher.pending).toBe(1);
    void batcher.add([2, 3]); // closes [1,2,3]
    expect(batcher.pending).toBe(3);
    const last = batcher.add([4, 5]).catch((e: unknown) => e);
    expect(batcher.pending).toBe(5);
    await vi.advanceTimersByTimeAsync(1_000); // closes [4,5]
    expect(batcher.pending).toBe(5);
    gates[0].resolve();
    await settle();
    expect(batcher.pending).toBe(2);
    gates[1].reject(new Error("x"));
    await settle();
    // Failed items are no longer pending either: the caller got the rejection.
    expect(batcher.pending).toBe(0);
    expect(await last).toMatchObject({ message: "x" });
  });

  it("onCommitted receives item counts and a duration, and the error of a failed commit", async () => {
    const boom = new Error("fail");
    const infos: Info[] = [];
    let n = 0;
    const batcher = new Batcher<number>({
      maxItems: 2,
      maxWaitMs: 1_000,
      commit: async () => {
        n++;
        if (n === 2) throw boom;
      },
      onCommitted: (info) => infos.push(info),
    });
    void batcher.add([1, 2]);
    void batcher.add([3, 4]).catch(() => undefined);
    void batcher.add([5]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(infos).toHaveLength(3);
    expect(infos.map((i) => i.items)).toEqual([2, 2, 1]);
    expect(infos.map((i) => "error" in i)).toEqual([false, true, false]);
    expect(infos[1].error).toBe(boom);
    for (const i of infos) {
      expect(typeof i.durationMs).toBe("number");
      expect(i.durationMs).toBeGreaterThanOrEqual(0);
    }
  });
});

describe("Batcher (real timers)", () => {
  it("onCommitted's durationMs measures the commit", async () => {
    const infos: Info[] = [];
    const batcher = new Batcher<number>({
      maxItems: 1,
      maxWaitMs: 1_000,
      commit: () => new Promise((r) => setTimeout(r, 40)),
      onCommitted: (info) => infos.push(info),
    });
    await batcher.add([1]);
    expect(infos).toHaveLength(1);
    expect(infos[0].items).toBe(1);
    expect(infos[0].durationMs).toBeGreaterThanOrEqual(35);
    expect(infos[0].durationMs).toBeLessThan(2_000);
  });

  it("spaces commits by minIntervalMs on the default clock", async () => {
    const starts: number[] = [];
    const batcher = new Batcher<number>({
      maxItems: 100,
      maxWaitMs: 0,
      maxConcurrentCommits: 2,
      minIntervalMs: 30,
      commit: async () => {
        starts.push(performance.now());
      },
    });
    await batcher.add([1]);
    await batcher.add([2]);
    await batcher.add([3]);
    expect(starts).toHaveLength(3);
    expect(starts[1]! - starts[0]!).toBeGreaterThanOrEqual(29);
    expect(starts[2]! - starts[1]!).toBeGreaterThanOrEqual(29);
  });

  it("closes at maxWaitMs with real timers too", async () => {
    const commits: number[][] = [];
    const batcher = new Batcher<number>({
      maxItems: 1_000,
      maxWaitMs: 30,
      commit: async (items) => {
        commits.push([...items]);
      },
    });
    const started = Date.now();
    await Promise.all([batcher.add([1]), batcher.add([2])]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
    expect(commits).toEqual([[1, 2]]);
  });
});

describe("Batcher group commit", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function gated(maxItems: number, maxWaitMs = 10_000) {
    const { commit, gates, started, maxInFlight } = gatedCommit();
    const infos: Info[] = [];
    const batcher = new Batcher<number>({ maxItems, maxWaitMs, commit, onCommitted: (info) => infos.push(info) });
    return { batcher, gates, started, infos, maxInFlight };
  }

  it("batches that closed while a commit ran are joined into the next commit, in order", async () => {
    const { batcher, gates, started, infos, maxInFlight } = gated(2);
    const a = track(batcher.add([1, 2]));
    const b = track(batcher.add([3, 4]));
    const c = track(batcher.add([5]));
    const d = track(batcher.add([6]));
    await settle();
    expect(started).toEqual([[1, 2]]);
    expect(batcher.pending).toBe(6);
    gates[0]!.resolve();
    await settle();
    expect(a.state).toBe("fulfilled");
    // [3,4] and [5,6] closed behind the first commit; joined they would exceed maxItems=2.
    expect(started).toEqual([[1, 2], [3, 4]]);
    gates[1]!.resolve();
    await settle();
    expect(b.state).toBe("fulfilled");
    expect(started).toEqual([[1, 2], [3, 4], [5, 6]]);
    gates[2]!.resolve();
    await settle();
    expect([c.state, d.state]).toEqual(["fulfilled", "fulfilled"]);
    expect(maxInFlight()).toBe(1);
    expect(infos.map((i) => i.items)).toEqual([2, 2, 2]);
    expect(batcher.pending).toBe(0);
  });

  it("joins every batch closed by maxWaitMs during a slow commit, up to maxItems", async () => {
    const { batcher, gates, started } = gated(100, 10);
    const first = track(batcher.add([1]));
    await vi.advanceTimersByTimeAsync(10); // closes [1]; its commit hangs
    expect(started).toEqual([[1]]);
    const later: Array<ReturnType<typeof track>> = [];
    for (let i = 2; i <= 5; i++) {
      later.push(track(batcher.add([i])));
      await vi.advanceTimersByTimeAsync(10); // each closes on its own timer
    }
    expect(started).toEqual([[1]]);
    gates[0]!.resolve();
    await settle();
    expect(first.state).toBe("fulfilled");
    expect(started).toEqual([[1], [2, 3, 4, 5]]);
    expect(later.map((t) => t.state)).toEqual(["pending", "pending", "pending", "pending"]);
    gates[1]!.resolve();
    await settle();
    expect(later.map((t) => t.state)).toEqual(["fulfilled", "fulfilled", "fulfilled", "fulfilled"]);
  });

  it("a failed joined commit rejects every add() it carried, and only those", async () => {
    const { batcher, gates, started } = gated(100, 10);
    const a = track(batcher.add([1]));
    await vi.advanceTimersByTimeAsync(10);
    const b = track(batcher.add([2]));
    await vi.advanceTimersByTimeAsync(10);
    const c = track(batcher.add([3]));
    await vi.advanceTimersByTimeAsync(10);
    gates[0]!.resolve();
    await settle();
    expect(started).toEqual([[1], [2, 3]]);
    const boom = new Error("part rejected");
    gates[1]!.reject(boom);
    await settle();
    expect(a.state).toBe("fulfilled");
    expect([b.state, c.state]).toEqual(["rejected", "rejected"]);
    expect(b.error).toBe(boom);
    const d = track(batcher.add([4]));
    await vi.advanceTimersByTimeAsync(10);
    gates[2]!.resolve();
    await settle();
    expect(d.state).toBe("fulfilled");
    expect(started).toEqual([[1], [2, 3], [4]]);
    expect(batcher.pending).toBe(0);
  });

  it("flush() waits for the joined commits and for the open batch", async () => {
    const { batcher, gates, started } = gated(100, 10);
    void batcher.add([1]);
    await vi.advanceTimersByTimeAsync(10);
    void batcher.add([2]);
    let flushed = false;
    const f = batcher.flush().then(() => (flushed = true));
    await settle();
    expect(started).toEqual([[1]]);
    gates[0]!.resolve();
    await settle();
    expect(started).toEqual([[1], [2]]);
    expect(flushed).toBe(false);
    gates[1]!.resolve();
    await f;
    expect(flushed).toBe(true);
  });
});

describe("Batcher with maxConcurrentCommits", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("runs up to maxConcurrentCommits commits at once and joins only while every slot is busy", async () => {
    const { commit, gates, started, maxInFlight: peak } = gatedCommit();
    const batcher = new Batcher<number>({ maxItems: 100, maxWaitMs: 10, maxConcurrentCommits: 2, commit });
    const results = [1, 2, 3, 4].map(() => undefined as unknown as ReturnType<typeof track>);
    results[0] = track(batcher.add([1]));
    await vi.advanceTimersByTimeAsync(10);
    results[1] = track(batcher.add([2]));
    await vi.advanceTimersByTimeAsync(10);
    expect(started).toEqual([[1], [2]]); // two slots: no waiting for the first
    results[2] = track(batcher.add([3]));
    await vi.advanceTimersByTimeAsync(10);
    results[3] = track(batcher.add([4]));
    await vi.advanceTimersByTimeAsync(10);
    expect(started).toEqual([[1], [2]]);
    gates[1]!.resolve(); // the second finishes first: its add resolves, the queue takes its slot
    await settle();
    expect(results.map((r) => r.state)).toEqual(["pending", "fulfilled", "pending", "pending"]);
    expect(started).toEqual([[1], [2], [3, 4]]);
    gates[0]!.resolve();
    gates[2]!.resolve();
    let flushed = false;
    await batcher.flush().then(() => (flushed = true));
    expect(flushed).toBe(true);
    expect(results.map((r) => r.state)).toEqual(["fulfilled", "fulfilled", "fulfilled", "fulfilled"]);
    expect(peak()).toBe(2);
    expect(batcher.pending).toBe(0);
  });

  it("flush() waits for every running commit", async () => {
    const gates: Deferred[] = [];
    const batcher = new Batcher<number>({
      maxItems: 1,
      maxWaitMs: 10_000,
      maxConcurrentCommits: 2,
      commit: () => {
        const g = deferred();
        gates.push(g);
        return g.promise;
      },
    });
    void batcher.add([1]);
    void batcher.add([2]);
    let flushed = false;
    const f = batcher.flush().then(() => (flushed = true));
    await settle();
    expect(gates).toHaveLength(2);
    gates[0]!.resolve();
    await settle();
    expect(flushed).toBe(false);
    gates[1]!.resolve();
    await f;
    expect(flushed).toBe(true);
  });
});

describe("Batcher with minIntervalMs", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("starts commits at least minIntervalMs apart; batches closing meanwhile join the next commit", async () => {
    const { commit, gates, started } = gatedCommit();
    const batcher = new Batcher<number>({ maxItems: 100, maxWaitMs: 0, maxConcurrentCommits: 2, minIntervalMs: 10, commit, now: () => Date.now() });
    const first = track(batcher.add([1]));
    await vi.advanceTimersByTimeAsync(1);
    expect(started).toEqual([[1]]); // nothing to wait for: a free slot and no recent start
    const second = track(batcher.add([2]));
    await vi.advanceTimersByTimeAsync(3);
    const third = track(batcher.add([3]));
    await vi.advanceTimersByTimeAsync(3);
    expect(started).toEqual([[1]]); // a slot is free, but the last start was 7 ms ago
    await vi.advanceTimersByTimeAsync(3);
    expect(started).toEqual([[1], [2, 3]]); // 10 ms after the first start, both queued batches in one
    gates[0]!.resolve();
    gates[1]!.resolve();
    await settle();
    expect([first.state, second.state, third.state]).toEqual(["fulfilled", "fulfilled", "fulfilled"]);
  });

  it("a steady trickle makes at most one commit per minIntervalMs", async () => {
    const { batcher, commits } = harness({ maxItems: 1000, maxWaitMs: 0, maxConcurrentCommits: 2, minIntervalMs: 10, now: () => Date.now() });
    const adds: Array<ReturnType<typeof track>> = [];
    for (let i = 0; i < 50; i++) {
      adds.push(track(batcher.add([i])));
      await vi.advanceTimersByTimeAsync(2); // 500 adds/s
    }
    await batcher.flush();
    expect(commits.length).toBeGreaterThanOrEqual(9);
    expect(commits.length).toBeLessThanOrEqual(11); // 100 ms of adds: 10 commits, not 50
    expect(commits.flat()).toEqual(Array.from({ length: 50 }, (_, i) => i)); // in order, none lost
    expect(adds.every((a) => a.state === "fulfilled")).toBe(true);
  });

  it("flush() waits for batches held back by the spacing", async () => {
    const { batcher, commits } = harness({ maxItems: 100, maxWaitMs: 0, minIntervalMs: 50, now: () => Date.now() });
    void batcher.add([1]);
    await settle();
    await vi.advanceTimersByTimeAsync(1);
    void batcher.add([2]);
    let flushed = false;
    const f = batcher.flush().then(() => (flushed = true));
    await vi.advanceTimersByTimeAsync(20);
    expect(commits).toEqual([[1]]);
    expect(flushed).toBe(false);
    await vi.advanceTimersByTimeAsync(40);
    await f;
    expect(commits).toEqual([[1], [2]]);
  });
});

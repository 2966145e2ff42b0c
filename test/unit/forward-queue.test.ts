import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ForwardQueue, type ForwardQueueOptions } from "../../actors/forwarder/forward-queue";
import { deferred, type Deferred } from "../support/deferred";


const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

type Drop = [number, "queue_full" | "attempts_exhausted"];

/** A queue whose deliver() calls each wait on a gate the test opens or fails. */
function gated(opts: Partial<ForwardQueueOptions<number>> & { maxBatch: number; maxQueued: number }) {
  const calls: Array<{ items: number[]; gate: Deferred }> = [];
  const delivered: number[][] = [];
  const drops: Drop[] = [];
  const deliveredCounts: number[] = [];
  const failures: number[] = [];
  const queue = new ForwardQueue<number>({
    deliver: (items) => {
      const gate = deferred();
      calls.push({ items: [...items], gate });
      return gate.promise.then(() => {
        delivered.push([...items]);
      });
    },
    onDrop: (count, reason) => drops.push([count, reason]),
    onDelivered: (count) => deliveredCounts.push(count),
    onFailure: (_error, attempt) => failures.push(attempt),
    random: () => 1,
    baseBackoffMs: 10,
    maxBackoffMs: 40,
    ...opts,
  });
  return { queue, calls, delivered, drops, deliveredCounts, failures };
}

describe("ForwardQueue", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it.each([
    { maxBatch: 3, items: range(1, 8), batches: [[1, 2, 3], [4, 5, 6], [7, 8]] },
    { maxBatch: 1, items: [1, 2, 3], batches: [[1], [2], [3]] },
    { maxBatch: 10, items: range(1, 4), batches: [[1, 2, 3, 4]] },
    { maxBatch: 4, items: range(1, 8), batches: [range(1, 4), range(5, 8)] },
  ])("delivers in FIFO order in batches of maxBatch=$maxBatch", async ({ maxBatch, items, batches }) => {
    const delivered: number[][] = [];
    const counts: number[] = [];
    const queue = new ForwardQueue<number>({
      deliver: async (b) => {
        delivered.push([...b]);
      },
      maxBatch,
      maxQueued: 1_000,
      onDelivered: (n) => counts.push(n),
    });
    queue.push(items);
    await queue.idle();
    expect(delivered).toEqual(batches);
    expect(counts).toEqual(batches.map((b) => b.length));
    expect(queue.size).toBe(0);
  });

  it("delivers one batch at a time; items pushed during a delivery follow in order", async () => {
    const h = gated({ maxBatch: 2, maxQueued: 100 });
    h.queue.push([1, 2, 3]);
    // The first batch is handed over synchronously.
    expect(h.calls.map((c) => c.items)).toEqual([[1, 2]]);
    h.queue.push([4]);
    h.queue.push([5, 6]);
    await vi.advanceTimersByTimeAsync(0);
    expect(h.calls).toHaveLength(1);
    expect(h.queue.size).toBe(6);
    h.calls[0].gate.resolve();
    await vi.advanceTimersByTimeAsync(0);
    expect(h.calls.map((c) => c.items)).toEqual([
      [1, 2],
      [3, 4],
    ]);
    h.calls[1].gate.resolve();
    await vi.advanceTimersByTimeAsync(0);
    h.calls[2].gate.resolve();
    await h.queue.idle();
    expect(h.delivered).toEqual([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    expect(h.drops).toEqual([]);
  });

  it("retries a failing batch with capped exponential backoff (random = 1) and keeps order after recovery", async () => {
    const attempts: Array<{ at: number; items: number[] }> = [];
    const start = Date.now();
    let failuresLeft = 5;
    const delivered: number[] = [];
    const failures: number[] = [];
    const queue = new ForwardQueue<number>({
      deliver: async (items) => {
        attempts.push({ at: Date.now() - start, items: [...items] });
        if (failuresLeft > 0) {
          failuresLeft--;
          throw new Error("target down");
        }
        delivered.push(...items);
      },
      maxBatch: 2,
      maxQueued: 100,
      baseBackoffMs: 10,
      maxBackoffMs: 35,
      random: () => 1,
      onFailure: (_e, attempt) => failures.push(attempt),
    });
    queue.push([1, 2, 3]);
    // Pushed while the first batch keeps failing.
    await vi.advanceTimersByTimeAsync(15);
    queue.push([4, 5]);
    await vi.advanceTimersByTimeAsync(1_000);
    await queue.idle();
    // Backoffs: 10, 20, 35 (cap, not 40), 35, 35 → attempts at 0, 10, 30, 65, 100, 135.
    expect(attempts.map((a) => a.at)).toEqual([0, 10, 30, 65, 100, 135, 135, 135]);
    expect(attempts.slice(0, 6).every((a) => a.items.join() === "1,2")).toBe(true);
    expect(attempts.slice(6).map((a) => a.items)).toEqual([
      [3, 4],
      [5],
    ]);
    expect(failures).toEqual([1, 2, 3, 4, 5]);
    expect(delivered).toEqual([1, 2, 3, 4, 5]);
  });

  it("uses full jitter: the wait is random() × the capped backoff", async () => {
    const attempts: number[] = [];
    const start = Date.now();
    let fails = 3;
    const queue = new ForwardQueue<number>({
      deliver: async () => {
        attempts.push(Date.now() - start);
        if (fails-- > 0) throw new Error("x");
      },
      maxBatch: 10,
      maxQueued: 10,
      baseBackoffMs: 100,
      maxBackoffMs: 1_000,
      random: () => 0.5,
    });
    queue.push([1]);
    await vi.advanceTimersByTimeAsync(10_000);
    await queue.idle();
    // 0.5 × 100, 0.5 × 200, 0.5 × 400
    expect(attempts).toEqual([0, 50, 150, 350]);
  });

  it("the backoff restarts at base for the next batch", async () => {
    const attempts: Array<[number, number]> = [];
    const start = Date.now();
    const failOnce = new Set([1, 3]);
    const queue = new ForwardQueue<number>({
      deliver: async (items) => {
        attempts.push([items[0], Date.now() - start]);
        if (failOnce.delete(items[0])) throw new Error("x");
      },
      maxBatch: 2,
      maxQueued: 10,
      baseBackoffMs: 10,
      maxBackoffMs: 1_000,
      random: () => 1,
    });
    queue.push([1, 2, 3, 4]);
    await vi.advanceTimersByTimeAsync(1_000);
    await queue.idle();
    expect(attempts).toEqual([
      [1, 0],
      [1, 10],
      [3, 10],
      [3, 20],
    ]);
  });

  it("overflow drops the oldest events that are not in flight and reports them as queue_full", async () => {
    const h = gated({ maxBatch: 2, maxQueued: 5 });
    h.queue.push([1, 2, 3]); // [1,2] in flight
    h.queue.push([4, 5, 6, 7]); // 7 queued, 2 too many: 3 and 4 go, 1 and 2 are in flight
    expect(h.drops).toEqual([[2, "queue_full"]]);
    expect(h.queue.size).toBe(5);
    h.queue.push([8]); // 5 goes
    expect(h.drops).toEqual([
      [2, "queue_full"],
      [1, "queue_full"],
    ]);
    h.calls[0].gate.resolve();
    await vi.advanceTimersByTimeAsync(0);
    h.calls[1].gate.resolve();
    await vi.advanceTimersByTimeAsync(0);
    h.calls[2].gate.resolve();
    await h.queue.idle();
    expect(h.delivered).toEqual([
      [1, 2],
      [6, 7],
      [8],
    ]);
  });

  it("overflow on an idle queue drops the oldest of the pushed events", async () => {
    const h = gated({ maxBatch: 10, maxQueued: 3 });
    h.queue.push([1, 2, 3, 4, 5]);
    expect(h.drops).toEqual([[2, "queue_full"]]);
    expect(h.calls.map((c) => c.items)).toEqual([[3, 4, 5]]);
    h.calls[0].gate.resolve();
    await h.queue.idle();
    expect(h.delivered).toEqual([[3, 4, 5]]);
  });

  it("overflow during a retry backoff keeps the in-flight batch and drops the next oldest", async () => {
    let fail = true;
    const delivered: number[][] = [];
    const drops: Drop[] = [];
    const queue = new ForwardQueue<number>({
      deliver: async (items) => {
        if (fail) throw new Error("down");
        delivered.push([...items]);
      },
      maxBatch: 2,
      maxQueued: 4,
      baseBackoffMs: 100,
      maxBackoffMs: 100,
      random: () => 1,
      onDrop: (n, r) => drops.push([n, r]),
    });
    queue.push([1, 2, 3, 4]);
    await vi.advanceTimersByTimeAsync(50); // sleeping before attempt 2
    queue.push([5, 6]); // 6 queued, 2 over: 3 and 4 go
    expect(drops).toEqual([[2, "queue_full"]]);
    fail = false;
    await vi.advanceTimersByTimeAsync(100);
    await queue.idle();
    expect(delivered).toEqual([
      [1, 2],
      [5, 6],
    ]);
  });

  it("drops a batch after maxAttempts with reason attempts_exhausted and goes on", async () => {
    const attempts: number[][] = [];
    const delivered: number[][] = [];
    const drops: Drop[] = [];
    const failures: number[] = [];
    const queue = new ForwardQueue<number>({
      deliver: async (items) => {
        attempts.push([...items]);
        if (items.includes(2)) throw new Error("poison");
        delivered.push([...items]);
      },
      maxBatch: 2,
      maxQueued: 100,
      maxAttempts: 3,
      baseBackoffMs: 5,
      maxBackoffMs: 5,
      random: () => 1,
      onDrop: (n, r) => drops.push([n, r]),
      onFailure: (_e, attempt) => failures.push(attempt),
    });
    queue.push([1, 2, 3, 4, 5]);
    await vi.advanceTimersByTimeAsync(100);
    await queue.idle();
    expect(attempts).toEqual([
      [1, 2],
      [1, 2],
      [1, 2],
      [3, 4],
      [5],
    ]);
    expect(failures).toEqual([1, 2, 3]);
    expect(drops).toEqual([[2, "attempts_exhausted"]]);
    expect(delivered).toEqual([[3, 4], [5]]);
    expect(queue.size).toBe(0);
  });

  it("maxAttempts 1 drops at the first failure without waiting", async () => {
    const drops: Drop[] = [];
    const delivered: number[][] = [];
    const queue = new ForwardQueue<number>({
      deliver: async (items) => {
        if (items[0] === 1) throw new Error("x");
        delivered.push([...items]);
      },
      maxBatch: 1,
      maxQueued: 10,
      maxAttempts: 1,
      baseBackoffMs: 60_000,
      onDrop: (n, r) => drops.push([n, r]),
    });
    queue.push([1, 2]);
    await vi.advanceTimersByTimeAsync(0);
    await queue.idle();
    expect(drops).toEqual([[1, "attempts_exhausted"]]);
    expect(delivered).toEqual([[2]]);
  });

  it("idle() resolves at once when empty, and when the queue drains", async () => {
    const h = gated({ maxBatch: 2, maxQueued: 10 });
    await expect(h.queue.idle()).resolves.toBeUndefined();
    h.queue.push([1, 2, 3]);
    let idle = false;
    const p = h.queue.idle().then(() => (idle = true));
    h.calls[0].gate.resolve();
    await vi.advanceTimersByTimeAsync(0);
    expect(idle).toBe(false);
    h.calls[1].gate.resolve();
    await p;
    expect(idle).toBe(true);
    expect(h.queue.size).toBe(0);
    // Reusable after going idle.
    h.queue.push([4]);
    h.calls[2].gate.resolve();
    await h.queue.idle();
    expect(h.delivered).toEqual([[1, 2], [3], [4]]);
  });

  it("stop() reports the queued rest as dropped and wakes a backoff sleep; idle() resolves", async () => {
    const drops: Drop[] = [];
    const attempts: number[][] = [];
    const queue = new ForwardQueue<number>({
      deliver: async (items) => {
        attempts.push([...items]);
        throw new Error("down");
      },
      maxBatch: 2,
      maxQueued: 100,
      baseBackoffMs: 60_000,
      maxBackoffMs: 60_000,
      random: () => 1,
      onDrop: (n, r) => drops.push([n, r]),
    });
    queue.push([1, 2, 3, 4, 5]);
    await vi.advanceTimersByTimeAsync(10); // sleeping 60 s before attempt 2
    const idle = queue.idle();
    queue.stop();
    // The queued rest at once; the in-flight batch when its retry loop wakes and sees the stop.
    expect(drops).toEqual([[3, "queue_full"]]);
    expect(queue.size).toBe(0);
    await idle; // without advancing the clock
    expect(drops).toEqual([
      [3, "queue_full"],
      [2, "queue_full"],
    ]);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(attempts).toEqual([[1, 2]]);
  });

  it("push after stop() is reported as dropped and never delivered", async () => {
    const h = gated({ maxBatch: 2, maxQueued: 10 });
    h.queue.stop();
    expect(h.drops).toEqual([]);
    h.queue.push([1, 2, 3]);
    expect(h.drops).toEqual([[3, "queue_full"]]);
    expect(h.calls).toEqual([]);
    expect(h.queue.size).toBe(0);
    await h.queue.idle();
  });

  // BUG (actors/forwarder/forward-queue.ts stop()/run()): stop() counts the in-flight batch as
  // dropped, and when that delivery then succeeds run() still calls onDelivered for it, so the
  // same events are reported both dropped and delivered.
  it("stop() during a delivery counts every event exactly once (delivered or dropped)", async () => {
    const h = gated({ maxBatch: 2, maxQueued: 10 });
    h.queue.push([1, 2, 3, 4, 5]); // [1,2] in flight
    h.queue.stop();
    h.calls[0].gate.resolve(); // the in-flight delivery succeeds after all
    await vi.advanceTimersByTimeAsync(0);
    await h.queue.idle();
    const dropped = h.drops.reduce((n, [c]) => n + c, 0);
    const delivered = h.deliveredCounts.reduce((n, c) => n + c, 0);
    expect(dropped + delivered).toBe(5);
    expect(h.calls).toHaveLength(1);
  });
});

describe("ForwardQueue (real timers)", () => {
  it("recovers from failures with real short backoffs and delivers everything in order", async () => {
    let calls = 0;
    const delivered: number[] = [];
    const queue = new ForwardQueue<number>({
      deliver: async (items) => {
        calls++;
        if (calls % 3 === 1) throw new Error("flaky");
        delivered.push(...items);
      },
      maxBatch: 4,
      maxQueued: 1_000,
      baseBackoffMs: 1,
      maxBackoffMs: 4,
      random: () => 1,
    });
    for (let i = 0; i < 50; i += 5) {
      queue.push(range(i, i + 4));
      await new Promise((r) => setTimeout(r, 1));
    }
    await queue.idle();
    expect(delivered).toEqual(range(0, 49));
  });
});

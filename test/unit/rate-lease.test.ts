import { describe, expect, it, vi } from "vitest";
import { TokenBucket, type BucketLimits } from "../../actors/rate-limiter/token-bucket";
import { LeaseCache, type AcquireLease, type LeaseGrant } from "../../nodes/edge/rate-lease";

const T0 = 1_700_000_000_000;

/** A LeaseCache whose acquire is a real TokenBucket per key, on a fake clock. */
function setup(limits: BucketLimits, chunk: number | ((key: string) => number), ttlMs = 1_000) {
  const clock = { now: T0 };
  const buckets = new Map<string, TokenBucket>();
  const acquire = vi.fn<AcquireLease>(async (key, wanted, min) => {
    let bucket = buckets.get(key);
    if (!bucket) {
      bucket = new TokenBucket(limits, clock.now);
      buckets.set(key, bucket);
    }
    return bucket.take(clock.now, wanted, min);
  });
  const cache = new LeaseCache(acquire, {
    chunk: typeof chunk === "number" ? () => chunk : chunk,
    ttlMs,
    now: () => clock.now,
  });
  const leases = () => (cache as unknown as { leases: Map<string, { tokens: number; expiresAt: number }> }).leases;
  return { clock, buckets, acquire, cache, leases };
}

describe("LeaseCache", () => {
  it("spends a lease locally without calls until it runs out", async () => {
    const { cache, acquire, buckets } = setup({ ratePerSec: 10, burst: 100 }, 20);
    expect(await cache.take("k", 1)).toEqual({ ok: true });
    expect(acquire).toHaveBeenCalledTimes(1);
    expect(acquire).toHaveBeenLastCalledWith("k", 21, 1);
    for (let i = 0; i < 20; i++) expect(await cache.take("k", 1)).toEqual({ ok: true });
    expect(acquire).toHaveBeenCalledTimes(1);
    // The 22nd request needs a new lease.
    expect(await cache.take("k", 1)).toEqual({ ok: true });
    expect(acquire).toHaveBeenCalledTimes(2);
    expect(buckets.get("k")!.available(T0)).toBe(100 - 42);
  });

  it.each([
    // [chunk, request sizes, acquire calls expected, (wanted, min) of each call]
    [10, [1, 1, 1], [[11, 1]]],
    [10, [5, 5, 1], [[15, 5]]],
    [10, [5, 5, 6], [[15, 5], [11, 1]]],
    [10, [5, 21], [[15, 5], [21, 11]]],
    // A request bigger than the lease asks only for what is missing (+ chunk), with that as min.
    [4, [1, 6], [[5, 1], [6, 2]]],
    [0, [1, 1, 1], [[1, 1], [1, 1], [1, 1]]],
  ])("chunk %i, requests %j → acquire calls %j", async (chunk, requests, calls) => {
    const { cache, acquire } = setup({ ratePerSec: 10, burst: 1_000 }, chunk);
    for (const n of requests) expect(await cache.take("k", n)).toEqual({ ok: true });
    expect(acquire.mock.calls.map(([, wanted, min]) => [wanted, min])).toEqual(calls);
  });

  it("asks the chunk function per key and keeps keys apart", async () => {
    const { cache, acquire } = setup({ ratePerSec: 10, burst: 1_000 }, (key) => (key === "big" ? 50 : 2));
    await cache.take("big", 1);
    await cache.take("small", 1);
    await cache.take("small", 1);
    await cache.take("small", 1);
    await cache.take("small", 1);
    expect(acquire.mock.calls).toEqual([
      ["big", 51, 1],
      ["small", 3, 1],
      ["small", 3, 1],
    ]);
  });

  it("a refusal returns the bucket's retryAfterMs and spends nothing", async () => {
    const { cache, acquire, buckets } = setup({ ratePerSec: 1, burst: 5 }, 10);
    // 11 wanted, 5 there: gets 5 (≥ min 1), keeps 4 after this request.
    expect(await cache.take("k", 1)).toEqual({ ok: true });
    for (let i = 0; i < 4; i++) expect(await cache.take("k", 1)).toEqual({ ok: true });
    expect(acquire).toHaveBeenCalledTimes(1);
    // Empty lease and empty bucket: 1 token at 1/s = 1000 ms.
    expect(await cache.take("k", 1)).toEqual({ ok: false, retryAfterMs: 1_000 });
    expect(acquire).toHaveBeenCalledTimes(2);
    // Refused again at once, without another limiter call (the refusal is cached for 50 ms),
    // and still told the bucket's own wait.
    expect(await cache.take("k", 3)).toEqual({ ok: false, retryAfterMs: 1_000 });
    expect(acquire).toHaveBeenCalledTimes(2);
    expect(buckets.get("k")!.available(T0)).toBe(0);
  });

  it("a refused larger request keeps the lease for smaller ones", async () => {
    const { cache, acquire, clock } = setup({ ratePerSec: 1, burst: 5 }, 2);
    expect(await cache.take("k", 1)).toEqual({ ok: true }); // gets 3, keeps 2; bucket 2
    // Needs 3 more (wanted 5, min 3), bucket has 2: refused, 1 token short at 1/s.
    expect(await cache.take("k", 5)).toEqual({ ok: false, retryAfterMs: 1_000 });
    expect(acquire).toHaveBeenLastCalledWith("k", 5, 3);
    expect(acquire).toHaveBeenCalledTimes(2);
    clock.now += 100;
    expect(await cache.take("k", 2)).toEqual({ ok: true });
    expect(acquire).toHaveBeenCalledTimes(2);
  });

  it("turns a zero retryAfterMs from the limiter into at least 1 ms", async () => {
    const acquire = vi.fn<AcquireLease>(async (): Promise<LeaseGrant> => ({ granted: 0, retryAfterMs: 0 }));
    const cache = new LeaseCache(acquire, { chunk: () => 5, ttlMs: 1_000 });
    expect(await cache.take("k", 1)).toEqual({ ok: false, retryAfterMs: 1 });
  });

  it("a grant below what the request needs is a refusal", async () => {
    const acquire = vi.fn<AcquireLease>(async (): Promise<LeaseGrant> => ({ granted: 2, retryAfterMs: 40 }));
    const cache = new LeaseCache(acquire, { chunk: () => 5, ttlMs: 1_000 });
    expect(await cache.take("k", 3)).toEqual({ ok: false, retryAfterMs: 40 });
  });

  it("leases expire after ttlMs: leftover tokens are not spent after that", async () => {
    const { cache, acquire, clock } = setup({ ratePerSec: 10, burst: 1_000 }, 20, 500);
    await cache.take("k", 1); // lease of 20, expires at T0 + 500
    clock.now = T0 + 499;
    await cache.take("k", 1);
    expect(acquire).toHaveBeenCalledTimes(1);
    clock.now = T0 + 500; // expired exactly at ttl
    await cache.take("k", 1);
    expect(acquire).toHaveBeenCalledTimes(2);
    // The new lease got a fresh ttl and a fresh balance (not 18 + 20).
    expect(acquire).toHaveBeenLastCalledWith("k", 21, 1);
    clock.now = T0 + 999;
    for (let i = 0; i < 20; i++) await cache.take("k", 1);
    expect(acquire).toHaveBeenCalledTimes(2);
    await cache.take("k", 1);
    expect(acquire).toHaveBeenCalledTimes(3);
  });

  it("sweep() removes expired leases only", async () => {
    const { cache, clock, leases } = setup({ ratePerSec: 10, burst: 1_000 }, 5, 1_000);
    await cache.take("a", 1);
    clock.now = T0 + 600;
    await cache.take("b", 1);
    expect([...leases().keys()].sort()).toEqual(["a", "b"]);
    cache.sweep();
    expect([...leases().keys()].sort()).toEqual(["a", "b"]);
    clock.now = T0 + 1_000; // a expires (T0 + 1000), b lives until T0 + 1600
    cache.sweep();
    expect([...leases().keys()]).toEqual(["b"]);
    clock.now = T0 + 1_600;
    cache.sweep();
    expect(leases().size).toBe(0);
  });

  it("concurrent takes on one key share one lease request (no herd draining the bucket)", async () => {
    const { cache, acquire } = setup({ ratePerSec: 10, burst: 1_000 }, 20);
    const results = await Promise.all(Array.from({ length: 5 }, () => cache.take("k", 1)));
    expect(results).toEqual(Array.from({ length: 5 }, () => ({ ok: true })));
    expect(acquire).toHaveBeenCalledTimes(1);
    // 21 granted (1 needed + a chunk of 20), 5 spent → 16 left to spend locally.
    for (let i = 0; i < 16; i++) await cache.take("k", 1);
    expect(acquire).toHaveBeenCalledTimes(1);
    await cache.take("k", 1);
    expect(acquire).toHaveBeenCalledTimes(2);
  });

  it("within the limit, 10 s of traffic is all admitted with about one call per chunk", async () => {
    const { cache, acquire, clock } = setup({ ratePerSec: 1_000, burst: 500 }, 10, 200);
    let admitted = 0;
    let requests = 0;
    for (let t = 0; t < 10_000; t += 2) {
      clock.now = T0 + t;
      requests++;
      if ((await cache.take("k", 1)).ok) admitted++;
    }
    expect(requests).toBe(5_000);
    expect(admitted).toBe(5_000);
    // One call per 11 requests (1 needed + chunk of 10).
    expect(acquire).toHaveBeenCalledTimes(Math.ceil(5_000 / 11));
  });

  it("over the limit for 10 s, the edge admits no more than burst + rate × 10", async () => {
    const limits = { ratePerSec: 100, burst: 50 };
    const { cache, clock, buckets } = setup(limits, 10, 200);
    let admitted = 0;
    let refused = 0;
    for (let t = 0; t <= 10_000; t += 2) {
      clock.now = T0 + t;
      const outcome = await cache.take("k", 1);
      if (outcome.ok) admitted++;
      else {
        refused++;
        expect(outcome.retryAfterMs).toBeGreaterThanOrEqual(1);
        expect(outcome.retryAfterMs).toBeLessThanOrEqual(10);
      }
    }
    expect(admitted).toBeLessThanOrEqual(limits.burst + limits.ratePerSec * 10);
    // Tokens are handed out as they refill, so nearly all of them are used.
    expect(admitted).toBeGreaterThanOrEqual(limits.burst + limits.ratePerSec * 10 - 20);
    expect(admitted + refused).toBe(5_001);
    expect(buckets.get("k")!.available(clock.now)).toBeLessThan(1);
  });
});

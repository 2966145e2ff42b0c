import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TokenBucket } from "../../actors/rate-limiter/token-bucket";

const T0 = 1_700_000_000_000;

describe("TokenBucket: initial state and refill", () => {
  it.each([
    { ratePerSec: 10, burst: 100 },
    { ratePerSec: 1, burst: 1 },
    { ratePerSec: 100_000, burst: 200_000 },
  ])("starts full at burst ($burst)", (limits) => {
    const bucket = new TokenBucket(limits, T0);
    expect(bucket.available(T0)).toBe(limits.burst);
    // Idle time on a full bucket does not go past burst.
    expect(bucket.available(T0 + 60_000)).toBe(limits.burst);
  });

  it.each([
    // [elapsed ms after emptying, expected tokens] at 10 tokens/s, burst 100
    [0, 0],
    [100, 1],
    [250, 2.5],
    [500, 5],
    [1_000, 10],
    [9_999, 99.99],
    [10_000, 100],
    [10_001, 100],
    [3_600_000, 100],
  ])("refills by elapsed time: %i ms after emptying → %d tokens (capped at burst)", (elapsed, expected) => {
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 100 }, T0);
    expect(bucket.take(T0, 100)).toEqual({ granted: 100, retryAfterMs: 0 });
    expect(bucket.available(T0 + elapsed)).toBeCloseTo(expected, 9);
  });

  it("refills incrementally across several reads", () => {
    const bucket = new TokenBucket({ ratePerSec: 1000, burst: 1000 }, T0);
    bucket.take(T0, 1000);
    expect(bucket.available(T0 + 100)).toBeCloseTo(100, 9);
    expect(bucket.available(T0 + 300)).toBeCloseTo(300, 9);
    expect(bucket.available(T0 + 300)).toBeCloseTo(300, 9);
    expect(bucket.available(T0 + 2_000)).toBe(1000);
  });

  it("a clock that goes backwards neither adds nor removes tokens", () => {
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 100 }, T0);
    bucket.take(T0, 50);
    expect(bucket.available(T0 - 5_000)).toBe(50);
    expect(bucket.available(T0)).toBe(50);
    expect(bucket.available(T0 + 1_000)).toBeCloseTo(60, 9);
  });
});

describe("TokenBucket.take", () => {
  // Each row: bucket 10/s burst 100, first drained down to `tokens` at T0, then take(T0, wanted, min).
  const cases: Array<{
    name: string;
    tokens: number;
    wanted: number;
    min?: number;
    granted: number;
    retryAfterMs: number;
    left: number;
  }> = [
    { name: "all of wanted when there", tokens: 100, wanted: 30, granted: 30, retryAfterMs: 0, left: 70 },
    { name: "exactly what is there", tokens: 30, wanted: 30, granted: 30, retryAfterMs: 0, left: 0 },
    { name: "partial ≥ min", tokens: 20, wanted: 50, min: 5, granted: 20, retryAfterMs: 0, left: 0 },
    { name: "partial = min", tokens: 5, wanted: 50, min: 5, granted: 5, retryAfterMs: 0, left: 0 },
    // Not enough for min: nothing, and the wait is for `min` tokens (4 missing at 10/s = 400 ms).
    { name: "none below min", tokens: 6, wanted: 50, min: 10, granted: 0, retryAfterMs: 400, left: 6 },
    // min defaults to wanted: 50 wanted, 20 there → 30 missing → 3000 ms.
    { name: "none when min defaults to wanted", tokens: 20, wanted: 50, granted: 0, retryAfterMs: 3_000, left: 20 },
    { name: "empty bucket, 1 wanted", tokens: 0, wanted: 1, granted: 0, retryAfterMs: 100, left: 0 },
    // min above wanted is treated as wanted.
    { name: "min > wanted", tokens: 7, wanted: 5, min: 10, granted: 5, retryAfterMs: 0, left: 2 },
    { name: "wanted 0", tokens: 0, wanted: 0, granted: 0, retryAfterMs: 0, left: 0 },
  ];

  it.each(cases)("$name", ({ tokens, wanted, min, granted, retryAfterMs, left }) => {
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 100 }, T0);
    if (tokens < 100) bucket.take(T0, 100 - tokens);
    expect(bucket.available(T0)).toBe(tokens);
    const result = min === undefined ? bucket.take(T0, wanted) : bucket.take(T0, wanted, min);
    expect(result).toEqual({ granted, retryAfterMs });
    expect(bucket.available(T0)).toBe(left);
  });

  it("grants only whole tokens when partial and keeps the fraction", () => {
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 100 }, T0);
    bucket.take(T0, 100);
    // 0.75 s → 7.5 tokens
    expect(bucket.take(T0 + 750, 20, 1)).toEqual({ granted: 7, retryAfterMs: 0 });
    expect(bucket.available(T0 + 750)).toBeCloseTo(0.5, 9);
  });

  it("computes retryAfterMs from the fractional deficit, rounded up, at least 1 ms", () => {
    const bucket = new TokenBucket({ ratePerSec: 3, burst: 10 }, T0);
    bucket.take(T0, 10);
    // 1 token at 3/s = 333.33.. ms → 334
    expect(bucket.take(T0, 1)).toEqual({ granted: 0, retryAfterMs: 334 });
    // After 250 ms there are 0.75 tokens: 0.25 missing → 83.33.. → 84
    expect(bucket.take(T0 + 250, 1)).toEqual({ granted: 0, retryAfterMs: 84 });
    // After 333 ms: 0.999 tokens: 0.001 missing → 0.333.. ms → 1
    expect(bucket.take(T0 + 333, 1)).toEqual({ granted: 0, retryAfterMs: 1 });
    // After 334 ms the token is there.
    expect(bucket.take(T0 + 334, 1)).toEqual({ granted: 1, retryAfterMs: 0 });
  });

  it("the retryAfterMs it reports is enough: taking again then succeeds", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1000 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.integer({ min: 0, max: 5000 }),
        (rate, burst, elapsed) => {
          const bucket = new TokenBucket({ ratePerSec: rate, burst }, T0);
          bucket.take(T0, burst);
          const wanted = burst; // always ≤ burst, so it must eventually pass
          const now = T0 + elapsed;
          const first = bucket.take(now, wanted);
          if (first.granted === wanted) return;
          expect(first.granted).toBe(0);
          expect(first.retryAfterMs).toBeGreaterThanOrEqual(1);
          // Well before the reported time it would still fail (the ceil may overshoot by 1 ms of
          // floating-point error, never more)...
          if (first.retryAfterMs > 2) {
            const probe = new TokenBucket({ ratePerSec: rate, burst }, T0);
            probe.take(T0, burst);
            expect(probe.take(now + first.retryAfterMs - 2, wanted).granted).toBe(0);
          }
          // ...and it passes by then, give or take 1 ms of floating-point error in the refill sum
          // (0.08 + 0.92 = 0.9999999999999999 tokens): at most one more 1 ms refusal.
          const again = bucket.take(now + first.retryAfterMs, wanted);
          if (again.granted === 0) {
            expect(again.retryAfterMs).toBe(1);
            expect(bucket.take(now + first.retryAfterMs + 1, wanted)).toEqual({ granted: wanted, retryAfterMs: 0 });
          } else {
            expect(again).toEqual({ granted: wanted, retryAfterMs: 0 });
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("a request larger than burst never passes in full; retryAfterMs is the time to a full bucket", () => {
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 100 }, T0);
    bucket.take(T0, 60); // 40 left
    // 60 missing to reach burst at 10/s = 6000 ms
    expect(bucket.take(T0, 150)).toEqual({ granted: 0, retryAfterMs: 6_000 });
    // Full bucket: still not 150, and the reported wait is the 1 ms floor.
    expect(bucket.take(T0 + 6_000, 150)).toEqual({ granted: 0, retryAfterMs: 1 });
    expect(bucket.available(T0 + 6_000)).toBe(100);
    // With a min that fits, a full bucket gives everything it has.
    expect(bucket.take(T0 + 6_000, 150, 50)).toEqual({ granted: 100, retryAfterMs: 0 });
    expect(bucket.available(T0 + 6_000)).toBe(0);
  });
});

describe("TokenBucket.refund", () => {
  it.each([
    // [tokens before, refund, expected after] with burst 100
    [50, 20, 70],
    [90, 50, 100],
    [100, 1, 100],
    [0, 100, 100],
    [0, 0, 0],
  ])("%d tokens + refund %d → %d (capped at burst)", (before, refund, after) => {
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 100 }, T0);
    if (before < 100) bucket.take(T0, 100 - before);
    bucket.refund(T0, refund);
    expect(bucket.available(T0)).toBe(after);
  });

  it("refills before refunding, so the cap applies to the refilled amount", () => {
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 100 }, T0);
    bucket.take(T0, 100);
    // 5 s later: 50 refilled; refund 60 → capped at 100.
    bucket.refund(T0 + 5_000, 60);
    expect(bucket.available(T0 + 5_000)).toBe(100);
  });
});

describe("TokenBucket.setLimits", () => {
  it("lowering burst caps the current tokens", () => {
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 100 }, T0);
    bucket.setLimits({ ratePerSec: 10, burst: 30 });
    expect(bucket.available(T0)).toBe(30);
    expect(bucket.take(T0, 31)).toEqual({ granted: 0, retryAfterMs: 1 });
    expect(bucket.take(T0, 30)).toEqual({ granted: 30, retryAfterMs: 0 });
    // Refill now caps at the new burst.
    expect(bucket.available(T0 + 60_000)).toBe(30);
  });

  it("raising burst keeps the current tokens and lets them refill to the new burst", () => {
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 100 }, T0);
    bucket.setLimits({ ratePerSec: 10, burst: 200 });
    expect(bucket.available(T0)).toBe(100);
    expect(bucket.available(T0 + 10_000)).toBe(200);
  });

  it("a new rate applies to refills after it", () => {
    const bucket = new TokenBucket({ ratePerSec: 10, burst: 1000 }, T0);
    bucket.take(T0, 1000);
    expect(bucket.available(T0 + 1_000)).toBeCloseTo(10, 9);
    bucket.setLimits({ ratePerSec: 100, burst: 1000 });
    expect(bucket.available(T0 + 2_000)).toBeCloseTo(110, 9);
    // retryAfterMs uses the new rate: 200 wanted, 110 there → 90 at 100/s = 900 ms.
    expect(bucket.take(T0 + 2_000, 200)).toEqual({ granted: 0, retryAfterMs: 900 });
  });
});

describe("TokenBucket over time", () => {
  it("over a simulated 10 s, greedy takes get burst + rate*10 tokens (within one token)", () => {
    const limits = { ratePerSec: 1_000, burst: 500 };
    const bucket = new TokenBucket(limits, T0);
    let total = 0;
    for (let t = 0; t <= 10_000; t += 7) total += bucket.take(T0 + t, 1_000_000, 1).granted;
    total += bucket.take(T0 + 10_000, 1_000_000, 1).granted;
    const expected = limits.burst + limits.ratePerSec * 10;
    expect(total).toBeLessThanOrEqual(expected);
    expect(total).toBeGreaterThanOrEqual(expected - 1);
  });

  it("single-token requests over 10 s pass burst + rate*10 times", () => {
    const limits = { ratePerSec: 50, burst: 20 };
    const bucket = new TokenBucket(limits, T0);
    let granted = 0;
    let refused = 0;
    for (let t = 0; t <= 10_000; t += 1) {
      // Three callers per millisecond.
      for (let c = 0; c < 3; c++) {
        const r = bucket.take(T0 + t, 1);
        if (r.granted === 1) granted++;
        else refused++;
      }
    }
    expect(granted).toBe(limits.burst + limits.ratePerSec * 10);
    expect(granted + refused).toBe(3 * 10_001);
  });

  it("property: for any rate, burst and clock steps, greedy total is burst + rate*T within one token", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 2, max: 10_000 }),
        fc.array(fc.integer({ min: 0, max: 50 }), { minLength: 1, maxLength: 200 }),
        (rate, burst, steps) => {
          // Steps small enough that the bucket (a fraction < 1 left after each greedy take) is
          // never capped between takes.
          const maxStep = Math.floor(((burst - 1) / rate) * 1000);
          const bucket = new TokenBucket({ ratePerSec: rate, burst }, T0);
          let now = T0;
          let total = bucket.take(now, Number.MAX_SAFE_INTEGER, 1).granted;
          for (const step of steps) {
            now += Math.min(step, maxStep);
            total += bucket.take(now, Number.MAX_SAFE_INTEGER, 1).granted;
          }
          const ideal = burst + ((now - T0) / 1000) * rate;
          expect(total).toBeLessThanOrEqual(ideal + 1e-6);
          expect(total).toBeGreaterThan(ideal - 1 - 1e-6);
        },
      ),
      { numRuns: 200 },
    );
  });
});

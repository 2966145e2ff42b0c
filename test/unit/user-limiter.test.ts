import { describe, expect, it } from "vitest";
import { UserLimiter } from "../../nodes/edge/user-limiter";

const LIMITS = { ratePerSec: 10, burst: 5 };
const ev = (user: unknown, session?: unknown) => ({ event_name: "e", user_id: user, session_id: session });

describe("UserLimiter", () => {
  it("lets a user's first events through while its bucket lasts, and throttles the rest, by index", () => {
    const limiter = new UserLimiter();
    const events = [ev("a"), ev("b"), ev("a"), ev("a"), ev("a"), ev("a"), ev("a"), ev("a")];
    // a: indices 0, 2..7 (7 events, burst 5) → 6 and 7 throttled; b: one event, fine.
    expect(limiter.throttle("t", LIMITS, events, 0)).toEqual([
      { index: 6, retryAfterMs: 200 },
      { index: 7, retryAfterMs: 200 },
    ]);
    // Empty now; 100 ms refill one token at 10/s.
    expect(limiter.throttle("t", LIMITS, [ev("a"), ev("a")], 50).map((t) => t.index)).toEqual([0, 1]);
    expect(limiter.throttle("t", LIMITS, [ev("a"), ev("a")], 150).map((t) => t.index)).toEqual([1]);
    // Another user, another tenant: their own buckets.
    expect(limiter.throttle("t", LIMITS, [ev("b"), ev("b"), ev("b"), ev("b")], 150)).toEqual([]);
    expect(limiter.throttle("other", LIMITS, Array.from({ length: 5 }, () => ev("a")), 150)).toEqual([]);
  });

  it("applies changed limits (a reloaded TENANTS_FILE) to buckets it already holds", () => {
    const limiter = new UserLimiter();
    expect(limiter.throttle("t", LIMITS, Array.from({ length: 3 }, () => ev("a")), 0)).toEqual([]);
    // Burst down from 5 to 1: the 2 tokens left shrink to 1, and the refill follows the new rate.
    const slower = { ratePerSec: 1, burst: 1 };
    expect(limiter.throttle("t", slower, [ev("a"), ev("a")], 0)).toEqual([{ index: 1, retryAfterMs: 1000 }]);
    expect(limiter.throttle("t", slower, [ev("a")], 500).map((t) => t.index)).toEqual([0]);
    expect(limiter.throttle("t", slower, [ev("a")], 1000)).toEqual([]);
  });

  it("counts an event without a user for its session, apart from users of the same name", () => {
    const limiter = new UserLimiter();
    const sessionOnly = Array.from({ length: 6 }, () => ev(undefined, "x"));
    expect(limiter.throttle("t", LIMITS, sessionOnly, 0).map((t) => t.index)).toEqual([5]);
    // User "x" is not session "x".
    expect(limiter.throttle("t", LIMITS, Array.from({ length: 5 }, () => ev("x")), 0)).toEqual([]);
    // A user id takes precedence over the session: the same session with a user counts for the user.
    expect(limiter.throttle("t", LIMITS, [ev("y", "x")], 0)).toEqual([]);
  });

  it("reads the spellings normalisation reads (userId, sessionId, numbers) and leaves anonymous events alone", () => {
    const limiter = new UserLimiter();
    const mixed = [{ userId: "u" }, { user_id: "u" }, { userId: 7 }, { user_id: "7" }, { sessionId: "s" }, { session_id: "s" }];
    const six = [...mixed, ...mixed, ...mixed]; // u: 6, "7": 6, s: 6 with burst 5 → the last of each throttled
    expect(limiter.throttle("t", LIMITS, six, 0).map((t) => t.index)).toEqual([13, 15, 17]);
    // No user and no session, or ids of the wrong type, or not an object: nothing to count.
    const anonymous = [{ event_name: "e" }, { user_id: "", session_id: null }, { user_id: { x: 1 } }, null, "text", [1]];
    expect(limiter.throttle("t", LIMITS, [...anonymous, ...anonymous, ...anonymous], 0)).toEqual([]);
  });

  it("says how long until the missing events fit, up to a full bucket", () => {
    const limiter = new UserLimiter();
    const many = Array.from({ length: 40 }, () => ev("a"));
    const throttled = limiter.throttle("t", { ratePerSec: 2, burst: 10 }, many, 0);
    expect(throttled).toHaveLength(30);
    // 30 missing, but a bucket holds 10: 10 tokens at 2/s.
    expect(new Set(throttled.map((t) => t.retryAfterMs))).toEqual(new Set([5000]));
  });

  it("keeps at most maxTracked buckets, forgetting the least recently used", () => {
    const limiter = new UserLimiter(3);
    for (const user of ["a", "b", "c", "d"]) limiter.throttle("t", LIMITS, Array.from({ length: 5 }, () => ev(user)), 0);
    expect(limiter.tracked).toBe(3);
    // "a" was forgotten: a full bucket again. "d" is remembered: empty.
    expect(limiter.throttle("t", LIMITS, [ev("a")], 0)).toEqual([]);
    expect(limiter.throttle("t", LIMITS, [ev("d")], 0)).toHaveLength(1);
  });
});

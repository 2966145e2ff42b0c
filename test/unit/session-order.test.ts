import { describe, expect, it } from "vitest";
import { orderingKeys, SessionBarrier, SessionChains } from "../../nodes/edge/session-order";

function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const tick = () => new Promise((r) => setImmediate(r));

describe("orderingKeys", () => {
  it("derives the validator's session key from raw events, once per key", () => {
    expect(
      orderingKeys([
        { session_id: "a" },
        { sessionId: "a" },
        { session_id: 7 },
        { user_id: "u1" },
        { userId: "u1" },
        { event_name: "no session" },
        null,
        "junk",
      ]),
    ).toEqual(["a", "7", "user:u1"]);
  });
});

describe("SessionChains", () => {
  it("runs tasks that share a key one after another, in arrival order", async () => {
    const chains = new SessionChains<string>();
    const log: string[] = [];
    const first = deferred<string>();
    const a = chains.run(["s1"], async () => {
      log.push("a start");
      return first.promise;
    });
    const b = chains.run(["s1", "s2"], async (previous) => {
      log.push(`b start after ${previous.join(",")}`);
      return "b";
    });
    await tick();
    expect(log).toEqual(["a start"]);
    first.resolve("a");
    expect(await b).toBe("b");
    expect(await a).toBe("a");
    expect(log).toEqual(["a start", "b start after a"]);
    await tick();
    expect(chains.size).toBe(0);
  });

  it("lets tasks of disjoint keys overlap", async () => {
    const chains = new SessionChains<string>();
    const hold = deferred<string>();
    const started: string[] = [];
    void chains.run(["s1"], async () => {
      started.push("a");
      return hold.promise;
    });
    const b = chains.run(["s2"], async () => {
      started.push("b");
      return "b";
    });
    expect(await b).toBe("b");
    expect(started).toEqual(["a", "b"]);
    hold.resolve("a");
  });

  it("waits for every earlier task sharing any key", async () => {
    const chains = new SessionChains<number>();
    const one = deferred<number>();
    const two = deferred<number>();
    void chains.run(["x"], () => one.promise);
    void chains.run(["y"], () => two.promise);
    const third = chains.run(["x", "y"], async (previous) => previous.reduce((a, b) => a + b, 0));
    one.resolve(1);
    await tick();
    two.resolve(2);
    expect(await third).toBe(3);
  });
});

describe("SessionBarrier", () => {
  it("refuses later seqs of a blocked session until the refused seq comes back", () => {
    const barrier = new SessionBarrier();
    barrier.block(["s1", "s2"], { seq: 5, code: "rate_limited", retryAfterMs: 100 });
    expect(barrier.check(["s1"], 6)).toEqual({ seq: 5, code: "rate_limited", retryAfterMs: 100 });
    expect(barrier.check(["s3"], 6)).toBeNull();
    // An older batch may go and does not unblock.
    expect(barrier.check(["s1"], 4)).toBeNull();
    expect(barrier.check(["s1"], 7)).not.toBeNull();
    // The resend of 5 goes and unblocks both keys it carried.
    expect(barrier.check(["s1", "s2"], 5)).toBeNull();
    expect(barrier.size).toBe(0);
    expect(barrier.check(["s1", "s2"], 6)).toBeNull();
  });

  it("keeps the lowest refused seq per key", () => {
    const barrier = new SessionBarrier();
    barrier.block(["s"], { seq: 8, code: "unavailable" });
    barrier.block(["s"], { seq: 3, code: "rate_limited" });
    barrier.block(["s"], { seq: 9, code: "unavailable" });
    expect(barrier.check(["s"], 4)?.seq).toBe(3);
    expect(barrier.check(["s"], 3)).toBeNull();
    expect(barrier.check(["s"], 4)).toBeNull();
  });
});

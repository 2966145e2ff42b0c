import { describe, expect, it } from "vitest";
import { Coalescer } from "../../actors/session/coalescer";
import { deferred, track } from "../support/deferred";

const nextTick = () => new Promise<void>((r) => setImmediate(r));

describe("Coalescer", () => {
  it.each([
    { adds: [["a"]], sent: ["a"] },
    { adds: [["a"], ["b"], ["c"]], sent: ["a", "b", "c"] },
    { adds: [["a", "b"], [], ["c", "d", "e"]], sent: ["a", "b", "c", "d", "e"] },
    { adds: [["x"], ["y", "z"]], sent: ["x", "y", "z"] },
  ])("adds in the same tick become one send in add order: $adds → $sent", async ({ adds, sent }) => {
    const sends: string[][] = [];
    const c = new Coalescer<string>(async (items) => {
      sends.push([...items]);
    }, 1_000);
    const results = adds.map((a) => c.add(a));
    // Nothing is sent synchronously below maxItems.
    expect(sends).toEqual([]);
    await Promise.all(results);
    expect(sends).toEqual([sent]);
  });

  it("adds in different ticks become different sends", async () => {
    const sends: number[][] = [];
    const c = new Coalescer<number>(async (items) => {
      sends.push([...items]);
    }, 1_000);
    const p1 = c.add([1]);
    const p2 = c.add([2]);
    await nextTick();
    const p3 = c.add([3]);
    await Promise.all([p1, p2, p3]);
    expect(sends).toEqual([[1, 2], [3]]);
  });

  it("waiters resolve only when the send resolves", async () => {
    const gate = deferred();
    const sends: number[][] = [];
    const c = new Coalescer<number>((items) => {
      sends.push([...items]);
      return gate.promise;
    }, 1_000);
    const a = track(c.add([1]));
    const b = track(c.add([2]));
    await nextTick();
    await nextTick();
    expect(sends).toEqual([[1, 2]]);
    expect([a.state, b.state]).toEqual(["pending", "pending"]);
    gate.resolve();
    await nextTick();
    expect([a.state, b.state]).toEqual(["fulfilled", "fulfilled"]);
  });

  it.each([
    // [maxItems, adds, sends made synchronously by the adds]
    [3, [[1], [2], [3]], [[1, 2, 3]]],
    [3, [[1, 2], [3, 4]], [[1, 2, 3, 4]]],
    [2, [[1, 2], [3, 4]], [[1, 2], [3, 4]]],
    [1, [[1], [2], [3]], [[1], [2], [3]]],
    [2, [[1, 2, 3, 4, 5]], [[1, 2, 3, 4, 5]]],
  ])("reaching maxItems=%i sends immediately: adds %j → %j", async (maxItems, adds, expected) => {
    const sends: number[][] = [];
    const c = new Coalescer<number>(async (items) => {
      sends.push([...items]);
    }, maxItems);
    const results = adds.map((a) => c.add(a));
    // Synchronously, before any tick.
    expect(sends).toEqual(expected);
    await Promise.all(results);
    expect(sends).toEqual(expected);
  });

  it("adds after an immediate send in the same tick go to the next (tick-end) send", async () => {
    const sends: number[][] = [];
    const c = new Coalescer<number>(async (items) => {
      sends.push([...items]);
    }, 2);
    const p = [c.add([1]), c.add([2]), c.add([3])];
    expect(sends).toEqual([[1, 2]]);
    await Promise.all(p);
    expect(sends).toEqual([[1, 2], [3]]);
  });

  it("a failed send rejects all its waiters, and only those", async () => {
    const boom = new Error("publish failed");
    const sends: number[][] = [];
    let n = 0;
    const c = new Coalescer<number>(async (items) => {
      sends.push([...items]);
      n++;
      if (n === 1) throw boom;
    }, 100);
    const a = track(c.add([1]));
    const b = track(c.add([2, 3]));
    await nextTick();
    await nextTick();
    expect([a.state, b.state]).toEqual(["rejected", "rejected"]);
    expect(a.error).toBe(boom);
    expect(b.error).toBe(boom);

    // The next tick's batch is unaffected.
    const d = track(c.add([4]));
    await nextTick();
    await nextTick();
    expect(d.state).toBe("fulfilled");
    expect(sends).toEqual([[1, 2, 3], [4]]);
  });

  it("a failed immediate (maxItems) send rejects its waiters and the next batch still works", async () => {
    const boom = new Error("x");
    const sends: number[][] = [];
    const c = new Coalescer<number>(async (items) => {
      sends.push([...items]);
      if (items.includes(1)) throw boom;
    }, 2);
    const a = track(c.add([1]));
    const b = track(c.add([2]));
    const d = track(c.add([3]));
    await nextTick();
    await nextTick();
    expect([a.state, b.state, d.state]).toEqual(["rejected", "rejected", "fulfilled"]);
    expect(sends).toEqual([[1, 2], [3]]);
  });

  it("keeps order across many ticks and many adders", async () => {
    const sent: number[] = [];
    const c = new Coalescer<number>(async (items) => {
      sent.push(...items);
    }, 7);
    const all: Promise<void>[] = [];
    let next = 0;
    for (let tick = 0; tick < 10; tick++) {
      for (let k = 0; k < 5; k++) all.push(c.add([next++, next++]));
      await nextTick();
    }
    await Promise.all(all);
    expect(sent).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it("with a weight per item, sends at once when the items weigh maxWeight, not when they number it", async () => {
    const sends: number[][][] = [];
    const c = new Coalescer<number[]>(
      async (items) => {
        sends.push(items.map((item) => [...item]));
      },
      10,
      (item) => item.length,
    );
    const a = c.add([[1, 2, 3]]);
    const b = c.add([[4, 5, 6, 7]]);
    // 7 of 10: nothing yet.
    expect(sends).toEqual([]);
    const d = c.add([[8, 9, 10]]);
    // 10 of 10: sent synchronously, before the tick ends.
    expect(sends).toEqual([[[1, 2, 3], [4, 5, 6, 7], [8, 9, 10]]]);
    const e = c.add([[11]]);
    await Promise.all([a, b, d, e]);
    expect(sends).toEqual([[[1, 2, 3], [4, 5, 6, 7], [8, 9, 10]], [[11]]]);
  });
});

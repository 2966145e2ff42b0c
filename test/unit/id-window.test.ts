import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { IdWindow } from "../../actors/common/id-window";

describe("IdWindow", () => {
  it("forgets the first added pair past max; has() and re-adding do not refresh", () => {
    const w = new IdWindow(2);
    w.add("t", "a");
    w.add("t", "b");
    expect(w.has("t", "a")).toBe(true);
    w.add("t", "a"); // already there: keeps its place
    w.add("u", "c"); // evicts (t, a)
    expect([w.has("t", "a"), w.has("t", "b"), w.has("u", "c")]).toEqual([false, true, true]);
    w.add("t", "d"); // evicts (t, b)
    expect([w.has("t", "b"), w.has("u", "c"), w.has("t", "d")]).toEqual([false, true, true]);
    expect(w.size).toBe(2);
  });

  it("keeps equal ids of different scopes apart, and drops emptied scopes", () => {
    const w = new IdWindow(3);
    w.add("t1", "e");
    w.add("t2", "e");
    expect([w.has("t1", "e"), w.has("t2", "e"), w.has("t3", "e")]).toEqual([true, true, false]);
    w.add("t3", "x");
    w.add("t3", "y"); // evicts (t1, e)
    expect(w.has("t1", "e")).toBe(false);
    w.add("t1", "e"); // and it comes back
    expect(w.has("t1", "e")).toBe(true);
    expect(w.size).toBe(3);
  });

  it("a window of one holds the last pair only", () => {
    const w = new IdWindow(1);
    w.add("s", "a");
    w.add("s", "b");
    expect([w.has("s", "a"), w.has("s", "b")]).toEqual([false, true]);
  });

  it("rejects a max that is not a positive integer", () => {
    expect(() => new IdWindow(0)).toThrow(RangeError);
    expect(() => new IdWindow(2.5)).toThrow(RangeError);
  });

  it("behaves like a first-in-first-out list of distinct pairs (model check)", () => {
    const op = fc.tuple(fc.boolean(), fc.constantFrom("t1", "t2", "t3"), fc.constantFrom("a", "b", "c", "d", "e", "f"));
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.array(op, { maxLength: 200 }), (max, ops) => {
        const w = new IdWindow(max);
        const model: string[] = [];
        for (const [isAdd, scope, id] of ops) {
          const key = `${scope}/${id}`;
          if (isAdd) {
            w.add(scope, id);
            if (!model.includes(key)) {
              model.push(key);
              if (model.length > max) model.shift();
            }
          } else {
            expect(w.has(scope, id)).toBe(model.includes(key));
          }
        }
        expect(w.size).toBe(model.length);
      }),
      { numRuns: 500 },
    );
  });
});

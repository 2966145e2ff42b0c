import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { LRUCache } from "lru-cache";
import { ScopedLru } from "../../actors/common/scoped-lru";

describe("ScopedLru", () => {
  it("evicts the least recently set or read key past max; has() does not refresh", () => {
    const lru = new ScopedLru<number>(2);
    lru.set("t", "a", 1);
    lru.set("t", "b", 2);
    expect(lru.has("t", "a")).toBe(true); // no refresh
    lru.set("u", "c", 3); // evicts (t, a)
    expect([lru.has("t", "a"), lru.has("t", "b"), lru.has("u", "c")]).toEqual([false, true, true]);
    expect(lru.get("t", "b")).toBe(2); // refresh (t, b)
    lru.set("t", "d", 4); // evicts (u, c)
    expect([lru.has("t", "b"), lru.has("u", "c"), lru.has("t", "d")]).toEqual([true, false, true]);
    lru.set("t", "b", 5); // update refreshes, no eviction
    expect(lru.size).toBe(2);
    expect(lru.get("t", "b")).toBe(5);
    expect(lru.get("t", "zz")).toBeUndefined();
    expect(lru.get("zz", "b")).toBeUndefined();
  });

  it("rejects a max that is not a positive integer", () => {
    expect(() => new ScopedLru(0)).toThrow(RangeError);
    expect(() => new ScopedLru(1.5)).toThrow(RangeError);
  });

  it("scopes keep equal keys apart and pairs share one window", () => {
    const lru = new ScopedLru<boolean>(3);
    lru.set("t1", "e", true);
    lru.set("t2", "e", true);
    expect([lru.has("t1", "e"), lru.has("t2", "e"), lru.has("t3", "e")]).toEqual([true, true, false]);
    lru.set("t3", "x", true);
    lru.set("t3", "y", true); // evicts (t1, e); scope t1 is empty now
    expect(lru.has("t1", "e")).toBe(false);
    lru.set("t1", "e", true); // and comes back
    expect(lru.has("t1", "e")).toBe(true);
    expect(lru.size).toBe(3);
  });

  it("agrees with lru-cache (max only, key = scope + NUL + key) on every sequence of has/get/set", () => {
    const scope = fc.constantFrom("t1", "t2", "t3");
    const key = fc.constantFrom("a", "b", "c", "d", "e", "f");
    const op = fc.oneof(
      fc.record({ kind: fc.constant("set" as const), scope, key, value: fc.integer() }),
      fc.record({ kind: fc.constant("get" as const), scope, key }),
      fc.record({ kind: fc.constant("has" as const), scope, key }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.array(op, { maxLength: 200 }), (max, ops) => {
        const mine = new ScopedLru<number>(max);
        const ref = new LRUCache<string, number>({ max });
        for (const o of ops) {
          const joined = `${o.scope}\u0000${o.key}`;
          if (o.kind === "set") {
            mine.set(o.scope, o.key, o.value);
            ref.set(joined, o.value);
          } else if (o.kind === "get") {
            expect(mine.get(o.scope, o.key)).toBe(ref.get(joined));
          } else {
            expect(mine.has(o.scope, o.key)).toBe(ref.has(joined));
          }
          expect(mine.size).toBe(ref.size);
        }
      }),
      { numRuns: 300 },
    );
  });
});

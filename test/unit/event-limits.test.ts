import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { IngestEvent } from "../../actors/common/event";
import { checkEventLimits, type EventLimits } from "../../actors/validator/event-limits";

const LIMITS: EventLimits = { maxEventBytes: 32 * 1024, maxStringLength: 100, maxPropertiesKeys: 10 };

function event(properties: Record<string, unknown>, overrides: Partial<IngestEvent> = {}): IngestEvent {
  return {
    tenant_id: "tenant-a",
    event_id: "e-1",
    event_name: "page_view",
    session_id: "s-1",
    seq: 1,
    user_id: "u-1",
    channel: "web",
    timestamp: 1_700_000_000_000,
    received_at: 1_700_000_000_001,
    properties,
    ...overrides,
  };
}

const jsonBytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value), "utf8");

describe("checkEventLimits", () => {
  it("a small event passes with the shared empty array", () => {
    const a = checkEventLimits(event({ path: "/", n: 1, nested: { ok: [1, 2, { x: true }] } }), LIMITS);
    const b = checkEventLimits(event({}), LIMITS);
    expect(a).toEqual([]);
    expect(a).toBe(b);
    expect(Object.isFrozen(a)).toBe(true);
  });

  it.each<[string, Record<string, unknown>, string[]]>([
    ["string at the limit", { s: "x".repeat(100) }, []],
    ["string one over", { s: "x".repeat(101) }, ["properties.s must be at most 100 characters long (is 101)"]],
    ["deep string", { a: { b: [0, { c: "y".repeat(150) }] } }, ["properties.a.b[1].c must be at most 100 characters long (is 150)"]],
    ["odd key in the path", { "a-b": "z".repeat(200) }, ['properties["a-b"] must be at most 100 characters long (is 200)']],
    ["only the first long string is reported", { a: "x".repeat(101), b: "y".repeat(300) }, ["properties.a must be at most 100 characters long (is 101)"]],
    ["long key", { ["k".repeat(101)]: 1 }, ["properties has a key longer than 100 characters"]],
    ["10 keys at the limit", Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, i])), []],
    ["11 top-level keys", Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`k${i}`, i])), ["properties must have at most 10 keys in total (has 11)"]],
    // Nesting does not hide keys: 4 top-level + 4 in a + 3 in b[0] = 11.
    [
      "11 keys across nested objects",
      { a: { a1: 1, a2: 2, a3: 3, a4: 4 }, b: [{ b1: 1, b2: 2, b3: 3 }], c: 1, d: 1 },
      ["properties must have at most 10 keys in total (has 11)"],
    ],
    ["array items are not keys", { list: Array.from({ length: 50 }, (_, i) => i) }, []],
  ])("%s", (_name, properties, expected) => {
    expect(checkEventLimits(event(properties), LIMITS)).toEqual(expected);
  });

  it("reports every kind of problem of one event together", () => {
    const props = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`k${i}`, i === 0 ? "x".repeat(101) : i]));
    expect(checkEventLimits(event(props), LIMITS)).toEqual([
      "properties.k0 must be at most 100 characters long (is 101)",
      "properties must have at most 10 keys in total (has 12)",
    ]);
  });

  it("measures the event as UTF-8 JSON: exactly at the limit passes, one byte over fails", () => {
    const limits = { ...LIMITS, maxStringLength: 100_000 };
    const base = event({ pad: "" });
    const overhead = jsonBytes(base);
    const atLimit = event({ pad: "x".repeat(limits.maxEventBytes - overhead) });
    expect(jsonBytes(atLimit)).toBe(limits.maxEventBytes);
    expect(checkEventLimits(atLimit, limits)).toEqual([]);
    const over = event({ pad: "x".repeat(limits.maxEventBytes - overhead + 1) });
    expect(checkEventLimits(over, limits)).toEqual([`event must be at most ${limits.maxEventBytes} bytes as JSON (is ${limits.maxEventBytes + 1})`]);
  });

  it("multi-byte characters and escapes count as the bytes they take", () => {
    const limits = { maxEventBytes: 1000, maxStringLength: 10_000, maxPropertiesKeys: 100 };
    // 300 × "é" is 300 characters but 600 bytes; 300 × "\n" is 600 bytes escaped.
    expect(checkEventLimits(event({ a: "é".repeat(300) }), limits)).toEqual([]);
    const both = event({ a: "é".repeat(300), b: "\n".repeat(300) });
    expect(checkEventLimits(both, limits)).toEqual([`event must be at most 1000 bytes as JSON (is ${jsonBytes(both)})`]);
  });

  it("top-level fields count toward the size too", () => {
    const limits = { maxEventBytes: 400, maxStringLength: 10_000, maxPropertiesKeys: 100 };
    const big = event({}, { user_id: "u".repeat(300) });
    expect(checkEventLimits(big, limits)).toEqual([`event must be at most 400 bytes as JSON (is ${jsonBytes(big)})`]);
  });

  it("agrees with JSON.stringify on random properties (property)", () => {
    const limits = { maxEventBytes: 600, maxStringLength: 1_000_000, maxPropertiesKeys: 1_000_000 };
    fc.assert(
      fc.property(fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 8 }), (properties) => {
        // JSON round trip: what the validator sees came from JSON.parse (no -0, no undefined).
        const e = event(JSON.parse(JSON.stringify(properties)) as Record<string, unknown>);
        const over = jsonBytes(e) > limits.maxEventBytes;
        const errors = checkEventLimits(e, limits);
        expect(errors.length > 0).toBe(over);
      }),
      { numRuns: 300 },
    );
  });

  it("never throws on deep or odd input, and does not mutate it", () => {
    let deep: Record<string, unknown> = { leaf: "x" };
    for (let i = 0; i < 30; i++) deep = { d: deep };
    const props = { deep, "__proto__-like": 1, constructor: "c", empty: {}, list: [[[]]], n: null };
    const e = event(props);
    const before = JSON.stringify(e);
    expect(checkEventLimits(e, { ...LIMITS, maxPropertiesKeys: 100 })).toEqual([]);
    expect(JSON.stringify(e)).toBe(before);
  });
});

describe("checkEventLimits: timestamps ahead of the clock", () => {
  const DAY = 86_400_000;
  const at = (timestamp: number, received_at = 1_700_000_000_000) => ({ ...event({}), timestamp, received_at });

  it("accepts up to maxFutureMs ahead, and any past", () => {
    const limits = { ...LIMITS, maxFutureMs: DAY };
    expect(checkEventLimits(at(1_700_000_000_000 + DAY), limits)).toEqual([]);
    expect(checkEventLimits(at(0), limits)).toEqual([]);
  });

  it("rejects further ahead with a message that says by how much", () => {
    const limits = { ...LIMITS, maxFutureMs: DAY };
    expect(checkEventLimits(at(1_700_000_000_000 + DAY + 1), limits)).toEqual([
      "timestamp must be at most 1 day ahead of the server's clock (is 1 day ahead: is the client's clock right?)",
    ]);
    // A timestamp in microseconds: thousands of years ahead.
    expect(checkEventLimits(at(1_700_000_000_000_000), limits)[0]).toMatch(/^timestamp must be at most 1 day ahead .*\(is 19656250 days ahead/);
    expect(checkEventLimits(at(1_700_000_000_000 + 5 * 3_600_000), { ...LIMITS, maxFutureMs: 3_600_000 })[0]).toMatch(/at most 1 h ahead .*\(is 5 h ahead/);
    expect(checkEventLimits(at(1_700_000_000_000 + 90_000), { ...LIMITS, maxFutureMs: 30_000 })[0]).toMatch(/at most 30 s ahead .*\(is 90 s ahead/);
  });

  it("has no bound when maxFutureMs is absent or 0", () => {
    expect(checkEventLimits(at(8_640_000_000_000_000), LIMITS)).toEqual([]);
    expect(checkEventLimits(at(8_640_000_000_000_000), { ...LIMITS, maxFutureMs: 0 })).toEqual([]);
  });
});

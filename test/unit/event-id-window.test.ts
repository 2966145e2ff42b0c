import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EventIdWindow, parseUuid, UuidRing } from "../../actors/common/event-id-window";
import { IdWindow } from "../../actors/common/id-window";

/** A UUID's text from 16 bytes, in lower or upper case. */
function uuidText(bytes: readonly number[], upper = false): string {
  const hex = Buffer.from(bytes).toString("hex");
  const text = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  return upper ? text.toUpperCase() : text;
}

const bytes16 = fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 16, maxLength: 16 });

describe("parseUuid", () => {
  it("reads the 128 bits of any UUID text, with its letter case", () => {
    fc.assert(
      fc.property(bytes16, fc.boolean(), (bytes, upper) => {
        const words = new Int32Array(4);
        const text = uuidText(bytes, upper);
        const letterCase = parseUuid(text, words);
        // words[i] is the big-endian int32 of bytes 4i..4i+3
        const raw = Buffer.from(bytes);
        expect(Array.from(words)).toEqual([0, 4, 8, 12].map((at) => raw.readInt32BE(at)));
        expect(letterCase).toBe(upper && /[A-F]/.test(text) ? 1 : 0);
      }),
      { numRuns: 2000 },
    );
  });

  it.each([
    ["", "empty"],
    ["0123456789abcdef0123456789abcdef", "no dashes"],
    ["01234567-89ab-cdef-0123-456789abcde", "35 characters"],
    ["01234567-89ab-cdef-0123-456789abcdef0", "37 characters"],
    ["01234567_89ab-cdef-0123-456789abcdef", "a dash replaced"],
    ["0123456-789ab-cdef-0123-456789abcdef", "a dash moved"],
    ["01234567-89ab-cdef-0123-456789abcdeg", "not hex"],
    ["01234567-89Ab-cdef-0123-456789abcdef", "mixed case"],
    ["01234567-89ab-cdef-0123-456789abcde\u0161", "a code above 0xff (š) whose low byte is 'a'"],
    ["01234567-89ab-cdef-0123-456789abcde\uff41", "a full-width letter"],
    ["01234567-89ab-cdef-0123-456789abcde\u00e1", "a Latin-1 letter"],
    ["-1234567-89ab-cdef-0123-456789abcdef", "a sign"],
  ])("refuses %j (%s)", (id) => {
    expect(parseUuid(id, new Int32Array(4))).toBe(-1);
  });

  it("reads an id of digits only the same in either case (the strings are equal)", () => {
    const words = new Int32Array(4);
    expect(parseUuid("01234567-8901-2345-6789-012345678901", words)).toBe(0);
  });
});

describe("UuidRing", () => {
  it("answers has() exactly as an IdWindow of the same size, for any sequence of adds and lookups", () => {
    // Small rings and a tiny key space: most adds evict, most probe sequences collide, and the
    // backward-shift deletion runs through every case (wrap-around included).
    const key = fc.record({ tenant: fc.integer({ min: 0, max: 2 }), id: fc.integer({ min: 0, max: 40 }) });
    const op = fc.record({ add: fc.boolean(), key });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.integer(), fc.array(op, { maxLength: 300 }), (max, seed, ops) => {
        const ring = new UuidRing(max, seed);
        const reference = new IdWindow<string>(max);
        const words = new Int32Array(4);
        for (const { add, key } of ops) {
          // Ids that differ in one word only, so equal hashes of different keys happen too.
          words[0] = 0;
          words[1] = key.id & 3;
          words[2] = 0;
          words[3] = key.id >> 2;
          if (add) {
            ring.add(key.tenant, words);
            reference.add(String(key.tenant), String(key.id));
          } else {
            expect(ring.has(key.tenant, words)).toBe(reference.has(String(key.tenant), String(key.id)));
          }
          expect(ring.size).toBe(reference.size);
        }
        for (let tenant = 0; tenant <= 2; tenant++) {
          for (let id = 0; id <= 40; id++) {
            words[0] = 0;
            words[1] = id & 3;
            words[2] = 0;
            words[3] = id >> 2;
            expect(ring.has(tenant, words)).toBe(reference.has(String(tenant), String(id)));
          }
        }
      }),
      { numRuns: 500 },
    );
  });

  it("holds exactly the last max keys under a long stream of distinct ones", () => {
    const ring = new UuidRing(1000);
    const words = new Int32Array(4);
    const at = (i: number) => {
      words[0] = i;
      words[1] = i * 7;
      words[2] = ~i;
      words[3] = i ^ 0x5a5a5a5a;
      return words;
    };
    for (let i = 0; i < 50_000; i++) ring.add(0, at(i));
    expect(ring.size).toBe(1000);
    let held = 0;
    for (let i = 0; i < 50_000; i++) if (ring.has(0, at(i))) held++;
    expect(held).toBe(1000);
    for (let i = 49_000; i < 50_000; i++) expect(ring.has(0, at(i))).toBe(true);
  });
});

describe("EventIdWindow", () => {
  it("remembers UUIDs and other ids, per tenant, and tells a UUID from its capitalised text", () => {
    const w = new EventIdWindow(10);
    const id = randomUUID();
    w.add("t1", id);
    w.add("t1", "order-42");
    expect([w.has("t1", id), w.has("t2", id), w.has("t1", id.toUpperCase()), w.has("t1", "order-42"), w.has("t2", "order-42")]).toEqual([
      true,
      false,
      false,
      true,
      false,
    ]);
    w.add("t1", id.toUpperCase());
    expect(w.has("t1", id.toUpperCase())).toBe(true);
    expect(w.size).toBe(3);
  });

  it("forgets the oldest of each kind past max, independently", () => {
    const w = new EventIdWindow(2);
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
    w.add("t", a);
    w.add("t", "x");
    w.add("t", b);
    w.add("t", "y");
    expect([w.has("t", a), w.has("t", b), w.has("t", "x"), w.has("t", "y")]).toEqual([true, true, true, true]);
    w.add("t", c); // evicts a, not "x"
    expect([w.has("t", a), w.has("t", b), w.has("t", c), w.has("t", "x")]).toEqual([false, true, true, true]);
  });

  it("agrees with an IdWindow per kind on random traffic (UUIDs in both cases, custom ids, mixed-case UUIDs)", () => {
    const pool = Array.from({ length: 30 }, () => randomUUID());
    const id = fc.oneof(
      fc.constantFrom(...pool),
      fc.constantFrom(...pool).map((u) => u.toUpperCase()),
      fc.constantFrom(...pool).map((u) => u.slice(0, 9) + u.slice(9).toUpperCase()), // mixed case: not a UUID key
      fc.string({ maxLength: 6 }),
    );
    const op = fc.record({ add: fc.boolean(), tenant: fc.constantFrom("t1", "t2"), id });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(op, { maxLength: 200 }), (max, ops) => {
        const w = new EventIdWindow(max);
        const uuids = new IdWindow(max);
        const others = new IdWindow(max);
        const reference = (i: string) => (parseUuid(i, new Int32Array(4)) === -1 ? others : uuids);
        for (const { add, tenant, id } of ops) {
          if (add) {
            w.add(tenant, id);
            reference(id).add(tenant, id);
          } else {
            expect(w.has(tenant, id)).toBe(reference(id).has(tenant, id));
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});

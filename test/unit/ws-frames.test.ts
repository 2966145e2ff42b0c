import fc from "fast-check";
import { Packr, pack } from "msgpackr";
import { describe, expect, it } from "vitest";
import { hasPoisonKeys } from "../../nodes/edge/decode-body";
import {
  ackFrame,
  CLOSE,
  closeCodeFor,
  decodeClientFrame,
  decodeServerFrame,
  countRecordDefinitions,
  encodeBatchFrame,
  encodeFrame,
  MAX_RECORD_DEFINITIONS,
  errorFrame,
  FrameError,
  RETRYABLE_CODES,
  throttleFrame,
  type FrameEncoding,
} from "../../nodes/edge/ws-frames";

const LIMITS = { maxPayloadBytes: 4096, maxEventsPerBatch: 5, maxDepth: 8 };

const text = (value: string) => new TextEncoder().encode(value);
const json = (value: unknown) => text(JSON.stringify(value));

function decodeError(payload: Uint8Array, isBinary: boolean): FrameError {
  try {
    decodeClientFrame(payload, isBinary, LIMITS);
  } catch (error) {
    if (error instanceof FrameError) return error;
    throw error;
  }
  throw new Error("expected a FrameError");
}

describe("decodeClientFrame", () => {
  it("reads a JSON text frame and a msgpack binary frame alike", () => {
    const frame = { seq: 7, events: [{ event_name: "a", session_id: "s", properties: { n: 1.5, ok: true, tags: ["x"] } }] };
    expect(decodeClientFrame(json(frame), false, LIMITS)).toEqual(frame);
    expect(decodeClientFrame(pack(frame), true, LIMITS)).toEqual(frame);
  });

  it("accepts an empty batch and ignores unknown top-level fields", () => {
    expect(decodeClientFrame(json({ seq: 0, events: [], sdk: "ts/1" }), false, LIMITS)).toEqual({ seq: 0, events: [] });
  });

  it.each([
    ["not JSON", text("{nope"), false, "invalid_frame", CLOSE.invalidPayload, undefined],
    ["not msgpack", new Uint8Array([0xc1]), true, "invalid_frame", CLOSE.invalidPayload, undefined],
    ["msgpack with trailing bytes", new Uint8Array([...pack({ seq: 1, events: [] }), 0x01]), true, "invalid_frame", CLOSE.invalidPayload, undefined],
    ["an array", json([{ seq: 1 }]), false, "invalid_frame", CLOSE.invalidPayload, undefined],
    ["a string", json("hello"), false, "invalid_frame", CLOSE.invalidPayload, undefined],
    ["no seq", json({ events: [] }), false, "invalid_frame", CLOSE.invalidPayload, undefined],
    ["a negative seq", json({ seq: -1, events: [] }), false, "invalid_frame", CLOSE.invalidPayload, undefined],
    ["a fractional seq", json({ seq: 1.5, events: [] }), false, "invalid_frame", CLOSE.invalidPayload, undefined],
    ["a string seq", json({ seq: "1", events: [] }), false, "invalid_frame", CLOSE.invalidPayload, undefined],
    ["events not an array", json({ seq: 3, events: { a: 1 } }), false, "invalid_frame", CLOSE.invalidPayload, 3],
    ["too many events", json({ seq: 4, events: [1, 2, 3, 4, 5, 6] }), false, "too_many_events", CLOSE.tooBig, 4],
    ["a msgpack date", pack({ seq: 5, events: [{ timestamp: new Date(0) }] }), true, "invalid_frame", CLOSE.invalidPayload, 5],
    ["msgpack binary data", pack({ seq: 6, events: [{ blob: Buffer.from("x") }] }), true, "invalid_frame", CLOSE.invalidPayload, 6],
    ["a msgpack bigint", pack({ seq: 8, events: [{ n: 2n ** 60n }] }), true, "invalid_frame", CLOSE.invalidPayload, 8],
    ["a __proto__ key", text('{"seq":9,"events":[{"__proto__":{"admin":true}}]}'), false, "unsafe_json", CLOSE.policyViolation, 9],
    ["constructor.prototype", json({ seq: 10, events: [{ constructor: { prototype: { x: 1 } } }] }), false, "unsafe_json", CLOSE.policyViolation, 10],
    ["deep nesting", json({ seq: 11, events: [{ a: { b: { c: { d: { e: { f: { g: 1 } } } } } } }] }), false, "too_deep", CLOSE.policyViolation, 11],
  ] as const)("refuses %s with a stable code and close code", (_name, payload, isBinary, code, closeCode, seq) => {
    const error = decodeError(payload, isBinary);
    expect({ code: error.code, closeCode: error.closeCode, seq: error.seq }).toEqual({ code, closeCode, seq });
  });

  it("refuses an oversize frame before decoding it", () => {
    const big = json({ seq: 1, events: [{ pad: "x".repeat(LIMITS.maxPayloadBytes) }] });
    const error = decodeError(big, false);
    expect([error.code, error.closeCode]).toEqual(["frame_too_large", CLOSE.tooBig]);
    // A frame exactly at the limit is fine.
    const exact = { seq: 1, events: [{ pad: "" }] };
    const base = JSON.stringify(exact).length;
    const padded = json({ seq: 1, events: [{ pad: "y".repeat(LIMITS.maxPayloadBytes - base) }] });
    expect(padded.length).toBe(LIMITS.maxPayloadBytes);
    expect(decodeClientFrame(padded, false, LIMITS).seq).toBe(1);
  });

  it("decodes from a view into a larger buffer (as uWS hands it)", () => {
    const inner = json({ seq: 2, events: [] });
    const outer = new Uint8Array(inner.length + 10);
    outer.set(inner, 5);
    expect(decodeClientFrame(outer.subarray(5, 5 + inner.length), false, LIMITS)).toEqual({ seq: 2, events: [] });
  });

  it("never throws anything but a FrameError, whatever the bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (bytes, isBinary) => {
        try {
          decodeClientFrame(bytes, isBinary, LIMITS);
        } catch (error) {
          expect(error).toBeInstanceOf(FrameError);
        }
      }),
      { numRuns: 500 },
    );
  });

  it("round-trips any JSON-shaped batch through both encodings", () => {
    const event = fc.dictionary(fc.string({ maxLength: 8 }).filter((k) => k !== "__proto__" && k !== "constructor"), fc.jsonValue({ maxDepth: 3 }), {
      maxKeys: 5,
    });
    fc.assert(
      fc.property(fc.nat(), fc.array(event, { maxLength: LIMITS.maxEventsPerBatch }), fc.constantFrom<FrameEncoding>("json", "msgpack"), (seq, events, encoding) => {
        // Nested values may hold __proto__ keys, which are refused on purpose (tested above).
        fc.pre(!hasPoisonKeys(events));
        const limits = { ...LIMITS, maxPayloadBytes: 1 << 20 };
        const encoded = encodeBatchFrame({ seq, events }, encoding);
        const bytes = typeof encoded === "string" ? text(encoded) : encoded;
        // -0 is not representable in JSON; compare as JSON would.
        expect(decodeClientFrame(bytes, encoding === "msgpack", limits)).toEqual(JSON.parse(JSON.stringify({ seq, events })));
      }),
      { numRuns: 300 },
    );
  });
});

describe("SDK batch frames (msgpackr records)", () => {
  const events = Array.from({ length: 20 }, (_, i) => ({
    event_name: "page_view",
    session_id: "s-1",
    seq: i,
    properties: { path: "/", n: i, nested: { deep: [i, "x"] } },
  }));
  const mapsPackr = new Packr({ useRecords: false });

  it("decode to the same frame as plain msgpack maps, each frame on its own, from fewer bytes", () => {
    const records = encodeBatchFrame({ seq: 1, events }, "msgpack") as Buffer;
    // A second frame of the same shape: it must not lean on structures the first one defined.
    const second = Buffer.from(encodeBatchFrame({ seq: 2, events }, "msgpack") as Buffer);
    const maps = mapsPackr.pack({ seq: 1, events });
    const limits = { ...LIMITS, maxPayloadBytes: 1 << 20, maxEventsPerBatch: 100 };
    expect(decodeClientFrame(records, true, limits)).toEqual(decodeClientFrame(maps, true, limits));
    expect(decodeClientFrame(second, true, limits)).toEqual({ seq: 2, events });
    expect(records.length).toBeLessThan(maps.length * 0.8);
  });

  it("are refused like maps when too deep, and a __proto__ key cannot reach a prototype", () => {
    let deep: unknown = 1;
    for (let i = 0; i < LIMITS.maxDepth + 2; i++) deep = { d: deep };
    expect(() => decodeClientFrame(encodeBatchFrame({ seq: 5, events: [{ event_name: "x", deep }] }, "msgpack") as Buffer, true, LIMITS)).toThrow(
      expect.objectContaining({ code: "too_deep", seq: 5 }),
    );
    const poisoned = JSON.parse('{"event_name":"x","__proto__":{"polluted":true}}') as Record<string, unknown>;
    const frame = decodeClientFrame(encodeBatchFrame({ seq: 6, events: [poisoned] }, "msgpack") as Buffer, true, LIMITS);
    const event = frame.events[0] as Record<string, unknown>;
    expect(Object.getPrototypeOf(event)).toBe(Object.prototype);
    expect(event.polluted).toBeUndefined();
  });
});

describe("msgpack record definitions in client frames", () => {
  /** `n` events whose properties all have a different key: n record shapes, each used 4 times. */
  const manyShapes = (n: number) =>
    Array.from({ length: n * 4 }, (_, i) => ({ event_name: "x", properties: { [`k${Math.floor(i / 4)}`]: i } }));
  const roomy = { ...LIMITS, maxPayloadBytes: 1 << 22, maxEventsPerBatch: 1 << 20 };

  it("are counted in msgpackr's output (fixext 1 and 2 headers), and absent from plain maps", () => {
    const few = new Packr({ useRecords: true }).pack({ seq: 1, events: manyShapes(3) });
    // The frame, the event and three property shapes.
    expect(countRecordDefinitions(few)).toBe(5);
    // Past 64 shapes msgpackr's ids take a second byte (fixext 2): still counted. (It also
    // defines a shape again when its id slot was reused: a few more than 202.)
    const many = new Packr({ useRecords: true }).pack({ seq: 1, events: manyShapes(200) });
    expect(countRecordDefinitions(many, Infinity)).toBeGreaterThanOrEqual(202);
    expect(countRecordDefinitions(many, Infinity)).toBeLessThan(212);
    expect(countRecordDefinitions(many, 20)).toBe(21);
    expect(countRecordDefinitions(new Packr({ useRecords: false }).pack({ seq: 1, events: manyShapes(200) }))).toBe(0);
  });

  it("past the limit refuse the frame before decoding it", () => {
    const bomb = new Packr({ useRecords: true }).pack({ seq: 9, events: manyShapes(MAX_RECORD_DEFINITIONS) });
    expect(() => decodeClientFrame(bomb, true, roomy)).toThrow(
      expect.objectContaining({ code: "invalid_frame", message: expect.stringMatching(/record shapes; send plain maps/) }),
    );
    const under = new Packr({ useRecords: true }).pack({ seq: 9, events: manyShapes(MAX_RECORD_DEFINITIONS - 16) });
    expect(countRecordDefinitions(under)).toBeLessThanOrEqual(MAX_RECORD_DEFINITIONS);
    expect(decodeClientFrame(under, true, roomy).events).toHaveLength((MAX_RECORD_DEFINITIONS - 16) * 4);
  });

  it("the SDK sends plain maps when its events have too many shapes for records", () => {
    const events = manyShapes(MAX_RECORD_DEFINITIONS * 2);
    const encoded = encodeBatchFrame({ seq: 3, events }, "msgpack") as Buffer;
    expect(countRecordDefinitions(encoded)).toBe(0);
    expect(decodeClientFrame(encoded, true, roomy)).toEqual({ seq: 3, events });
  });
});

describe("server frames", () => {
  it.each<FrameEncoding>(["json", "msgpack"])("encode and decode ack, error and throttle frames (%s)", (encoding) => {
    const frames = [
      ackFrame(3, { accepted: 2, duplicates: 1, rejected: [{ index: 0, errors: ["event_name is required"] }] }),
      errorFrame("rate_limited", undefined, 4),
      errorFrame("invalid_frame", "Text frame is not valid JSON"),
      throttleFrame(1234.2),
    ];
    for (const frame of frames) {
      const encoded = encodeFrame(frame, encoding);
      expect(typeof encoded === "string").toBe(encoding === "json");
      expect(decodeServerFrame(encoded)).toEqual(frame);
    }
    expect(frames[0]).toEqual({ ack: 3, accepted: 2, duplicates: 1, rejected: [{ index: 0, errors: ["event_name is required"] }] });
    expect(frames[1]).toEqual({ error: { code: "rate_limited", message: "Rate limit exceeded", seq: 4 } });
    expect(frames[2]).toEqual({ error: { code: "invalid_frame", message: "Text frame is not valid JSON" } });
    expect(frames[3]).toEqual({ throttle: { retry_after_ms: 1235 } });
    expect(throttleFrame(0)).toEqual({ throttle: { retry_after_ms: 1 } });
  });

  it("refuses server frames that are none of the three", () => {
    expect(() => decodeServerFrame("{}")).toThrow(/not an ack/);
    expect(() => decodeServerFrame('{"ack":-1,"rejected":[]}')).toThrow(/not an ack/);
    expect(() => decodeServerFrame("nope")).toThrow(/not valid/);
  });

  it("maps codes to close codes and knows which are retryable", () => {
    expect(closeCodeFor("invalid_frame")).toBe(1007);
    expect(closeCodeFor("frame_too_large")).toBe(1009);
    expect(closeCodeFor("too_many_events")).toBe(1009);
    expect(closeCodeFor("unsafe_json")).toBe(1008);
    expect(closeCodeFor("too_many_inflight")).toBe(1013);
    expect([...RETRYABLE_CODES].sort()).toEqual(["rate_limited", "shutting_down", "too_many_inflight", "unavailable"]);
  });
});

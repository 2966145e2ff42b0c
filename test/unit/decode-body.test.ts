import zlib from "node:zlib";
import { describe, expect, it } from "vitest";
import { IngestError, type ErrorCode } from "../../actors/common/errors";
import { decompress, depthExceeds, hasPoisonKeys, parseBody, type DecodeLimits } from "../../nodes/edge/decode-body";

/** The raw events of a body (parseBody without its `sent_at`). */
const parseEvents = (text: string, limits: DecodeLimits): unknown[] => parseBody(text, limits).events;

const CAP = 512 * 1024;
const LIMITS = { maxBodyBytes: CAP, maxDepth: 32 };

function codeOf(fn: () => unknown): ErrorCode | "no error" | string {
  try {
    fn();
    return "no error";
  } catch (error) {
    if (error instanceof IngestError) return error.code;
    return `not an IngestError: ${String(error)}`;
  }
}

describe("decompress", () => {
  const body = Buffer.from(JSON.stringify({ events: [{ event: "click", n: 1 }] }));

  it.each([undefined, "", "identity", " Identity ", "IDENTITY"])("passes the body through for encoding %j", (enc) => {
    expect(decompress(body, enc, CAP)).toBe(body);
  });

  it.each(["gzip", "GZIP", " gzip ", "x-gzip"])("gzip round trip with encoding %j", (enc) => {
    const out = decompress(zlib.gzipSync(body), enc, CAP);
    expect(out.equals(body)).toBe(true);
    expect(JSON.parse(out.toString("utf8"))).toEqual({ events: [{ event: "click", n: 1 }] });
  });

  it("a body that inflates to exactly the cap is accepted", () => {
    const exact = Buffer.alloc(CAP, 0x61);
    expect(decompress(zlib.gzipSync(exact), "gzip", CAP).length).toBe(CAP);
  });

  it("a body one byte over the cap is payload_too_large", () => {
    const over = Buffer.alloc(CAP + 1, 0x61);
    expect(codeOf(() => decompress(zlib.gzipSync(over), "gzip", CAP))).toBe("payload_too_large");
  });

  it("a gzip bomb (50 MB of zeros) against a 512 KB cap throws payload_too_large quickly", () => {
    const bomb = zlib.gzipSync(Buffer.alloc(50 * 1024 * 1024), { level: 9 });
    expect(bomb.length).toBeLessThan(100 * 1024);
    const started = performance.now();
    let caught: unknown;
    try {
      decompress(bomb, "gzip", CAP);
    } catch (error) {
      caught = error;
    }
    const elapsed = performance.now() - started;
    expect(caught).toBeInstanceOf(IngestError);
    expect((caught as IngestError).code).toBe("payload_too_large");
    expect((caught as IngestError).status).toBe(413);
    expect((caught as IngestError).message).toBe(`Decoded body exceeds ${CAP} bytes`);
    // Inflation stops at the cap: far less than inflating 50 MB would take.
    expect(elapsed).toBeLessThan(250);
  });

  it.each([
    ["not gzip at all", Buffer.from("plain text, not gzip")],
    ["empty", Buffer.alloc(0)],
    ["truncated gzip", zlib.gzipSync(Buffer.from("hello world, hello world")).subarray(0, 12)],
    ["deflate, not gzip", zlib.deflateSync(Buffer.from("hello"))],
  ])("invalid gzip (%s) → invalid_body", (_name, buf) => {
    expect(codeOf(() => decompress(buf, "gzip", CAP))).toBe("invalid_body");
  });

  it.each(["deflate", "br", "compress", "zstd", "gzip, br", "bogus"])("unknown encoding %j → unsupported_encoding", (enc) => {
    let caught: unknown;
    try {
      decompress(body, enc, CAP);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(IngestError);
    expect((caught as IngestError).code).toBe("unsupported_encoding");
    expect((caught as IngestError).status).toBe(415);
  });
});

describe("parseEvents: shapes", () => {
  it.each([
    ["{events}", '{"events":[{"event":"a"},{"event":"b"}]}', [{ event: "a" }, { event: "b" }]],
    ["{batch}", '{"batch":[{"event":"a"}]}', [{ event: "a" }]],
    ["bare array", '[{"event":"a"},{"event":"b"}]', [{ event: "a" }, { event: "b" }]],
    ["single object", '{"event":"a","x":1}', [{ event: "a", x: 1 }]],
    ["empty events", '{"events":[]}', []],
    ["empty array", "[]", []],
    ["events wins over batch", '{"events":[1],"batch":[2]}', [1]],
    ["non-object items are passed on for per-event rejection", '{"events":[1,"x",null]}', [1, "x", null]],
    ["whitespace around", '  \n {"events":[{"event":"a"}]} \n', [{ event: "a" }]],
  ])("%s", (_name, text, expected) => {
    expect(parseEvents(text, LIMITS)).toEqual(expected);
  });

  it.each([
    ['{"events":"x"}', '"events" must be an array'],
    ['{"events":{"event":"a"}}', '"events" must be an array'],
    ['{"events":null}', '"events" must be an array'],
    ['{"batch":5}', '"events" must be an array'],
    ["42", 'Request body must be {"events":[...]}'],
    ['"text"', 'Request body must be {"events":[...]}'],
    ["null", 'Request body must be {"events":[...]}'],
    ["true", 'Request body must be {"events":[...]}'],
  ])("%s → invalid_body", (text, message) => {
    let caught: unknown;
    try {
      parseEvents(text, LIMITS);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(IngestError);
    expect((caught as IngestError).code).toBe("invalid_body");
    expect((caught as IngestError).status).toBe(400);
    expect((caught as IngestError).message).toBe(message);
  });

  it.each(["", "{", "{'events':[]}", '{"events":[1,]}', "undefined", "NaN", '{"a":1}{"b":2}', "\u0000"])(
    "invalid JSON %j → invalid_json",
    (text) => {
      expect(codeOf(() => parseEvents(text, LIMITS))).toBe("invalid_json");
    },
  );
});

describe("parseBody: sent_at", () => {
  const LIM = { maxBodyBytes: 1 << 20, maxDepth: 32 };

  it("reads a batch's sent_at (or Segment's sentAt) as ISO-8601 or epoch ms", () => {
    expect(parseBody('{"events":[{"e":1}],"sent_at":"2026-02-13T20:00:00.250Z"}', LIM)).toEqual({ events: [{ e: 1 }], sentAt: Date.UTC(2026, 1, 13, 20, 0, 0, 250) });
    expect(parseBody('{"batch":[],"sentAt":1771012800000}', LIM).sentAt).toBe(1_771_012_800_000);
    expect(parseBody('{"events":[],"sent_at":null}', LIM).sentAt).toBeUndefined();
  });

  it("has none for a bare array or a single event (whose sent_at stays one of its fields)", () => {
    expect(parseBody("[{}]", LIM).sentAt).toBeUndefined();
    expect(parseBody('{"event_name":"x","sent_at":5}', LIM)).toEqual({ events: [{ event_name: "x", sent_at: 5 }], sentAt: undefined });
  });

  it.each(['"yesterday"', "-1", "1.5", "true", '{"t":1}', '"2026-02-30T00:00:00Z"'])("refuses sent_at %s with invalid_body", (value) => {
    let caught: unknown;
    try {
      parseBody(`{"events":[],"sent_at":${value}}`, LIM);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(IngestError);
    expect((caught as IngestError).code).toBe("invalid_body");
    expect((caught as IngestError).message).toBe("sent_at must be an ISO-8601 string or epoch milliseconds");
  });
});

describe("parseEvents: prototype poisoning", () => {
  it.each([
    '{"__proto__":{"x":1}}',
    '{"a":{"constructor":{"prototype":{}}}}',
    '{"events":[{"event":"a","__proto__":{"polluted":true}}]}',
    '{"events":[{"event":"a","properties":{"deep":{"__proto__":{}}}}]}',
    '{"events":[{"event":"a","properties":{"constructor":{"prototype":{"polluted":true}}}}]}',
    '[{"event":"a"},{"event":"b","list":[{"constructor":{"prototype":1}}]}]',
  ])("%s → unsafe_json", (text) => {
    expect(codeOf(() => parseEvents(text, LIMITS))).toBe("unsafe_json");
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it.each([
    '{"events":[{"event":"a","properties":{"prototype":"text"}}]}',
    '{"events":[{"event":"a","prototype":"text"}]}',
    '{"events":[{"event":"a","properties":{"constructor":"text"}}]}',
    '{"events":[{"event":"a","properties":{"constructor":{"name":"x"}}}]}',
    '{"events":[{"event":"a","note":"__proto__ in a string value is fine"}]}',
    '{"events":[{"event":"a","properties":{"prototype":{"constructor":1}}}]}',
  ])("harmless use of the words is fine: %s", (text) => {
    expect(parseEvents(text, LIMITS)).toEqual((JSON.parse(text) as { events: unknown[] }).events);
  });

  it("hasPoisonKeys checks own keys only", () => {
    expect(hasPoisonKeys({})).toBe(false);
    expect(hasPoisonKeys({ a: { b: [1, { c: 2 }] } })).toBe(false);
    expect(hasPoisonKeys(JSON.parse('{"__proto__":1}'))).toBe(true);
    expect(hasPoisonKeys({ constructor: { prototype: {} } })).toBe(true);
    expect(hasPoisonKeys([[[{ constructor: { prototype: 0 } }]]])).toBe(true);
    expect(hasPoisonKeys(null)).toBe(false);
    expect(hasPoisonKeys("__proto__")).toBe(false);
  });

  // BUG (nodes/edge/decode-body.ts parseBody, the `text.includes(...)` pre-check): JSON
  // escapes spell the key without the literal text, JSON.parse still yields an own "__proto__"
  // (or "prototype") key, and the poison scan is skipped.
  it.each([String.raw`{"\u005f_proto__":{"x":1}}`, String.raw`{"a":{"constructor":{"prot\u006ftype":{}}}}`])(
    "unicode-escaped poison key %s → unsafe_json",
    (text) => {
      expect(codeOf(() => parseEvents(text, LIMITS))).toBe("unsafe_json");
    },
  );
});

describe("parseEvents: depth", () => {
  /** {"events":[{"event":"a","p":{"p":{...}}}]}: body depth = 3 + nested */
  function nested(levels: number): string {
    return `{"events":[{"event":"a","p":${'{"p":'.repeat(levels)}1${"}".repeat(levels)}}]}`;
  }

  it.each([
    // [maxDepth, nested levels inside the event, ok?]
    [3, 0, true],
    [2, 0, false],
    [4, 1, true],
    [3, 1, false],
    [32, 29, true],
    [32, 30, false],
  ])("maxDepth %i with %i nested objects inside an event → ok=%s", (maxDepth, levels, accepted) => {
    const text = nested(levels);
    const code = codeOf(() => parseEvents(text, { maxBodyBytes: CAP, maxDepth }));
    expect(code).toBe(accepted ? "no error" : "too_deep");
  });

  it("too_deep carries the limit in its message", () => {
    let caught: unknown;
    try {
      parseEvents("[[[[1]]]]", { maxBodyBytes: CAP, maxDepth: 3 });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(IngestError);
    expect((caught as IngestError).code).toBe("too_deep");
    expect((caught as IngestError).message).toBe("Body nests deeper than 3 levels");
  });

  it("arrays count as levels, primitives do not", () => {
    expect(depthExceeds(1, 0)).toBe(false);
    expect(depthExceeds([], 1)).toBe(false);
    expect(depthExceeds([[]], 1)).toBe(true);
    expect(depthExceeds({ a: [1, 2, "x"] }, 2)).toBe(false);
    expect(depthExceeds({ a: [1, { b: 1 }] }, 2)).toBe(true);
  });

  it("a 512 KB body of nested arrays is too_deep, not a crash", () => {
    const half = 200_000;
    const text = "[".repeat(half) + "]".repeat(half);
    expect(codeOf(() => parseEvents(text, LIMITS))).toBe("too_deep");
  });

  // BUG (nodes/edge/decode-body.ts parseBody/hasPoisonKeys): the unbounded recursive poison scan
  // runs before the depth check, so deep nesting plus the word "prototype" anywhere overflows the
  // stack (RangeError → 500) instead of answering too_deep.
  it("deep nesting that also holds the word prototype is too_deep, not a stack overflow", () => {
    const half = 200_000;
    const text = "[".repeat(half) + '"prototype"' + "]".repeat(half);
    expect(text.length).toBeLessThan(CAP);
    expect(codeOf(() => parseEvents(text, LIMITS))).toBe("too_deep");
  });
});

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { tsvField } from "../../actors/storage-writer/clickhouse/sql";
import { ChunkWriter, fieldBytesBound, NUMBER_BYTES_BOUND, writeField, writeInteger, writeJsonText } from "../../actors/storage-writer/clickhouse/tsv-writer";
import { encodeInsertBody, toEventRow, type EventRow } from "../../actors/storage-writer/clickhouse/clickhouse-sink";
import { rowFromLine, splitRows, unescapeTsvField } from "../../actors/storage-writer/clickhouse/tsv-reader";
import type { IngestEvent } from "../../actors/common/event";
import { referenceTsvRow } from "../support/tsv-row";

/** Any UTF-16 text, lone surrogates and the control characters TSV escapes included. */
const anyText = fc.oneof(
  fc.string({ unit: "binary" }),
  fc.string({ unit: fc.constantFrom("a", "\\", "\t", "\n", "\r", "\0", "\b", "\f", "\u0001", "é", "€", "\ud83d", "\ude00", "😀", "N") }),
);

function fieldBytes(value: string): Buffer {
  const buf = Buffer.alloc(fieldBytesBound(value.length) + 1, 0xee);
  const end = writeField(buf, 0, value);
  expect(end).toBeLessThanOrEqual(fieldBytesBound(value.length));
  return buf.subarray(0, end);
}

describe("writeField", () => {
  it("writes the UTF-8 of tsvField(value), within fieldBytesBound, for any text", () => {
    fc.assert(
      fc.property(anyText, (value) => {
        expect(fieldBytes(value).equals(Buffer.from(tsvField(value), "utf8"))).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it("escapes what TabSeparated reads as structure", () => {
    expect(fieldBytes("a\tb\nc\\d\r\0\b\f").toString("latin1")).toBe("a\\tb\\nc\\\\d\\r\\0\\b\\f");
    expect(fieldBytes("\\N").toString("latin1")).toBe("\\\\N");
    expect(fieldBytes("").length).toBe(0);
  });

  it("writes at the offset and leaves the bytes around it alone", () => {
    const buf = Buffer.alloc(20, 0x2e);
    expect(writeField(buf, 3, "é\t")).toBe(3 + 2 + 2);
    expect(buf.toString("utf8")).toBe("...é\\t" + ".".repeat(13));
  });
});

describe("writeJsonText", () => {
  /** Any JSON value's text as JSON.stringify writes it, strings of any UTF-16 units included. */
  const anyJson = fc.jsonValue().chain((value) =>
    fc.oneof(fc.constant(value), fc.dictionary(anyText, anyText).map((obj) => ({ obj, value }))),
  ).map((value) => JSON.stringify(value));

  it("writes what writeField writes for any JSON.stringify output, at the offset, within its bound", () => {
    fc.assert(
      fc.property(anyJson, fc.integer({ min: 0, max: 7 }), (json, offset) => {
        const size = offset + fieldBytesBound(json.length) + 4;
        const viaJson = Buffer.alloc(size, 0xee);
        const viaField = Buffer.alloc(size, 0xee);
        const end = writeJsonText(viaJson, offset, json);
        expect(end).toBe(writeField(viaField, offset, json));
        expect(end - offset).toBeLessThanOrEqual(fieldBytesBound(json.length));
        expect(viaJson.equals(viaField)).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it("escapes the backslashes of JSON's own escapes", () => {
    const json = JSON.stringify({ q: 'say "hi"\n', t: "\t" });
    const buf = Buffer.alloc(fieldBytesBound(json.length));
    expect(buf.toString("utf8", 0, writeJsonText(buf, 0, json))).toBe(tsvField(json));
    expect(buf.toString("utf8", 0, writeJsonText(buf, 0, json))).toBe('{"q":"say \\\\\"hi\\\\\"\\\\n","t":"\\\\t"}');
  });
});

describe("writeInteger", () => {
  it("writes String(value) for any number", () => {
    fc.assert(
      fc.property(fc.oneof(fc.maxSafeInteger(), fc.integer(), fc.double()), (value) => {
        const buf = Buffer.alloc(NUMBER_BYTES_BOUND);
        const end = writeInteger(buf, 0, value);
        expect(buf.toString("latin1", 0, end)).toBe(String(value));
      }),
      { numRuns: 3000 },
    );
    const edges = [0, 9, 10, 99, 100, -1, -10, 99_999_999, 100_000_000, 100_000_001, -100_000_007, 1_700_000_000_005, 2 ** 31, 2 ** 31 - 1];
    for (const value of [...edges, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 8_640_000_000_000_000, -0]) {
      const buf = Buffer.alloc(NUMBER_BYTES_BOUND);
      expect(buf.toString("latin1", 0, writeInteger(buf, 0, value))).toBe(String(value));
    }
  });
});

describe("ChunkWriter", () => {
  it("keeps reserved room in one chunk and counts the bytes", () => {
    const out = new ChunkWriter(8);
    out.reserve(5);
    out.offset += out.buf.write("abcde", out.offset);
    out.reserve(5); // 3 left: a new chunk
    out.offset += out.buf.write("fghij", out.offset);
    out.reserve(20); // bigger than a chunk: a chunk of its own size
    out.offset += out.buf.write("k".repeat(20), out.offset);
    expect(out.bytes).toBe(30);
    expect(out.finish().map((c) => c.toString())).toEqual(["abcde", "fghij", "k".repeat(20)]);
  });
});

describe("encodeInsertBody without a formatter (writeEventRow)", () => {
  const event = fc.record({
    tenant_id: anyText,
    event_id: anyText,
    event_name: anyText,
    session_id: anyText,
    seq: fc.option(fc.maxSafeNat(), { nil: null }),
    user_id: fc.option(anyText, { nil: null }),
    channel: fc.option(anyText, { nil: null }),
    timestamp: fc.maxSafeNat(),
    received_at: fc.maxSafeNat(),
    properties: fc.dictionary(anyText, fc.oneof(anyText, fc.integer(), fc.boolean(), fc.constant(null)), { maxKeys: 4 }),
  }) as fc.Arbitrary<IngestEvent>;

  it("is byte for byte the UTF-8 of referenceTsvRow's lines, for any events", () => {
    fc.assert(
      fc.property(fc.array(event, { maxLength: 30 }), fc.maxSafeNat(), (events, insertedAt) => {
        const body = encodeInsertBody(events, insertedAt);
        const expected = Buffer.from(events.map((e) => referenceTsvRow(e, insertedAt) + "\n").join(""), "utf8");
        expect(Buffer.concat(body.chunks).equals(expected)).toBe(true);
        expect(body.bytes).toBe(expected.length);
        expect(body.rows).toBe(events.length);
      }),
      { numRuns: 500 },
    );
  });

  it("reads back (splitRows, rowFromLine) as the rows toEventRow spells, for any events", () => {
    fc.assert(
      fc.property(fc.array(event, { maxLength: 30 }), fc.maxSafeNat(), (events, insertedAt) => {
        const lines = splitRows(encodeInsertBody(events, insertedAt).chunks);
        // Text goes out as UTF-8, where a lone surrogate becomes U+FFFD: expect what UTF-8 keeps.
        const asUtf8 = (row: EventRow) =>
          Object.fromEntries(Object.entries(row).map(([k, v]) => [k, typeof v === "string" ? Buffer.from(v).toString() : v]));
        expect(lines.map(rowFromLine)).toEqual(events.map((e) => asUtf8(toEventRow(e, insertedAt))));
      }),
      { numRuns: 500 },
    );
  });
});

describe("splitRows and rowFromLine", () => {
  it("splits chunks of whole rows into views of each row", () => {
    const rows = splitRows([Buffer.from("a\tb\nc\n"), Buffer.from("d\n"), Buffer.from("tail")]);
    expect(rows.map((r) => r.toString())).toEqual(["a\tb\n", "c\n", "d\n", "tail"]);
  });

  it("keeps a field that does not fit its column as text, and fields beyond the columns", () => {
    const line = Buffer.from("t\te\\\\1\ts\t\\N\tclick\t\t\tnot a number\t5\t{}\t7\textra\n");
    expect(rowFromLine(line)).toEqual({
      tenant_id: "t",
      event_id: "e\\1",
      session_id: "s",
      seq: null,
      event_name: "click",
      user_id: "",
      channel: "",
      timestamp: "not a number",
      received_at: 5,
      properties: "{}",
      inserted_at: 7,
      extra_fields: ["extra"],
    });
    expect(rowFromLine(Buffer.from("only\ttwo\n"))).toEqual({ tenant_id: "only", event_id: "two" });
  });

  it("undoes every escape tsvField makes", () => {
    const text = "back\\slash\ttab\nline\rcr\0nul\bbs\fff ✓";
    expect(unescapeTsvField(tsvField(text))).toBe(text);
    // An escaped backslash before N is the text \N; only the bare \N is NULL.
    expect(unescapeTsvField(tsvField("\\N"))).toBe("\\N");
    expect(unescapeTsvField("\\N")).toBeNull();
  });
});

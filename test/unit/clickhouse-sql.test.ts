import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { ClickHouseError } from "@clickhouse/client";
import {
  assertSafeIdentifier,
  isSafeIdentifier,
  qualifiedName,
  quoteIdentifier,
  quoteString,
  tsvField,
} from "../../actors/storage-writer/clickhouse/sql";
import { expiredPartitions, partitionDayMs } from "../../actors/storage-writer/clickhouse/retention";
import { encodeInsertBody, toEventRow } from "../../actors/storage-writer/clickhouse/clickhouse-sink";
import { clickHouseErrorCode, errorText, isDataError, outcomeUnknown } from "../../actors/storage-writer/clickhouse/server-errors";
import { everyRowFound, landedRowsSql, rowKeysOf, type RowKey } from "../../actors/storage-writer/clickhouse/lost-answer";
import { EVENT_INSERT_COLUMNS, eventsTableSql } from "../../actors/storage-writer/clickhouse/migrations";
import type { IngestEvent } from "../../actors/common/event";
import { referenceTsvRow } from "../support/tsv-row";

/**
 * Reads one quoted token the way ClickHouse's lexer does (quote, backslash escapes, the closing
 * quote), returning the value and where the token ended. Used to prove that a quoted value is
 * exactly one token and decodes back to the input.
 */
function readQuoted(text: string, quote: string): { value: string; end: number } {
  expect(text[0]).toBe(quote);
  let out = "";
  let i = 1;
  while (i < text.length) {
    const ch = text[i] as string;
    if (ch === quote) return { value: out, end: i + 1 };
    if (ch === "\\") {
      const next = text[i + 1] as string;
      const simple: Record<string, string> = { n: "\n", t: "\t", r: "\r", "0": "\0", b: "\b", f: "\f", "\\": "\\", "'": "'", "`": "`" };
      if (next === "x") {
        out += String.fromCharCode(parseInt(text.slice(i + 2, i + 4), 16));
        i += 4;
        continue;
      }
      if (!(next in simple)) throw new Error(`unexpected escape \\${next}`);
      out += simple[next];
      i += 2;
      continue;
    }
    out += ch;
    i += 1;
  }
  throw new Error("unterminated literal");
}

describe("quoteString", () => {
  it.each([
    ["plain", "'plain'"],
    ["", "''"],
    ["it's", "'it\\'s'"],
    ["a\\b", "'a\\\\b'"],
    ["\\'", "'\\\\\\''"],
    ["x'; DROP TABLE t; --", "'x\\'; DROP TABLE t; --'"],
    ["line\nbreak\ttab\rcr", "'line\\nbreak\\ttab\\rcr'"],
    ["nul\0byte", "'nul\\0byte'"],
    ["\x01\x1f\x7f", "'\\x01\\x1f\\x7f'"],
    ["back`tick", "'back\\`tick'"],
    ["ünïcødé ✓ 日本 😀", "'ünïcødé ✓ 日本 😀'"],
  ])("quotes %j as %s", (input, expected) => {
    expect(quoteString(input)).toBe(expected);
  });

  it("leaves no raw control character or unescaped quote in the literal", () => {
    const q = quoteString("a\u0000b\u0007c\u001bd\u007fe'f\\g");
    // eslint-disable-next-line no-control-regex
    expect(q).not.toMatch(/[\u0000-\u001f\u007f]/);
    expect(readQuoted(q, "'")).toEqual({ value: "a\u0000b\u0007c\u001bd\u007fe'f\\g", end: q.length });
  });

  it("is one token that decodes back to the input, for any string", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), (s) => {
        const q = quoteString(s);
        const { value, end } = readQuoted(q, "'");
        expect(end).toBe(q.length);
        expect(value).toBe(s);
      }),
      { numRuns: 2_000 },
    );
  });
});

describe("quoteIdentifier", () => {
  it("backquotes and escapes", () => {
    expect(quoteIdentifier("events")).toBe("`events`");
    expect(quoteIdentifier("we`ird")).toBe("`we\\`ird`");
    expect(quoteIdentifier("a\\b")).toBe("`a\\\\b`");
    expect(quoteIdentifier("new\nline")).toBe("`new\\nline`");
    expect(qualifiedName("ingest", "events")).toBe("`ingest`.`events`");
  });

  it("refuses an empty name", () => {
    expect(() => quoteIdentifier("")).toThrow(/empty/);
  });

  it("is one token that decodes back to the input, for any non-empty string", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", minLength: 1 }), (s) => {
        const q = quoteIdentifier(s);
        const { value, end } = readQuoted(q, "`");
        expect(end).toBe(q.length);
        expect(value).toBe(s);
      }),
    );
  });
});

describe("isSafeIdentifier", () => {
  it.each(["ingest", "_x", "A1_b2", "x".repeat(200)])("accepts %s", (name) => {
    expect(isSafeIdentifier(name)).toBe(true);
    expect(() => assertSafeIdentifier(name, "db")).not.toThrow();
  });

  it.each(["", "1abc", "in-gest", "a b", "a.b", "a`b", "a;b", "db\n", "ïngest", "a'b", "a\0"])("rejects %j", (name) => {
    expect(isSafeIdentifier(name)).toBe(false);
    expect(() => assertSafeIdentifier(name, "ClickHouse database")).toThrow(/ClickHouse database must match/);
  });
});

describe("retention partition selection", () => {
  const at = (iso: string): number => Date.parse(iso);

  it("drops days before today - retentionDays, keeps the rest", () => {
    const ids = ["20240229", "20240301", "20240302", "20240331"];
    expect(expiredPartitions(ids, at("2024-03-31T00:00:00Z"), 30)).toEqual(["20240229"]);
    expect(expiredPartitions(ids, at("2024-03-31T23:59:59.999Z"), 30)).toEqual(["20240229"]);
    expect(expiredPartitions(ids, at("2024-04-01T00:00:00Z"), 30)).toEqual(["20240229", "20240301"]);
  });

  it("uses UTC days regardless of the time of day", () => {
    // 40 days before 2024-05-10 is 2024-03-31.
    expect(expiredPartitions(["20240331", "20240409", "20240410"], at("2024-05-10T12:00:00Z"), 30)).toEqual([
      "20240331",
      "20240409",
    ]);
  });

  it("never drops today, or ids it does not understand", () => {
    const now = at("2024-06-15T10:00:00Z");
    expect(expiredPartitions(["20240615", "20240614"], now, 1)).toEqual([]);
    expect(expiredPartitions(["20240613"], now, 1)).toEqual(["20240613"]);
    expect(expiredPartitions(["all", "2024061", "202406130", "20240230", "20241301", "x0240101", "'; DROP"], now, 1)).toEqual([]);
  });

  it("deduplicates and sorts", () => {
    expect(expiredPartitions(["20200102", "20200101", "20200102"], at("2024-01-01T00:00:00Z"), 30)).toEqual([
      "20200101",
      "20200102",
    ]);
  });

  it("rejects a retention below one day", () => {
    expect(() => expiredPartitions([], 0, 0)).toThrow(/retentionDays/);
    expect(() => expiredPartitions([], 0, 1.5)).toThrow(/retentionDays/);
    expect(() => expiredPartitions([], 0, -3)).toThrow(/retentionDays/);
  });

  it("parses partition ids strictly", () => {
    expect(partitionDayMs("20240229")).toBe(Date.UTC(2024, 1, 29));
    expect(partitionDayMs("20230229")).toBeUndefined();
    expect(partitionDayMs("19700101")).toBe(0);
  });
});

describe("ClickHouse error classification", () => {
  // Real 18.16 error bodies (plain Error: the client cannot parse them into ClickHouseError).
  const old = (body: string): Error => new Error(body);

  it("reads codes from 18.16 text and from ClickHouseError", () => {
    expect(
      clickHouseErrorCode(old("Code: 72, e.displayText() = DB::Exception: Unsigned type must not contain '-' symbol: (at row 1)\n, e.what() = DB::Exception\n")),
    ).toBe(72);
    expect(clickHouseErrorCode(new ClickHouseError({ message: "x", code: "27", type: "CANNOT_PARSE_INPUT_ASSERTION_FAILED" }))).toBe(27);
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" });
    expect(clickHouseErrorCode(refused)).toBeUndefined();
    expect(clickHouseErrorCode(new Error("Timeout error."))).toBeUndefined();
    expect(clickHouseErrorCode("Code: 27")).toBeUndefined();
  });

  it("treats parse errors as data errors and everything else as retryable", () => {
    expect(isDataError(old("Code: 27, e.displayText() = DB::Exception: Cannot parse input: expected , before: .5"))).toBe(true);
    expect(isDataError(old("Code: 26, e.displayText() = DB::Exception: Cannot parse JSON string"))).toBe(true);
    expect(isDataError(old("Code: 117, e.displayText() = DB::Exception: Unknown field found while parsing JSONEachRow format: bogus"))).toBe(true);
    // Unknown table, memory limit, too many simultaneous queries, "too many parts": retry.
    expect(isDataError(old("Code: 60, e.displayText() = DB::Exception: Table ingest.events doesn't exist."))).toBe(false);
    expect(isDataError(old("Code: 241, e.displayText() = DB::Exception: Memory limit exceeded"))).toBe(false);
    expect(isDataError(old("Code: 202, e.displayText() = DB::Exception: Too many simultaneous queries"))).toBe(false);
    expect(isDataError(new ClickHouseError({ message: "Too many parts (300). Merges are processing significantly slower than inserts", code: "252", type: "TOO_MANY_PARTS" }))).toBe(false);
    expect(isDataError(new ClickHouseError({ message: "Too many partitions for single INSERT block (more than 100).", code: "252", type: "TOO_MANY_PARTS" }))).toBe(true);
    expect(isDataError(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }))).toBe(false);
  });

  it("leaves an insert's outcome open only when the connection was made and the server gave no answer of its own", () => {
    // A reset, a hang-up, a timeout: the server may have committed the insert.
    expect(outcomeUnknown(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }))).toBe(true);
    expect(outcomeUnknown(new Error("Timeout error."))).toBe(true);
    // The server's own refusal, in either generation's shape, is definite.
    expect(outcomeUnknown(old("Code: 241, e.displayText() = DB::Exception: Memory limit exceeded"))).toBe(false);
    expect(outcomeUnknown(new ClickHouseError({ message: "Too many parts", code: "252", type: "TOO_MANY_PARTS" }))).toBe(false);
    // No connection, nothing sent.
    for (const code of ["ECONNREFUSED", "ENOTFOUND", "EHOSTUNREACH"]) {
      expect(outcomeUnknown(Object.assign(new Error(`connect ${code}`), { code }))).toBe(false);
    }
  });

  it("formats error text the same way for both server generations", () => {
    expect(errorText(new ClickHouseError({ message: "Cannot parse input ", code: "27", type: "CANNOT_PARSE_INPUT_ASSERTION_FAILED" }))).toBe(
      "Code: 27. DB::Exception: Cannot parse input (CANNOT_PARSE_INPUT_ASSERTION_FAILED)",
    );
    expect(errorText(old("Code: 72, e.displayText() = DB::Exception: x\n"))).toBe("Code: 72, e.displayText() = DB::Exception: x");
    expect(errorText(new Error("y".repeat(10_000))).length).toBeLessThan(4_200);
  });
});

/** The line the sink writes for one event, without its newline. */
function sinkLine(event: IngestEvent, insertedAt: number): string {
  const body = Buffer.concat(encodeInsertBody([event], insertedAt).chunks).toString("utf8");
  expect(body.endsWith("\n")).toBe(true);
  return body.slice(0, -1);
}

describe("event row mapping", () => {
  const event: IngestEvent = {
    tenant_id: "t1",
    event_id: "e1",
    event_name: "click",
    session_id: "user:u1",
    seq: null,
    user_id: null,
    channel: "web",
    timestamp: 1_700_000_000_123,
    received_at: 1_700_000_000_456,
    properties: { a: 1, nested: { b: "x'\"\\" } },
  };

  it("maps nulls and keeps millisecond epochs and properties JSON", () => {
    const row = toEventRow(event, 42);
    expect(row).toEqual({
      tenant_id: "t1",
      event_id: "e1",
      session_id: "user:u1",
      seq: null,
      event_name: "click",
      user_id: "",
      channel: "web",
      timestamp: 1_700_000_000_123,
      received_at: 1_700_000_000_456,
      properties: '{"a":1,"nested":{"b":"x\'\\"\\\\"}}',
      inserted_at: 42,
    });
    expect(JSON.parse(row.properties)).toEqual(event.properties);
    expect(sinkLine(event, 42)).not.toContain("\n");
  });

  it("formats a TabSeparated line in insert-column order, NULL seq as \\N", () => {
    const fields = sinkLine(event, 42).split("\t");
    expect(fields).toHaveLength(EVENT_INSERT_COLUMNS.length);
    const row = toEventRow(event, 42);
    expect(fields).toEqual([
      "t1",
      "e1",
      "user:u1",
      "\\N",
      "click",
      "",
      "web",
      "1700000000123",
      "1700000000456",
      // The properties JSON with its one backslash escaped for TSV.
      row.properties.replace(/\\/g, "\\\\"),
      "42",
    ]);
    expect(sinkLine({ ...event, seq: 7 }, 42).split("\t")[3]).toBe("7");
  });

  it("creates events with the fixed column names and ms-precision timestamp", () => {
    const ddl = eventsTableSql("ingest").replace(/\s+/g, " ");
    for (const col of ["tenant_id String", "event_id String", "session_id String", "seq Nullable(UInt64)", "event_name String", "timestamp UInt64", "received_at UInt64", "properties String"]) {
      expect(ddl).toContain(col);
    }
    expect(ddl).toContain("ENGINE = ReplacingMergeTree(inserted_at)");
    expect(ddl).toContain("ORDER BY (tenant_id, event_id)");
    expect(ddl).not.toMatch(/DateTime64|TTL/);
  });
});

/** ClickHouse's reading of an escaped TSV field: `\\c` is the escape for c (b f n r t 0 map to controls). */
function readTsvField(field: string): string {
  const controls: Record<string, string> = { b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", "0": "\0" };
  return field.replace(/\\(.)/gs, (_, c: string) => controls[c] ?? c);
}

describe("tsvField", () => {
  it.each([
    ["plain", "plain"],
    ["a\tb", "a\\tb"],
    ["a\nb\r", "a\\nb\\r"],
    ["back\\slash", "back\\\\slash"],
    ["\\N", "\\\\N"],
    ["nul\0", "nul\\0"],
    ["\b\f", "\\b\\f"],
    ["ünïcødé 😀 'q' \"dq\"", "ünïcødé 😀 'q' \"dq\""],
  ])("%j → %j", (input, expected) => {
    expect(tsvField(input)).toBe(expected);
  });

  it("returns the same string when nothing needs escaping", () => {
    const value = "0f8fad5b-d9cb-469f-a165-70867728950e";
    expect(tsvField(value)).toBe(value);
  });

  it("never holds a tab or line feed, and reads back to the input", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), (value) => {
        const field = tsvField(value);
        expect(field).not.toMatch(/[\t\n]/);
        expect(readTsvField(field)).toBe(value);
        // No field is the bare NULL marker.
        expect(field).not.toBe("\\N");
      }),
      { numRuns: 2000 },
    );
  });
});

describe("encodeInsertBody", () => {
  const base: IngestEvent = {
    tenant_id: "t1",
    event_id: "e0",
    event_name: "click",
    session_id: "s1",
    seq: 0,
    user_id: null,
    channel: null,
    timestamp: 1_700_000_000_000,
    received_at: 1_700_000_000_001,
    properties: {},
  };
  const events = (n: number, properties: (i: number) => Record<string, unknown>): IngestEvent[] =>
    Array.from({ length: n }, (_, i) => ({ ...base, event_id: `e${i}`, seq: i, properties: properties(i) }));

  it("is every row's line, newline-terminated, in order, across chunk boundaries and multi-byte text", () => {
    // Rows of 1-, 2-, 3- and 4-byte UTF-8 (1.5-4.5 KiB each, mostly 3 bytes per UTF-16 unit, so a
    // chunk's room is measured in bytes, not characters): the body spans several 64 KiB chunks.
    const batch = events(300, (i) => ({ text: `${i}:` + "aé😀" + "€".repeat(500 + ((i * 37) % 1000)) }));
    const body = encodeInsertBody(batch, 42);
    const expected = batch.map((e) => referenceTsvRow(e, 42) + "\n").join("");
    expect(body.chunks.length).toBeGreaterThan(2);
    expect(Buffer.concat(body.chunks).toString("utf8")).toBe(expected);
    expect(body.bytes).toBe(Buffer.byteLength(expected));
    expect(body.rejected).toEqual([]);
    expect(body.rows).toBe(300);
  });

  it("takes a single row larger than a chunk whole", () => {
    const batch = events(3, (i) => ({ big: (i === 1 ? "x" : "y").repeat(i === 1 ? 200_000 : 10) }));
    const body = encodeInsertBody(batch, 7);
    expect(Buffer.concat(body.chunks).toString("utf8")).toBe(batch.map((e) => referenceTsvRow(e, 7) + "\n").join(""));
  });

  it("sets aside events whose properties cannot be serialised and leaves them out of the body", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const batch = events(5, (i) => (i === 1 ? { n: 10n } : i === 3 ? cyclic : { ok: i }));
    const body = encodeInsertBody(batch, 42);
    expect(body.rows).toBe(3);
    expect(body.rejected.map((r) => [r.tenant_id, r.event_id])).toEqual([
      ["t1", "e1"],
      ["t1", "e3"],
    ]);
    expect(body.rejected[0]?.error).toMatch(/^cannot format row: .*BigInt/);
    expect(body.rejected[0]?.raw).toContain("10n");
    const lines = Buffer.concat(body.chunks).toString("utf8").split("\n");
    expect(lines).toHaveLength(4);
    expect(lines.slice(0, 3).map((l) => l.split("\t")[1])).toEqual(["e0", "e2", "e4"]);
  });

  it("is empty for an empty batch", () => {
    expect(encodeInsertBody([], 42)).toMatchObject({ chunks: [], bytes: 0, rejected: [] });
  });
});

describe("looking for the rows of an insert whose answer was lost", () => {
  const day = Date.UTC(2026, 10, 22, 23, 59, 59, 999);
  const batch: RowKey[] = [
    { tenant_id: "t1", event_id: "a", inserted_at: "1795398294249", timestamp: day },
    { tenant_id: "x' OR 1=1 --", event_id: "b", inserted_at: "1795398294249", timestamp: day + 1 },
    { tenant_id: "t1", event_id: "c", inserted_at: "1795398294250", timestamp: day - 86_400_000 },
  ];

  it("asks for the batch's tenants, stamps and days, every value quoted, and never for its event ids", () => {
    expect(landedRowsSql("ingest", batch)).toBe(
      "SELECT tenant_id, event_id, toString(inserted_at) AS inserted_at FROM `ingest`.`events` " +
        "WHERE tenant_id IN ('t1', 'x\\' OR 1=1 --') " +
        "AND toString(inserted_at) IN ('1795398294249', '1795398294250') " +
        "AND event_date >= toDate('2026-11-21') AND event_date <= toDate('2026-11-23')",
    );
  });

  it("reads the keys back from the rows the insert carried, escapes undone", () => {
    const events: IngestEvent[] = ["plain", "tab\there", "line\nfeed \\ back"].map((tenant, i) => ({
      tenant_id: tenant,
      event_id: `id\t${i}`,
      event_name: "click",
      session_id: "s",
      seq: i,
      user_id: null,
      channel: null,
      timestamp: day + i,
      received_at: day + i,
      properties: {},
    }));
    expect(rowKeysOf(encodeInsertBody(events, 1795398294249).chunks)).toEqual(
      events.map((e) => ({ tenant_id: e.tenant_id, event_id: e.event_id, inserted_at: "1795398294249", timestamp: e.timestamp })),
    );
  });

  it("finds the insert only when every row is there with the insert's own stamp", () => {
    const found = batch.map(({ tenant_id, event_id, inserted_at }) => ({ tenant_id, event_id, inserted_at }));
    expect(everyRowFound(batch, found)).toBe(true);
    // Rows of other inserts with the same stamp change nothing.
    expect(everyRowFound(batch, [...found, { tenant_id: "t1", event_id: "z", inserted_at: "1795398294249" }])).toBe(true);
    expect(everyRowFound(batch, found.slice(1))).toBe(false);
    // The same event stored by an earlier insert is not this insert's row.
    expect(everyRowFound(batch, [{ ...found[0]!, inserted_at: "1" }, ...found.slice(1)])).toBe(false);
    expect(everyRowFound([], [])).toBe(false);
  });
});

/**
 * Reading back the TabSeparated rows the sink sends, for the one place that needs it: when
 * ClickHouse refuses rows, the sink isolates them line by line (the spool holds rows, not
 * events) and quarantines each refused line as the row it spells, in JSON.
 *
 * Rows are newline-terminated and a field never holds a raw line feed or tab (tsvField escapes
 * both), so splitting on those bytes is exact.
 */
import { EVENT_INSERT_COLUMNS } from "./migrations";

const NEWLINE = 0x0a;

/** The rows of `chunks` (each row's bytes with its newline; views into the chunks, no copy). */
export function splitRows(chunks: readonly Buffer[]): Buffer[] {
  const rows: Buffer[] = [];
  for (const chunk of chunks) {
    let start = 0;
    while (start < chunk.length) {
      const end = chunk.indexOf(NEWLINE, start);
      // A chunk holds whole rows; bytes after its last newline (never written so) count as one.
      const next = end === -1 ? chunk.length : end + 1;
      rows.push(chunk.subarray(start, next));
      start = next;
    }
  }
  return rows;
}

const UNESCAPED: Record<string, string> = { "\\": "\\", t: "\t", n: "\n", r: "\r", "0": "\0", b: "\b", f: "\f", "'": "'" };

/** A TabSeparated field's text without its escapes (`tsvField` undone); `\N` alone is NULL. */
export function unescapeTsvField(field: string): string | null {
  if (field === "\\N") return null;
  if (field.indexOf("\\") === -1) return field;
  // An escape this writer never makes keeps the character after the backslash, as ClickHouse reads it.
  return field.replace(/\\(.)/gs, (_, ch: string) => UNESCAPED[ch] ?? ch);
}

const NUMBER_COLUMNS = new Set<string>(["seq", "timestamp", "received_at", "inserted_at"]);
const INTEGER_TEXT = /^-?\d{1,16}$/;

/**
 * One line as the `events` row it spells: columns in `EVENT_INSERT_COLUMNS` order, integers as
 * numbers, `\N` as null. A field that is not what its column wants (a line ClickHouse refused)
 * stays as its text, and fields beyond the columns are kept under `extra_fields`, so the copy
 * shows what was sent.
 */
export function rowFromLine(line: Buffer): Record<string, string | number | null | string[]> {
  const text = line.toString("utf8");
  const fields = (text.endsWith("\n") ? text.slice(0, -1) : text).split("\t");
  const row: Record<string, string | number | null | string[]> = {};
  EVENT_INSERT_COLUMNS.forEach((column, i) => {
    const field = fields[i];
    if (field === undefined) return;
    const value = unescapeTsvField(field);
    row[column] = value !== null && NUMBER_COLUMNS.has(column) && INTEGER_TEXT.test(value) ? Number(value) : value;
  });
  if (fields.length > EVENT_INSERT_COLUMNS.length) row.extra_fields = fields.slice(EVENT_INSERT_COLUMNS.length);
  return row;
}

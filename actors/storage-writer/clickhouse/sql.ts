/**
 * SQL text safety for ClickHouse.
 *
 * ClickHouse 18.16 has no query parameters (`{name:Type}` arrived in 19.x), so every value or
 * name that ends up in SQL text goes through these helpers. Nothing else in the storage writer
 * may concatenate a value into SQL.
 *
 * Escaping rules (ClickHouse lexer, identical in 18.16 and current versions): inside '...' and
 * `...` a backslash starts an escape sequence (`\\`, `\'`, `\``, `\n`, `\t`, `\r`, `\0`, `\b`,
 * `\f`, `\xHH`). We escape the backslash, the quote characters and every control character, so
 * the literal can neither end early nor smuggle bytes that a log line or terminal would
 * interpret. Everything else (all of Unicode) passes through unchanged as UTF-8.
 *
 * One caveat that no escaping can fix: a JavaScript string holding a lone UTF-16 surrogate is
 * sent as U+FFFD (Node's UTF-8 encoder replaces it), so such a value does not round-trip. It
 * cannot break out of the literal either, which is what matters here.
 */

/** Names we create or accept from configuration: plain ASCII, no quoting needed anywhere. */
const SAFE_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Whether `name` is a plain identifier (`^[A-Za-z_][A-Za-z0-9_]*$`). */
export function isSafeIdentifier(name: string): boolean {
  return SAFE_IDENTIFIER.test(name);
}

/** Throws unless `name` is a plain identifier; `what` names the setting in the message. */
export function assertSafeIdentifier(name: string, what: string): void {
  if (!isSafeIdentifier(name)) {
    throw new Error(`${what} must match ${SAFE_IDENTIFIER.source}, got ${JSON.stringify(name)}`);
  }
}

function escapeChars(value: string, quote: "'" | "`"): string {
  let out = "";
  for (const ch of value) {
    const code = ch.codePointAt(0) as number;
    switch (ch) {
      case "\\":
        out += "\\\\";
        continue;
      case "'":
      case "`":
        // Escape both quote characters in both contexts: cheap, and one rule is easier to audit.
        out += `\\${ch}`;
        continue;
      case "\n":
        out += "\\n";
        continue;
      case "\t":
        out += "\\t";
        continue;
      case "\r":
        out += "\\r";
        continue;
      case "\0":
        out += "\\0";
        continue;
      default:
        if (code < 0x20 || code === 0x7f) {
          out += `\\x${code.toString(16).padStart(2, "0")}`;
        } else {
          out += ch;
        }
    }
  }
  return `${quote}${out}${quote}`;
}

/** A ClickHouse string literal: `'...'` with everything that could end or bend it escaped. */
export function quoteString(value: string): string {
  return escapeChars(value, "'");
}

/**
 * A ClickHouse identifier: `` `...` `` with the same escaping. Accepts any non-empty name, so a
 * name read back from the server (a table or partition someone else created) is still safe.
 */
export function quoteIdentifier(name: string): string {
  if (name.length === 0) throw new Error("an identifier cannot be empty");
  return escapeChars(name, "`");
}

/** `db`.`table`, each part quoted. */
export function qualifiedName(database: string, table: string): string {
  return `${quoteIdentifier(database)}.${quoteIdentifier(table)}`;
}

/** Characters that TabSeparated input reads as structure or as the start of an escape. */
const TSV_SPECIAL = /[\\\t\n\r\0\b\f]/;
const TSV_SPECIAL_ALL = /[\\\t\n\r\0\b\f]/g;
const TSV_ESCAPES: Record<string, string> = {
  "\\": "\\\\",
  "\t": "\\t",
  "\n": "\\n",
  "\r": "\\r",
  "\0": "\\0",
  "\b": "\\b",
  "\f": "\\f",
};

/**
 * A string as one field of a TabSeparated row (ClickHouse's TSV escaping, the same in 18.16 and
 * current versions): the backslash, tab and line feed are escaped, and so are CR, NUL, BS and FF,
 * which the server's own TSV output escapes too. A field then holds no tab or line feed (it cannot
 * end early or start a row), and every backslash in it starts one of these escapes, so `\N` (NULL)
 * can only be written on purpose. Most values contain none of these: one regex test, no copy.
 */
export function tsvField(value: string): string {
  return TSV_SPECIAL.test(value) ? value.replace(TSV_SPECIAL_ALL, (ch) => TSV_ESCAPES[ch]!) : value;
}

/**
 * What a failed ClickHouse request says about its rows: refused for their data (split the batch,
 * quarantine what fails alone), refused for another reason (retry), or not answered at all (the
 * insert may have been committed: lost-answer.ts looks). Both servers' error shapes: 18.16's
 * plain text and the parsed errors of newer ones.
 */
import { ClickHouseError } from "@clickhouse/client";

/**
 * ClickHouse error codes that mean "this input does not fit the table": retrying the same rows
 * fails the same way, and splitting the batch isolates the rows at fault. Deliberately an allow
 * list: an unknown code rejects (the caller retries) rather than quarantining good data.
 */
const DATA_ERROR_CODES = new Set<number>([
  6, // CANNOT_PARSE_TEXT
  25, // CANNOT_PARSE_ESCAPE_SEQUENCE
  26, // CANNOT_PARSE_QUOTED_STRING
  27, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  38, // CANNOT_PARSE_DATE
  41, // CANNOT_PARSE_DATETIME
  53, // TYPE_MISMATCH
  69, // ARGUMENT_OUT_OF_BOUND
  70, // CANNOT_CONVERT_TYPE
  72, // CANNOT_PARSE_NUMBER
  117, // INCORRECT_DATA (e.g. a line with too many or too few fields)
  130, // CANNOT_READ_ARRAY_FROM_TEXT
  131, // TOO_LARGE_STRING_SIZE
  321, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
  349, // CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
]);

/**
 * Code 252 is both "Too many parts" (overload: splitting makes it worse) and, on servers that
 * limit it (not 18.16), "Too many partitions for single INSERT block" (a batch spanning too many
 * days: halves succeed). Only the latter is treated as splittable.
 */
const TOO_MANY_PARTITIONS = /too many partitions for single insert block/i;

/** The ClickHouse error code of `err`, from a parsed ClickHouseError or from 18.16's text. */
export function clickHouseErrorCode(err: unknown): number | undefined {
  if (err instanceof ClickHouseError) {
    const n = Number(err.code);
    return Number.isInteger(n) ? n : undefined;
  }
  if (err instanceof Error) {
    // A Node system error (ECONNREFUSED, ...) has a string `code`; it never came from the server.
    const sys = (err as NodeJS.ErrnoException).code;
    if (typeof sys === "string" && /^E[A-Z]/.test(sys)) return undefined;
    const m = /^\s*Code: (\d+)[.,]/.exec(err.message);
    if (m) return Number(m[1]);
  }
  return undefined;
}

/** Whether the server refused the insert because of the rows themselves (see DATA_ERROR_CODES). */
export function isDataError(err: unknown): boolean {
  const code = clickHouseErrorCode(err);
  if (code === undefined) return false;
  if (DATA_ERROR_CODES.has(code)) return true;
  return code === 252 && err instanceof Error && TOO_MANY_PARTITIONS.test(err.message);
}

const MAX_ERROR_TEXT = 4096;

/** The error text stored with a dead-lettered row; the same shape on 18.16 and new servers. */
export function errorText(err: unknown): string {
  let text: string;
  if (err instanceof ClickHouseError) {
    text = `Code: ${err.code}. DB::Exception: ${err.message.trim()} (${err.type ?? "UNKNOWN"})`;
  } else if (err instanceof Error) {
    text = err.message.trim();
  } else {
    text = String(err);
  }
  return text.length > MAX_ERROR_TEXT ? `${text.slice(0, MAX_ERROR_TEXT)}...` : text;
}

/** Errors that mean nothing was sent: the connection was never made. */
const NOT_SENT = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"]);

/**
 * Whether a failed request may have been carried out all the same: the server did not answer
 * with an error of its own (that answer is definite), and the connection was made. A reset, a
 * timeout, a socket hang-up all leave it open.
 */
export function outcomeUnknown(error: unknown): boolean {
  if (clickHouseErrorCode(error) !== undefined) return false;
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return !(typeof code === "string" && NOT_SENT.has(code));
}

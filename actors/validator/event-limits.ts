/**
 * Per-event limits, checked on the normalised event before the (costlier) schema and privacy
 * checks: the event's size as JSON, the length of every string and key in its properties, the
 * number of keys in its properties counted at every depth (so a payload cannot dodge the key
 * limit by nesting), and how far its timestamp may be ahead of the time it was received. The request-level limits (body bytes, events per
 * request, nesting depth) are enforced earlier, while decoding the body.
 *
 * Pure, one pass, allocation-free on success. The exact JSON size costs a serialisation, so it
 * is computed only when a cheap upper bound says the event could be over the limit: small
 * events, nearly all of them, are never serialised here.
 */
import type { IngestEvent } from "../common/event";

export interface EventLimits {
  /** Largest event as JSON (UTF-8 bytes of the normalised event). */
  maxEventBytes: number;
  /** Longest string value or object key anywhere in `properties`, in characters. */
  maxStringLength: number;
  /** Most keys in `properties`, summed over every nested object. */
  maxPropertiesKeys: number;
  /**
   * How far (ms) `timestamp` may be ahead of `received_at`; absent or 0: no bound. A clock that
   * is far off (or a timestamp in the wrong unit) would put the event in a day that has not come:
   * its daily partition would never be old enough for retention to drop.
   */
  maxFutureMs?: number;
}

const NO_ERRORS: string[] = Object.freeze([] as string[]) as string[];

/** Worst-case JSON bytes of one UTF-16 code unit: a control character becomes `\u00XX`. */
const MAX_BYTES_PER_UNIT = 6;
/** Longest JSON text of a number (`-1.2345678901234567e-308`). */
const MAX_NUMBER_BYTES = 24;
/** Bytes of the fixed parts of an event: field names, quotes, colons, commas, braces. */
const EVENT_FRAME_BYTES = 200;

/** One reused walk state (the check is synchronous), so a clean event allocates nothing. */
interface Walk {
  limits: EventLimits;
  keys: number;
  /** Upper bound of the properties' JSON size. */
  bound: number;
  /** The first too-long string or key, as a path; null while none was found. */
  longString: string | null;
}

/** Readable problems with `event`, or a shared empty array when it is within every limit. */
export function checkEventLimits(event: IngestEvent, limits: EventLimits): string[] {
  walk.limits = limits;
  walk.keys = 0;
  walk.bound = 0;
  walk.longString = null;
  // Emptied only when a walk was cut short (it never is): `length = 0` frees the array's store,
  // and every event would allocate a new one on the next push.
  if (path.length !== 0) path.length = 0;
  path.push("properties");
  walkObject(event.properties, walk, path);
  path.pop();

  let errors: string[] | null = null;
  if (walk.longString !== null) (errors ??= []).push(walk.longString);
  if (walk.keys > limits.maxPropertiesKeys) {
    (errors ??= []).push(`properties must have at most ${limits.maxPropertiesKeys} keys in total (has ${walk.keys})`);
  }
  const ahead = event.timestamp - event.received_at;
  if (limits.maxFutureMs && ahead > limits.maxFutureMs) {
    (errors ??= []).push(`timestamp must be at most ${formatSpan(limits.maxFutureMs)} ahead of the server's clock (is ${formatSpan(ahead)} ahead: is the client's clock right?)`);
  }
  const bound =
    EVENT_FRAME_BYTES +
    walk.bound +
    MAX_BYTES_PER_UNIT *
      (event.tenant_id.length +
        event.event_id.length +
        event.event_name.length +
        event.session_id.length +
        (event.user_id?.length ?? 0) +
        (event.channel?.length ?? 0)) +
    4 * MAX_NUMBER_BYTES;
  if (bound > limits.maxEventBytes) {
    const bytes = Buffer.byteLength(JSON.stringify(event), "utf8");
    if (bytes > limits.maxEventBytes) {
      (errors ??= []).push(`event must be at most ${limits.maxEventBytes} bytes as JSON (is ${bytes})`);
    }
  }
  return errors ?? NO_ERRORS;
}

/** A span as the largest whole unit that fits: "2 days", "5 h", "30 s", "250 ms". */
function formatSpan(ms: number): string {
  if (ms >= 86_400_000) return `${Math.floor(ms / 86_400_000)} day${ms >= 172_800_000 ? "s" : ""}`;
  if (ms >= 3_600_000) return `${Math.floor(ms / 3_600_000)} h`;
  if (ms >= 1000) return `${Math.floor(ms / 1000)} s`;
  return `${ms} ms`;
}

const walk: Walk = { limits: { maxEventBytes: 0, maxStringLength: 0, maxPropertiesKeys: 0 }, keys: 0, bound: 0, longString: null };
const path: Array<string | number> = [];

function walkValue(value: unknown, walk: Walk, path: Array<string | number>): void {
  if (typeof value === "string") {
    walk.bound += MAX_BYTES_PER_UNIT * value.length + 2;
    if (walk.longString === null && value.length > walk.limits.maxStringLength) {
      walk.longString = `${renderPath(path)} must be at most ${walk.limits.maxStringLength} characters long (is ${value.length})`;
    }
  } else if (typeof value === "number") {
    walk.bound += MAX_NUMBER_BYTES;
  } else if (typeof value !== "object" || value === null) {
    walk.bound += 5; // true, false, null
  } else if (Array.isArray(value)) {
    walk.bound += 2 + value.length;
    for (let i = 0; i < value.length; i++) {
      path.push(i);
      walkValue(value[i], walk, path);
      path.pop();
    }
  } else {
    walkObject(value as Record<string, unknown>, walk, path);
  }
}

function walkObject(record: Record<string, unknown>, walk: Walk, path: Array<string | number>): void {
  walk.bound += 2;
  for (const key in record) {
    if (!Object.prototype.hasOwnProperty.call(record, key)) continue;
    walk.keys++;
    walk.bound += MAX_BYTES_PER_UNIT * key.length + 4;
    path.push(key);
    if (walk.longString === null && key.length > walk.limits.maxStringLength) {
      walk.longString = `${renderPath(path.slice(0, -1))} has a key longer than ${walk.limits.maxStringLength} characters`;
    }
    walkValue(record[key], walk, path);
    path.pop();
  }
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `properties.items[2].note`, with `["odd key"]` for keys that are not identifiers. */
function renderPath(path: ReadonlyArray<string | number>): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (IDENTIFIER.test(segment)) out += out === "" ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment.length > 64 ? `${segment.slice(0, 64)}…` : segment)}]`;
  }
  return out;
}

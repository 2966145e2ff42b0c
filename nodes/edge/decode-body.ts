/**
 * From request bytes to a list of raw events, with every way that can go wrong mapped to one
 * stable error: undecodable gzip, a gzip bomb (inflation stops at the cap, it never runs past
 * it), invalid JSON, prototype-poisoning keys, excessive nesting, the wrong shape.
 */
import zlib from "node:zlib";
import { IngestError } from "../../actors/common/errors";
import { epochMsOf } from "../../actors/validator/normalize";

export interface DecodeLimits {
  maxBodyBytes: number;
  maxDepth: number;
}

export function decompress(body: Buffer, encoding: string | undefined, maxBytes: number): Buffer {
  const enc = (encoding ?? "identity").trim().toLowerCase();
  if (enc === "identity" || enc === "") return body;
  if (enc !== "gzip" && enc !== "x-gzip") throw new IngestError("unsupported_encoding");
  try {
    return zlib.gunzipSync(body, { maxOutputLength: maxBytes });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ERR_BUFFER_TOO_LARGE" || error instanceof RangeError) {
      throw new IngestError("payload_too_large", `Decoded body exceeds ${maxBytes} bytes`);
    }
    throw new IngestError("invalid_body", "Body is not valid gzip");
  }
}

/** Deepest nesting of objects/arrays in `value`, stopping early once past `limit`. */
export function depthExceeds(value: unknown, limit: number, depth = 1): boolean {
  if (typeof value !== "object" || value === null) return false;
  if (depth > limit) return true;
  if (Array.isArray(value)) {
    for (const item of value) if (depthExceeds(item, limit, depth + 1)) return true;
  } else {
    for (const key in value) if (depthExceeds((value as Record<string, unknown>)[key], limit, depth + 1)) return true;
  }
  return false;
}

/** True if an object anywhere holds `__proto__`, or `constructor` with a `prototype` inside. */
export function hasPoisonKeys(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return false;
  if (Array.isArray(value)) return value.some(hasPoisonKeys);
  const record = value as Record<string, unknown>;
  if (Object.prototype.hasOwnProperty.call(record, "__proto__")) return true;
  const ctor = Object.prototype.hasOwnProperty.call(record, "constructor") ? record.constructor : undefined;
  if (typeof ctor === "object" && ctor !== null && Object.prototype.hasOwnProperty.call(ctor, "prototype")) return true;
  for (const key in record) if (hasPoisonKeys(record[key])) return true;
  return false;
}

/** A request body's events, and the sending device's clock when it sent them (epoch ms), if it said. */
export interface DecodedBody {
  events: unknown[];
  sentAt: number | undefined;
}

/**
 * Parses a JSON body. Accepted shapes: {"events":[...]}, {"batch":[...]} (Segment), a bare array,
 * or a single event object. A batch object may carry `sent_at` (or Segment's `sentAt`): the
 * device's clock when it sent the batch, ISO-8601 or epoch ms, from which the node corrects the
 * events' timestamps for a wrong device clock (normalize.ts, clockOffset).
 */
export function parseBody(text: string, limits: DecodeLimits): DecodedBody {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new IngestError("invalid_json");
  }
  // Depth first: it bounds the recursion of every later walk over the body.
  if (depthExceeds(parsed, limits.maxDepth)) {
    throw new IngestError("too_deep", `Body nests deeper than ${limits.maxDepth} levels`);
  }
  // The scan is only needed when the text could spell a poisoning key at all, directly or
  // through \u escapes (JSON.parse turns "\u005f_proto__" into "__proto__").
  if ((text.includes("__proto__") || text.includes("prototype") || text.includes("\\u")) && hasPoisonKeys(parsed)) {
    throw new IngestError("unsafe_json");
  }
  if (Array.isArray(parsed)) return { events: parsed, sentAt: undefined };
  if (typeof parsed === "object" && parsed !== null) {
    const body = parsed as Record<string, unknown>;
    const events = Array.isArray(body.events) ? body.events : Array.isArray(body.batch) ? body.batch : null;
    if (events !== null) return { events, sentAt: readSentAt(body.sent_at ?? body.sentAt) };
    if (body.events !== undefined || body.batch !== undefined) throw new IngestError("invalid_body", '"events" must be an array');
    return { events: [body], sentAt: undefined };
  }
  throw new IngestError("invalid_body");
}

function readSentAt(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  // Read as an event's timestamp is, so the two can never disagree on what a time is.
  const ms = epochMsOf(value);
  if (Number.isNaN(ms)) throw new IngestError("invalid_body", "sent_at must be an ISO-8601 string or epoch milliseconds");
  return ms;
}

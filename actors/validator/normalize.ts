/**
 * Turns one client event (any of the accepted spellings) into the canonical IngestEvent, or a
 * list of readable errors. Pure and allocation-lean: it runs once per event on the hot path.
 *
 * Accepted spellings (first present wins):
 *   event_id   ← event_id, eventId, messageId, message_id   (else server-assigned UUID)
 *   event_name ← event_name, eventName, eventType, event_type, event
 *   session_id ← session_id, sessionId
 *   user_id    ← user_id, userId
 *   seq        ← seq, sequence
 *   properties ← properties, metadata (objects)
 * Every other top-level field (e.g. `route`, `target` in the reference SDK) is folded into
 * `properties` unless properties already has that key, so nothing a client sent is dropped.
 */
import { randomUuid } from "../common/uuid-pool";
import { SERVER_ASSIGNED_ID, type IngestEvent } from "../common/event";

export interface NormalizeContext {
  tenantId: string;
  receivedAt: number;
  /** `Idempotency-Key` header: the event id of a single-event request that carries none. */
  idempotencyKey?: string;
  /**
   * How far the sending device's clock is behind the server's (receivedAt - the batch's
   * `sent_at`), added to every timestamp the client gave; 0 or absent: none (see clockOffset).
   */
  clockOffsetMs?: number;
}

export type NormalizeResult = { ok: true; event: IngestEvent } | { ok: false; errors: string[] };

export const MAX_ID_LENGTH = 256;

export const FIELD_ALIASES = {
  event_id: ["event_id", "eventId", "messageId", "message_id"],
  event_name: ["event_name", "eventName", "eventType", "event_type", "event"],
  session_id: ["session_id", "sessionId"],
  user_id: ["user_id", "userId"],
  seq: ["seq", "sequence"],
  timestamp: ["timestamp"],
  channel: ["channel"],
  properties: ["properties", "metadata"],
} as const;

/** Top-level keys that are consumed by the mapping above (and so not folded into properties). */
const CANONICAL_KEYS = new Set<string>(Object.values(FIELD_ALIASES).flat());
/** Keys that must never be copied onto an object: they reach the prototype. */
const POISON_KEYS = new Set(["__proto__", "constructor", "prototype"]);

type Raw = Record<string, unknown>;

/** `a` unless it is undefined (a present null wins, as the first spelling present). */
function or(a: unknown, b: unknown): unknown {
  return a !== undefined ? a : b;
}

/**
 * Each canonical field's value: its first spelling present, in `FIELD_ALIASES` order, spelled
 * out as property reads with constant names. A read through a variable name (`raw[name]` in a
 * loop over the aliases) goes through V8's megamorphic keyed-load path for every spelling of
 * every field, ~20 lookups per event; a constant name is an inline-cached load on the shape
 * JSON.parse gave the batch's events (bench/hot-path.js "validate"). A unit test checks these
 * readers against FIELD_ALIASES.
 */
export const FIELD_READERS: { readonly [F in keyof typeof FIELD_ALIASES]: (raw: Raw) => unknown } = {
  event_id: (raw) => or(raw.event_id, or(raw.eventId, or(raw.messageId, raw.message_id))),
  event_name: (raw) => or(raw.event_name, or(raw.eventName, or(raw.eventType, or(raw.event_type, raw.event)))),
  session_id: (raw) => or(raw.session_id, raw.sessionId),
  user_id: (raw) => or(raw.user_id, raw.userId),
  seq: (raw) => or(raw.seq, raw.sequence),
  timestamp: (raw) => raw.timestamp,
  channel: (raw) => raw.channel,
  properties: (raw) => or(raw.properties, raw.metadata),
};

/** Whether `raw` carries `field` under any of its accepted spellings (null counts as absent). */
export function hasField(raw: Record<string, unknown>, field: keyof typeof FIELD_ALIASES): boolean {
  const value = FIELD_READERS[field](raw);
  return value !== undefined && value !== null;
}

/**
 * An identifier field's text as normalisation will read it (any accepted spelling; a number as
 * its text), or null when absent, empty or of another type: for steps that run before
 * validation (the per-user rate limit) and must agree with it on who sent an event.
 */
export function idText(raw: Record<string, unknown>, field: "user_id" | "session_id"): string | null {
  const value = FIELD_READERS[field](raw);
  if (typeof value === "string") return value.length > 0 ? value : null;
  return typeof value === "number" && Number.isFinite(value) ? String(value) : null;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** An identifier field: a non-empty string (numbers are accepted and kept as their text). */
function readId(value: unknown, field: string, errors: string[]): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  if (typeof value !== "string") {
    errors.push(`${field} must be a string`);
    return null;
  }
  if (value.length === 0) return null;
  if (value.length > MAX_ID_LENGTH) {
    errors.push(`${field} must be at most ${MAX_ID_LENGTH} characters`);
    return null;
  }
  return value;
}

const ISO_8601 =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** Epoch ms of an ISO-8601 string, or NaN. No offset means UTC (never the server's local zone). */
export function parseIsoTimestamp(value: string): number {
  const match = ISO_8601.exec(value);
  if (!match) return NaN;
  const [, year, month, day, hour, minute, second, offset] = match;
  const y = Number(year);
  const m = Number(month);
  const d = Number(day);
  // Date.parse rolls 2023-02-29 over to March 1st; an impossible date is an error instead.
  if (m < 1 || m > 12 || d < 1 || d > new Date(Date.UTC(y, m, 0)).getUTCDate()) return NaN;
  if (hour !== undefined && (Number(hour) > 23 || Number(minute) > 59 || Number(second ?? 0) > 59)) return NaN;
  if (hour === undefined) return Date.UTC(y, m - 1, d);
  const normalized = value.replace(" ", "T") + (offset === undefined ? "Z" : "");
  return Date.parse(normalized);
}

const MAX_TIMESTAMP = 8_640_000_000_000_000;

/** Epoch ms of a time as clients send one (ISO-8601, or integer epoch ms within Date's range), or NaN. */
export function epochMsOf(value: unknown): number {
  if (typeof value === "number") return Number.isInteger(value) && value >= 0 && value <= MAX_TIMESTAMP ? value : NaN;
  return typeof value === "string" ? parseIsoTimestamp(value) : NaN;
}

function readTimestamp(value: unknown, receivedAt: number, clockOffsetMs: number, errors: string[]): number {
  if (value === undefined || value === null) return receivedAt;
  const ms = epochMsOf(value);
  if (Number.isNaN(ms)) {
    errors.push("timestamp must be an ISO-8601 string or epoch milliseconds");
    return receivedAt;
  }
  const corrected = ms + clockOffsetMs;
  // A correction that would leave the valid range keeps the time as sent (the limits judge it then).
  return corrected >= 0 && corrected <= MAX_TIMESTAMP ? corrected : ms;
}

function readSeq(value: unknown, errors: string[]): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return value;
  errors.push("seq must be a non-negative integer");
  return null;
}

/** Below this the difference between `sent_at` and the arrival is network delay, not a wrong clock. */
export const MIN_CLOCK_OFFSET_MS = 1000;

/**
 * The correction for a batch's `sent_at` (epoch ms, the device's clock when it sent the batch),
 * as Segment and RudderStack apply it: timestamp + (receivedAt - sentAt). 0 when there is no
 * `sent_at` or the clocks agree within MIN_CLOCK_OFFSET_MS.
 */
export function clockOffset(receivedAt: number, sentAt: number | undefined): number {
  if (sentAt === undefined) return 0;
  const offset = receivedAt - sentAt;
  return Math.abs(offset) < MIN_CLOCK_OFFSET_MS ? 0 : offset;
}

export function normalizeEvent(raw: unknown, ctx: NormalizeContext, singleEvent = false): NormalizeResult {
  if (!isPlainObject(raw)) return { ok: false, errors: ["event must be a JSON object"] };
  const errors: string[] = [];

  const nameValue = FIELD_READERS.event_name(raw);
  let eventName = "";
  if (nameValue === undefined || nameValue === null || nameValue === "") errors.push("event_name is required");
  else if (typeof nameValue !== "string") errors.push("event_name must be a string");
  else eventName = nameValue;

  const clientEventId = readId(FIELD_READERS.event_id(raw), "event_id", errors);
  const sessionId = readId(FIELD_READERS.session_id(raw), "session_id", errors);
  const userId = readId(FIELD_READERS.user_id(raw), "user_id", errors);
  const seq = readSeq(FIELD_READERS.seq(raw), errors);
  const timestamp = readTimestamp(FIELD_READERS.timestamp(raw), ctx.receivedAt, ctx.clockOffsetMs ?? 0, errors);

  const channelValue = raw.channel;
  let channel: string | null = null;
  if (typeof channelValue === "string") channel = channelValue;
  else if (channelValue !== undefined && channelValue !== null) errors.push("channel must be a string");

  const propertiesValue = FIELD_READERS.properties(raw);
  let properties: Record<string, unknown> = {};
  if (isPlainObject(propertiesValue)) properties = propertiesValue;
  else if (propertiesValue !== undefined && propertiesValue !== null) errors.push("properties must be an object");

  if (errors.length > 0) return { ok: false, errors };

  let folded: Record<string, unknown> | null = null;
  for (const key in raw) {
    if (CANONICAL_KEYS.has(key) || POISON_KEYS.has(key)) continue;
    // Copy lazily: events with no extra fields keep the client's properties object as is.
    folded ??= { ...properties };
    if (!Object.prototype.hasOwnProperty.call(folded, key)) folded[key] = raw[key];
  }
  // `metadata` next to `properties`: keep it rather than lose it.
  if (raw.properties !== undefined && raw.metadata !== undefined) {
    folded ??= { ...properties };
    if (!Object.prototype.hasOwnProperty.call(folded, "metadata")) folded.metadata = raw.metadata;
  }

  const assignedId = clientEventId === null && !(singleEvent && ctx.idempotencyKey);
  const eventId = clientEventId ?? (assignedId ? randomUuid() : ctx.idempotencyKey!.slice(0, MAX_ID_LENGTH));
  const event: IngestEvent = {
    tenant_id: ctx.tenantId,
    event_id: eventId,
    event_name: eventName,
    session_id: sessionId ?? (userId !== null ? `user:${userId}` : `event:${eventId}`),
    seq,
    user_id: userId,
    channel,
    timestamp,
    received_at: ctx.receivedAt,
    properties: folded ?? properties,
  };
  if (assignedId) (event as { [SERVER_ASSIGNED_ID]?: true })[SERVER_ASSIGNED_ID] = true;
  return { ok: true, event };
}


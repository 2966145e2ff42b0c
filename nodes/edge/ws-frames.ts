/**
 * The frame protocol of GET /v1/stream, as pure functions shared by the edge and the client.
 *
 * Client → server: `{"seq":n,"events":[...]}`. Server → client: an ack
 * `{"ack":n,"accepted":k,"duplicates":d,"rejected":[{"index":i,"errors":[...]}]}` (sent only once
 * the batch is durable), an error `{"error":{"code","message","seq"?}}`, or a throttle
 * `{"throttle":{"retry_after_ms":ms}}`. Text frames carry JSON, binary frames msgpack, and a
 * reply uses the encoding of the frame it answers.
 *
 * Every way a client frame can be malformed maps to one stable error code (actors/common/errors)
 * and one WebSocket close code, so SDKs can tell "fix your frame" from "retry later".
 */
import { Packr, Unpackr } from "msgpackr";
import { ERRORS, type ErrorCode } from "../../actors/common/errors";
import type { RejectedEvent } from "../../actors/common/event";
import { hasPoisonKeys } from "./decode-body";

export type FrameEncoding = "json" | "msgpack";

export interface BatchFrame {
  /** The client's batch number: echoed in the ack or error for this batch. */
  seq: number;
  events: unknown[];
}

export interface AckFrame {
  ack: number;
  accepted: number;
  duplicates: number;
  rejected: RejectedEvent[];
}

export interface ErrorFrame {
  error: { code: string; message: string; seq?: number };
}

export interface ThrottleFrame {
  throttle: { retry_after_ms: number };
}

export type ServerFrame = AckFrame | ErrorFrame | ThrottleFrame;

/** WebSocket close codes the edge uses (RFC 6455 §7.4.1). */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 1002,
  invalidPayload: 1007,
  policyViolation: 1008,
  tooBig: 1009,
  internalError: 1011,
  tryAgainLater: 1013,
} as const;

/** Frame-level errors: the socket is closed with this code after the error frame. */
const CLOSE_CODE_OF: Partial<Record<ErrorCode, number>> = {
  invalid_frame: CLOSE.invalidPayload,
  too_deep: CLOSE.policyViolation,
  unsafe_json: CLOSE.policyViolation,
  frame_too_large: CLOSE.tooBig,
  too_many_events: CLOSE.tooBig,
  too_many_inflight: CLOSE.tryAgainLater,
};

export function closeCodeFor(code: ErrorCode): number {
  return CLOSE_CODE_OF[code] ?? CLOSE.policyViolation;
}

/**
 * Batch-level codes after which the client should send the same batch again (same event ids,
 * so the server's dedup absorbs anything that did get stored). Every other code is final.
 */
export const RETRYABLE_CODES: ReadonlySet<string> = new Set<ErrorCode>([
  "rate_limited",
  "unavailable",
  "too_many_inflight",
  "shutting_down",
]);

export class FrameError extends Error {
  readonly closeCode: number;
  constructor(
    readonly code: ErrorCode,
    message?: string,
    /** The frame's seq when it could be read, so the client knows which batch this was. */
    readonly seq?: number,
  ) {
    super(message ?? ERRORS[code].message);
    this.name = "FrameError";
    this.closeCode = closeCodeFor(code);
  }
}

export interface FrameLimits {
  maxPayloadBytes: number;
  maxEventsPerBatch: number;
  /** Deepest nesting of arrays/objects, counted from the frame object (as for HTTP bodies). */
  maxDepth: number;
}

// Plain maps → objects (as JSON would give), never Map; replies without msgpackr records so
// any MessagePack library can read them.
const unpackr = new Unpackr({ mapsAsObjects: true, useRecords: false });
const packr = new Packr({ useRecords: false });

/**
 * Most msgpackr record definitions a binary client frame may carry. msgpackr compiles a reader
 * function (`new Function`) for every record shape it reads more than three times, so a frame
 * of thousands of one-off shapes costs many times the CPU of an ordinary frame of its size
 * (measured: a 125 KB frame of 6,000 shapes used four times each took 65–219 ms to decode,
 * against 5–11 ms for same-sized events of one shape). An SDK frame's events share their shapes
 * and stay far below this; `encodeBatchFrame` sends plain maps when a frame would not.
 */
export const MAX_RECORD_DEFINITIONS = 256;

/** The headers a record definition starts with: fixext 1 and fixext 2. */
const DEFINITION_HEADERS = [0xd4, 0xd5] as const;
const RECORD_DEFINITION = 0x72;

/**
 * How many msgpackr record definitions `bytes` holds, counted up to `stopAbove + 1`: each is a
 * fixext 1 or 2 header whose type byte is 0x72 ("r"). An upper bound (the two bytes can also sit
 * inside a number), never an undercount. Two memchr-speed scans: 0xd4 and 0xd5 are rare in text.
 */
export function countRecordDefinitions(bytes: Uint8Array, stopAbove = MAX_RECORD_DEFINITIONS): number {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let count = 0;
  for (const header of DEFINITION_HEADERS) {
    for (let i = buf.indexOf(header); i !== -1 && i + 1 < buf.length; i = buf.indexOf(header, i + 1)) {
      if (buf[i + 1] === RECORD_DEFINITION && ++count > stopAbove) return count;
    }
  }
  return count;
}

type Shape = "ok" | "too_deep" | "not_plain";

/**
 * msgpack can carry what JSON cannot (binary, dates, bigints, extension types): events must
 * stay JSON-shaped so the rest of the pipeline (validator, sinks, forwarder) sees the same
 * values from both encodings. Stops at the depth limit, so a hostile frame costs bounded work.
 */
function inspect(value: unknown, limit: number, depth = 1): Shape {
  if (value === null) return "ok";
  switch (typeof value) {
    case "string":
    case "boolean":
      return "ok";
    case "number":
      return Number.isFinite(value) ? "ok" : "not_plain";
    case "object":
      break;
    default:
      return "not_plain";
  }
  if (depth > limit) return "too_deep";
  if (Array.isArray(value)) {
    for (const item of value) {
      const shape = inspect(item, limit, depth + 1);
      if (shape !== "ok") return shape;
    }
    return "ok";
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return "not_plain";
  for (const key in value) {
    const shape = inspect((value as Record<string, unknown>)[key], limit, depth + 1);
    if (shape !== "ok") return shape;
  }
  return "ok";
}

function readSeq(value: unknown): number | undefined {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

/**
 * Decodes and checks one client frame. Throws FrameError (with the seq when it was readable).
 * `payload` is only read during the call (uWS reuses a message's memory once its callback returns).
 */
export function decodeClientFrame(payload: Uint8Array, isBinary: boolean, limits: FrameLimits): BatchFrame {
  if (payload.byteLength > limits.maxPayloadBytes) {
    throw new FrameError("frame_too_large", `Frame of ${payload.byteLength} bytes exceeds ${limits.maxPayloadBytes} bytes`);
  }
  let value: unknown;
  if (isBinary) {
    if (countRecordDefinitions(payload) > MAX_RECORD_DEFINITIONS) {
      throw new FrameError("invalid_frame", `Binary frame defines more than ${MAX_RECORD_DEFINITIONS} msgpack record shapes; send plain maps`);
    }
    try {
      value = unpackr.unpack(payload);
    } catch {
      throw new FrameError("invalid_frame", "Binary frame is not valid msgpack");
    }
  } else {
    try {
      value = JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString("utf8"));
    } catch {
      throw new FrameError("invalid_frame", "Text frame is not valid JSON");
    }
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new FrameError("invalid_frame", 'Frame must be an object {"seq":n,"events":[...]}');
  }
  const frame = value as Record<string, unknown>;
  const seq = readSeq(frame.seq);
  // Depth first: it is bounded, and it bounds the recursion of the poison-key scan after it.
  const shape = inspect(frame, limits.maxDepth);
  if (shape === "too_deep") throw new FrameError("too_deep", `Frame nests deeper than ${limits.maxDepth} levels`, seq);
  if (shape === "not_plain") {
    throw new FrameError("invalid_frame", "Frame holds a value JSON cannot represent (binary, date, bigint, extension)", seq);
  }
  if (hasPoisonKeys(frame)) throw new FrameError("unsafe_json", undefined, seq);
  if (seq === undefined) throw new FrameError("invalid_frame", "seq must be a non-negative integer");
  if (!Array.isArray(frame.events)) throw new FrameError("invalid_frame", '"events" must be an array', seq);
  if (frame.events.length > limits.maxEventsPerBatch) {
    throw new FrameError("too_many_events", `A frame may hold at most ${limits.maxEventsPerBatch} events`, seq);
  }
  return { seq, events: frame.events };
}

/** A server frame: a JSON string, or plain msgpack bytes (maps) that any MessagePack library reads. */
export function encodeFrame(frame: ServerFrame, encoding: FrameEncoding): string | Buffer {
  return encoding === "json" ? JSON.stringify(frame) : packr.pack(frame);
}

/**
 * The SDK's batch frames: msgpackr records, self-contained in each frame as in the cluster's
 * serializer (actors/common/msgpack-serializer.ts: no shared structures, so the server needs no
 * state from earlier frames). A frame's same-shaped events write their keys once, and the
 * server's Unpackr builds a record ~2.7x faster than it reads a map (the bench's events: 0.50
 * vs 1.36 µs each) from a frame ~40% smaller. Other MessagePack libraries send plain maps,
 * which the server takes as before.
 */
const batchPackr = new Packr({ useRecords: true, mapsAsObjects: true });

/** A client batch frame: a JSON string, or msgpack bytes with msgpackr records (see above). */
export function encodeBatchFrame(frame: BatchFrame, encoding: FrameEncoding): string | Buffer {
  if (encoding === "json") return JSON.stringify(frame);
  const records = batchPackr.pack(frame);
  // Events of too many different shapes: the server would refuse the records (see above).
  return countRecordDefinitions(records) > MAX_RECORD_DEFINITIONS ? packr.pack(frame) : records;
}

export function ackFrame(seq: number, answer: { accepted: number; duplicates: number; rejected: RejectedEvent[] }): AckFrame {
  return { ack: seq, accepted: answer.accepted, duplicates: answer.duplicates, rejected: answer.rejected };
}

export function errorFrame(code: ErrorCode, message?: string, seq?: number): ErrorFrame {
  const error: ErrorFrame["error"] = { code, message: message ?? ERRORS[code].message };
  if (seq !== undefined) error.seq = seq;
  return { error };
}

export function throttleFrame(retryAfterMs: number): ThrottleFrame {
  return { throttle: { retry_after_ms: Math.max(1, Math.ceil(retryAfterMs)) } };
}

/** The client side: reads a server frame, or throws when it is none of ack/error/throttle. */
export function decodeServerFrame(payload: string | Uint8Array): ServerFrame {
  let value: unknown;
  try {
    value = typeof payload === "string" ? JSON.parse(payload) : unpackr.unpack(payload);
  } catch {
    throw new Error("server frame is not valid JSON/msgpack");
  }
  if (typeof value === "object" && value !== null) {
    const frame = value as Record<string, unknown>;
    if (readSeq(frame.ack) !== undefined && Array.isArray(frame.rejected)) return frame as unknown as AckFrame;
    const error = frame.error as Record<string, unknown> | undefined;
    if (typeof error === "object" && error !== null && typeof error.code === "string") return frame as unknown as ErrorFrame;
    const throttle = frame.throttle as Record<string, unknown> | undefined;
    if (typeof throttle === "object" && throttle !== null && typeof throttle.retry_after_ms === "number") {
      return frame as unknown as ThrottleFrame;
    }
  }
  throw new Error("server frame is not an ack, error or throttle frame");
}

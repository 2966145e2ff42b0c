/**
 * Every error the node returns to a client, in one place: a stable machine code, the HTTP
 * status it travels with, and a default message. Clients switch on `code`; messages may change.
 * Response body: {"error":{"code":"...","message":"..."}}.
 */
export const ERRORS = {
  invalid_json: { status: 400, message: "Request body is not valid JSON" },
  invalid_body: { status: 400, message: 'Request body must be {"events":[...]}' },
  invalid_events: { status: 400, message: "Every event in the request was rejected" },
  too_deep: { status: 400, message: "Request body nests deeper than allowed" },
  unsafe_json: { status: 400, message: "Request body uses a forbidden key (__proto__, constructor.prototype)" },
  unauthorized: { status: 401, message: "Missing or unknown API key" },
  forbidden: { status: 403, message: "This API key may not do that" },
  origin_not_allowed: { status: 403, message: "This origin may not call this endpoint" },
  not_found: { status: 404, message: "No such endpoint" },
  method_not_allowed: { status: 405, message: "Method not allowed on this endpoint" },
  payload_too_large: { status: 413, message: "Request body is larger than allowed" },
  too_many_events: { status: 413, message: "Request holds more events than allowed" },
  unsupported_media_type: { status: 415, message: "Content-Type must be application/json" },
  unsupported_encoding: { status: 415, message: "Content-Encoding must be identity or gzip" },
  rate_limited: { status: 429, message: "Rate limit exceeded" },
  request_timeout: { status: 408, message: "Request body was not received in time" },
  internal: { status: 500, message: "Internal error" },
  unavailable: { status: 503, message: "The durable path is unavailable; retry later" },
  shutting_down: { status: 503, message: "This node is shutting down; retry on another node" },
  // Event counts (GET /v1/metrics)
  invalid_query: { status: 400, message: "Query parameters are not valid" },
  counts_unsupported: { status: 501, message: "Event counts need ClickHouse storage (CLICKHOUSE_URL)" },
  store_unavailable: { status: 503, message: "The event store did not answer; retry later" },
  // WebSocket streams (GET /v1/stream). The status is nominal: these travel in error frames.
  invalid_frame: { status: 400, message: 'WebSocket frame must be {"seq":n,"events":[...]} as JSON text or msgpack binary' },
  frame_too_large: { status: 413, message: "WebSocket frame is larger than allowed" },
  too_many_inflight: { status: 429, message: "Too many unacknowledged batches on this stream; wait for acks and resend" },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

export class IngestError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message?: string,
    /** Seconds, for 429 and 503: sent as Retry-After. */
    readonly retryAfterSec?: number,
  ) {
    super(message ?? ERRORS[code].message);
    this.name = "IngestError";
    this.status = ERRORS[code].status;
  }
}

export function errorBody(code: ErrorCode, message?: string): string {
  return JSON.stringify({ error: { code, message: message ?? ERRORS[code].message } });
}

/**
 * GET /v1/stream: SDKs stream batches over one WebSocket instead of one HTTP request each.
 *
 * Each batch frame runs through the same IngestHandler.ingest as POST /v1/events and is acked
 * only once durable; many batches may be in flight per socket and acks go out as each one
 * completes. Memory per socket stays bounded: at most `maxInflight` un-acked batches (more are
 * refused with a throttle + too_many_inflight error, never queued), new batches are refused
 * while the socket's send buffer is above half of `maxBackpressureBytes` (the client is not
 * reading its acks), and above `maxBackpressureBytes` uWS drops the send and closes the socket.
 *
 * uWS rules kept here: everything needed from `req` is copied inside `upgrade` (which does no
 * async work, so needs no onAborted), writes after an await are corked, and a socket is never
 * touched after its close handler ran (`closed` in its user data).
 */
import uWS from "uWebSockets.js";
import { errorBody, IngestError, type ErrorCode } from "../../actors/common/errors";
import { presentedKey, type ApiKeyStore, type Principal } from "./api-keys";
import type { IngestAnswer } from "./ingest-handler";
import { orderingKeys, SessionBarrier, SessionChains } from "./session-order";
import {
  ackFrame,
  CLOSE,
  decodeClientFrame,
  encodeFrame,
  errorFrame,
  FrameError,
  RETRYABLE_CODES,
  throttleFrame,
  type BatchFrame,
  type FrameEncoding,
  type ServerFrame,
} from "./ws-frames";

export const STREAM_PATH = "/v1/stream";
/** The subprotocol a client may offer next to `key.<apikey>`; echoed in preference to the key. */
export const STREAM_PROTOCOL = "ingest.v1";
const KEY_PROTOCOL_PREFIX = "key.";

/** How long a client is told to wait when its stream is over the in-flight cap or not reading. */
const INFLIGHT_RETRY_MS = 100;
const BACKPRESSURE_RETRY_MS = 250;
/** Sessions a stream may have blocked (refused batches not yet resent) before it is closed. */
const MAX_BLOCKED_SESSIONS = 10_000;

export interface StreamLimits {
  /** Frames above this get frame_too_large + close 1009. */
  maxPayloadBytes: number;
  maxEventsPerBatch: number;
  maxDepth: number;
  idleTimeoutSec: number;
  maxInflight: number;
  maxBackpressureBytes: number;
}

export type FrameOutcome = "acked" | "rejected" | "throttled" | "invalid" | "dropped";

export interface StreamDeps {
  handler: { ingest(principal: Principal, events: unknown[], receivedAt: number): Promise<IngestAnswer> };
  keys: ApiKeyStore;
  limits: StreamLimits;
  /**
   * Called for an upgrade without a valid key, with the socket's peer and the request's
   * X-Forwarded-For: the ms to wait when the client's address is over its budget (answered 429
   * instead of 401, as for HTTP), else null.
   */
  unauthenticated?: (remoteAddress: string, forwardedFor: string | undefined) => number | null;
  /** Whether a browser page of this `Origin` (undefined: not a browser) may open a stream (CORS_ALLOWED_ORIGINS). */
  originAllowed?: (origin: string | undefined) => boolean;
  record?: {
    connections(open: number): void;
    frame(outcome: FrameOutcome): void;
    unauthorized(): void;
  };
  log?: {
    warn(obj: object, msg: string): void;
    error(obj: object, msg: string): void;
  };
}

export interface StreamHandle {
  /** Batches received and not yet answered, over all sockets. */
  inFlight(): number;
  connections(): number;
  /** New upgrades get 503 shutting_down, new batches a shutting_down error (retryable elsewhere). */
  stopAccepting(): void;
  /** Resolves once no batch is in flight. */
  drained(): Promise<void>;
  /** Closes every open socket (after the acks already queued on it). */
  closeAll(code: number, reason: string): void;
  /** Closes the streams whose key `revoked` says may no longer send (a key reload); returns how many. */
  closeRevoked(revoked: (principal: Principal) => boolean, code: number, reason: string): number;
}

interface StreamSocket {
  id: number;
  principal: Principal;
  closed: boolean;
  inflight: number;
  chains: SessionChains<BatchOutcome>;
  barrier: SessionBarrier;
  /** Set when batches are refused because acks are not read, cleared by `drain`: logs once per episode. */
  backpressured: boolean;
}

type BatchOutcome = { ok: true; answer: IngestAnswer } | { ok: false; code: ErrorCode; message: string; retryAfterMs?: number };

type WS = uWS.WebSocket<StreamSocket>;

/** The key from X-API-Key / Bearer, else a `key.<apikey>` subprotocol, else `?api_key=`. */
export function streamKey(headers: Record<string, string>, protocols: string, query: string): string | undefined {
  const fromHeaders = presentedKey(headers);
  if (fromHeaders) return fromHeaders;
  for (const entry of protocols.split(",")) {
    const protocol = entry.trim();
    if (protocol.startsWith(KEY_PROTOCOL_PREFIX) && protocol.length > KEY_PROTOCOL_PREFIX.length) {
      return protocol.slice(KEY_PROTOCOL_PREFIX.length);
    }
  }
  return new URLSearchParams(query).get("api_key") ?? undefined;
}

/**
 * The subprotocol to echo. Browsers fail the handshake when they offered protocols and none
 * comes back, so one is always chosen when any was offered: `ingest.v1` if offered, else the
 * `key.` entry (echoed only to the client that sent it), else the first entry.
 */
export function chooseProtocol(protocols: string): string {
  const offered = protocols.split(",").map((p) => p.trim()).filter(Boolean);
  if (offered.includes(STREAM_PROTOCOL)) return STREAM_PROTOCOL;
  return offered.find((p) => p.startsWith(KEY_PROTOCOL_PREFIX)) ?? offered[0] ?? "";
}

export function registerStreamRoute(app: uWS.TemplatedApp, deps: StreamDeps): StreamHandle {
  const { limits } = deps;
  const sockets = new Set<WS>();
  let accepting = true;
  let inFlight = 0;
  let drainWaiters: Array<() => void> = [];
  let nextId = 1;
  const frameLimits = { maxPayloadBytes: limits.maxPayloadBytes, maxEventsPerBatch: limits.maxEventsPerBatch, maxDepth: limits.maxDepth };
  const softBackpressure = Math.floor(limits.maxBackpressureBytes / 2);

  const record = (outcome: FrameOutcome) => deps.record?.frame(outcome);

  const send = (ws: WS, conn: StreamSocket, frame: ServerFrame, encoding: FrameEncoding): void => {
    if (conn.closed) return;
    const status = ws.send(encodeFrame(frame, encoding), encoding === "msgpack");
    if (status === 2) {
      // Over maxBackpressure: uWS dropped it and (closeOnBackpressureLimit) is closing the socket;
      // the client resends whatever it has not seen acked after it reconnects.
      record("dropped");
    }
  };

  const closeWith = (ws: WS, conn: StreamSocket, code: number, reason: string): void => {
    if (conn.closed) return;
    conn.closed = true;
    ws.end(code, reason);
  };

  /** Closes the open streams whose key `which` picks; returns how many. */
  const closeWhere = (which: (principal: Principal) => boolean, code: number, reason: string): number => {
    let closed = 0;
    for (const ws of [...sockets]) {
      const conn = ws.getUserData();
      if (conn.closed || !which(conn.principal)) continue;
      ws.cork(() => closeWith(ws, conn, code, reason));
      closed++;
    }
    return closed;
  };

  /** A batch that will not be ingested now: the client resends it (retryable codes) or drops it. */
  const refuse = (
    ws: WS,
    conn: StreamSocket,
    seq: number,
    keys: readonly string[],
    failure: Extract<BatchOutcome, { ok: false }>,
    encoding: FrameEncoding,
  ): void => {
    if (failure.retryAfterMs !== undefined) send(ws, conn, throttleFrame(failure.retryAfterMs), encoding);
    send(ws, conn, errorFrame(failure.code, failure.message, seq), encoding);
    record(failure.retryAfterMs !== undefined ? "throttled" : "rejected");
    if (RETRYABLE_CODES.has(failure.code)) {
      conn.barrier.block(keys, { seq, code: failure.code, retryAfterMs: failure.retryAfterMs });
      // A client that never resends would grow this without bound: start it over.
      if (conn.barrier.size > MAX_BLOCKED_SESSIONS) {
        send(ws, conn, errorFrame("too_many_inflight", "Too many refused batches were not resent"), encoding);
        closeWith(ws, conn, CLOSE.tryAgainLater, "too many refused batches");
      }
    }
  };

  const finished = (): void => {
    inFlight--;
    if (inFlight === 0 && drainWaiters.length > 0) {
      const waiters = drainWaiters;
      drainWaiters = [];
      for (const resolve of waiters) resolve();
    }
  };

  const ingestBatch = async (conn: StreamSocket, frame: BatchFrame, receivedAt: number, previous: BatchOutcome[]): Promise<BatchOutcome> => {
    // An earlier batch of the same sessions will be resent: this one must follow it, not pass it.
    const blocked = previous.find((p): p is Extract<BatchOutcome, { ok: false }> => !p.ok && RETRYABLE_CODES.has(p.code));
    if (blocked) return { ...blocked, message: `An earlier batch of the same sessions failed (${blocked.code}); resend both in order` };
    try {
      return { ok: true, answer: await deps.handler.ingest(conn.principal, frame.events, receivedAt) };
    } catch (error) {
      if (error instanceof IngestError) {
        const retryAfterMs = error.code === "rate_limited" && error.retryAfterSec !== undefined ? error.retryAfterSec * 1000 : undefined;
        return { ok: false, code: error.code, message: error.message, retryAfterMs };
      }
      deps.log?.error({ err: error, stream: conn.id, seq: frame.seq }, "stream batch failed");
      return { ok: false, code: "internal", message: "Internal error" };
    }
  };

  const admit = (ws: WS, conn: StreamSocket, frame: BatchFrame, encoding: FrameEncoding, receivedAt: number): void => {
    const keys = orderingKeys(frame.events);
    if (!accepting) {
      return refuse(ws, conn, frame.seq, keys, { ok: false, code: "shutting_down", message: "This node is shutting down; resend on a new connection" }, encoding);
    }
    if (conn.inflight >= limits.maxInflight) {
      return refuse(
        ws,
        conn,
        frame.seq,
        keys,
        { ok: false, code: "too_many_inflight", message: `At most ${limits.maxInflight} un-acked batches per stream`, retryAfterMs: INFLIGHT_RETRY_MS },
        encoding,
      );
    }
    if (ws.getBufferedAmount() > softBackpressure) {
      if (!conn.backpressured) {
        conn.backpressured = true;
        deps.log?.warn({ stream: conn.id, buffered: ws.getBufferedAmount() }, "stream is not reading its acks: refusing new batches");
      }
      return refuse(
        ws,
        conn,
        frame.seq,
        keys,
        { ok: false, code: "too_many_inflight", message: "The stream is not reading its acks", retryAfterMs: BACKPRESSURE_RETRY_MS },
        encoding,
      );
    }
    const block = conn.barrier.check(keys, frame.seq);
    if (block) {
      return refuse(
        ws,
        conn,
        frame.seq,
        keys,
        { ok: false, code: block.code as ErrorCode, message: `Resend batch ${block.seq} of the same sessions first`, retryAfterMs: block.retryAfterMs },
        encoding,
      );
    }

    conn.inflight++;
    inFlight++;
    conn.chains
      .run(keys, (previous) => ingestBatch(conn, frame, receivedAt, previous))
      .then((outcome) => {
        conn.inflight--;
        try {
          // The socket may be gone: the batch still finished (durable or not), and the client
          // resends it after reconnecting, where dedup absorbs what was stored.
          if (!conn.closed) {
            ws.cork(() => {
              if (outcome.ok) {
                send(ws, conn, ackFrame(frame.seq, outcome.answer), encoding);
                record("acked");
              } else {
                refuse(ws, conn, frame.seq, keys, outcome, encoding);
              }
            });
          }
        } finally {
          // After the ack is queued: a drain waiting on this then closes the socket behind it.
          finished();
        }
      })
      .catch((error: unknown) => {
        deps.log?.error({ err: error, stream: conn.id }, "stream reply failed");
      });
  };

  app.ws<StreamSocket>(STREAM_PATH, {
    // uWS cuts a socket without a close frame (1006) for a message above maxPayloadLength, so
    // it is set above our limit: frames in between get a stable frame_too_large + 1009.
    maxPayloadLength: limits.maxPayloadBytes + Math.min(limits.maxPayloadBytes, 1024 * 1024),
    idleTimeout: limits.idleTimeoutSec,
    sendPingsAutomatically: true,
    maxBackpressure: limits.maxBackpressureBytes,
    // The typings say number; uWS reads it as a boolean (non-zero = close the socket when a send
    // is dropped for backpressure), which is what bounds a socket that never reads.
    closeOnBackpressureLimit: 1,
    compression: uWS.DISABLED,

    upgrade: (res, req, context) => {
      // Copied now: `req` is only valid during this callback.
      const headers: Record<string, string> = {};
      for (const name of ["x-api-key", "authorization"]) {
        const value = req.getHeader(name);
        if (value) headers[name] = value;
      }
      const protocols = req.getHeader("sec-websocket-protocol");
      const query = req.getQuery() ?? "";
      const secKey = req.getHeader("sec-websocket-key");
      const extensions = req.getHeader("sec-websocket-extensions");
      const remoteAddress = Buffer.from(res.getRemoteAddressAsText()).toString();
      const forwardedFor = req.getHeader("x-forwarded-for") || undefined;
      const origin = req.getHeader("origin") || undefined;

      if (!accepting) return refuseUpgrade(res, "shutting_down", "503 Service Unavailable", { "Retry-After": "1" });
      // A page of another site may open a socket with a key it copied; CORS does not cover sockets.
      if (deps.originAllowed && !deps.originAllowed(origin)) return refuseUpgrade(res, "origin_not_allowed", "403 Forbidden");
      const principal = deps.keys.authenticate(streamKey(headers, protocols, query));
      if (!principal) {
        deps.record?.unauthorized();
        const retryAfterMs = deps.unauthenticated?.(remoteAddress, forwardedFor) ?? null;
        if (retryAfterMs !== null) {
          return refuseUpgrade(res, "rate_limited", "429 Too Many Requests", { "Retry-After": String(Math.max(1, Math.ceil(retryAfterMs / 1000))) });
        }
        return refuseUpgrade(res, "unauthorized", "401 Unauthorized");
      }
      // A key limited to reading counts (API_KEYS_FILE `scopes`) may not stream events.
      if (!principal.scopes.has("ingest")) return refuseUpgrade(res, "forbidden", "403 Forbidden");
      const data: StreamSocket = {
        id: nextId++,
        principal,
        closed: false,
        inflight: 0,
        chains: new SessionChains<BatchOutcome>(),
        barrier: new SessionBarrier(),
        backpressured: false,
      };
      res.upgrade(data, secKey, chooseProtocol(protocols), extensions, context);
    },

    open: (ws) => {
      sockets.add(ws);
      deps.record?.connections(sockets.size);
    },

    message: (ws, message, isBinary) => {
      const conn = ws.getUserData();
      if (conn.closed) return;
      const receivedAt = Date.now();
      const encoding: FrameEncoding = isBinary ? "msgpack" : "json";
      let frame: BatchFrame;
      try {
        // Decoded synchronously: `message` is reused by uWS once this callback returns.
        frame = decodeClientFrame(new Uint8Array(message), isBinary, frameLimits);
      } catch (error) {
        if (!(error instanceof FrameError)) {
          // Never let an exception escape into uWS (it would take the process down).
          deps.log?.error({ err: error, stream: conn.id }, "stream frame decoding failed");
          closeWith(ws, conn, CLOSE.internalError, "internal error");
          return;
        }
        record("invalid");
        send(ws, conn, errorFrame(error.code, error.message, error.seq), encoding);
        closeWith(ws, conn, error.closeCode, error.code);
        return;
      }
      admit(ws, conn, frame, encoding, receivedAt);
    },

    drain: (ws) => {
      // Acks flow again. Nothing to resume (uWS cannot pause reading a WebSocket): admission
      // checks the buffered amount on every batch, this only resets the warning.
      const conn = ws.getUserData();
      if (ws.getBufferedAmount() <= softBackpressure) conn.backpressured = false;
    },

    close: (ws) => {
      const conn = ws.getUserData();
      conn.closed = true;
      sockets.delete(ws);
      deps.record?.connections(sockets.size);
    },
  });

  return {
    inFlight: () => inFlight,
    connections: () => sockets.size,
    stopAccepting: () => {
      accepting = false;
    },
    drained: () => (inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => drainWaiters.push(resolve))),
    closeAll: (code, reason) => {
      closeWhere(() => true, code, reason);
    },
    closeRevoked: (revoked, code, reason) => closeWhere(revoked, code, reason),
  };
}

function refuseUpgrade(res: uWS.HttpResponse, code: ErrorCode, status: string, headers: Record<string, string> = {}): void {
  res.cork(() => {
    res.writeStatus(status).writeHeader("Content-Type", "application/json");
    for (const name in headers) res.writeHeader(name, headers[name]!);
    // Close the connection: no socket, and nothing more is read from this client.
    res.end(errorBody(code), true);
  });
}

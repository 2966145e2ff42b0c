/**
 * The uWebSockets.js HTTP layer of the edge: routing, bounded body reading, and writing
 * responses by uWS rules (everything from `req` is copied before any await; `onAborted` is set
 * before the first async step; writes after an await are corked and skipped when aborted).
 * What a request means is decided elsewhere (IngestHandler); this file only moves bytes.
 */
import uWS from "uWebSockets.js";
import { errorBody, ERRORS, type ErrorCode } from "../../actors/common/errors";
import { EVENT_COUNTS_PATH } from "../../actors/common/event-counts";
import type { CorsPolicy } from "./cors";

export interface HttpReply {
  status: number;
  body: string;
  contentType?: string;
  headers?: Record<string, string>;
  /** Events this reply acknowledges as durable (what silent mode reports as `processed`). */
  accepted?: number;
}

export interface IncomingRequest {
  method: string;
  url: string;
  query: string;
  headers: Record<string, string>;
  remoteAddress: string;
  receivedAt: number;
}

export interface BodyLimits {
  maxBodyBytes: number;
  bodyTimeoutMs: number;
}

export interface EdgeRoutes {
  health(): HttpReply;
  ready(): Promise<HttpReply>;
  /** GET /metrics: Prometheus text, or what the request asks for otherwise (event counts). */
  metrics(request: IncomingRequest): HttpReply | Promise<HttpReply>;
  /** GET /v1/metrics: counts of stored events. */
  eventCounts(request: IncomingRequest): Promise<HttpReply>;
  /** The cluster's status page; `accept` picks HTML (a browser) or JSON. */
  status(accept: string | undefined): Promise<HttpReply>;
  /** uWS URL patterns whose POSTs are ingest requests (preflight, then ingest); other methods get 405. */
  ingestPatterns: readonly string[];
  /** Checks that need no body (auth, content type, rate of unauthenticated callers). A reply here ends the request unread. */
  preflight(request: IncomingRequest): HttpReply | null;
  ingest(request: IncomingRequest, body: Buffer): Promise<HttpReply>;
  /**
   * Last word on every reply to an ingest POST (see `ingestPatterns`), whichever step
   * produced it (preflight, body limits, timeout, ingest, shutdown): per-tenant answer shapes and
   * request metrics.
   */
  present?(request: IncomingRequest, reply: HttpReply): HttpReply;
  /** Optional extra routes (the WebSocket endpoint) registered on the same app. */
  extend?(app: uWS.TemplatedApp): void;
}

const STATUS_TEXT: Record<number, string> = {
  200: "200 OK",
  202: "202 Accepted",
  204: "204 No Content",
  400: "400 Bad Request",
  401: "401 Unauthorized",
  403: "403 Forbidden",
  404: "404 Not Found",
  405: "405 Method Not Allowed",
  408: "408 Request Timeout",
  413: "413 Payload Too Large",
  415: "415 Unsupported Media Type",
  429: "429 Too Many Requests",
  500: "500 Internal Server Error",
  501: "501 Not Implemented",
  503: "503 Service Unavailable",
};

export function errorReply(code: ErrorCode, message?: string, retryAfterSec?: number): HttpReply {
  const reply: HttpReply = { status: ERRORS[code].status, body: errorBody(code, message) };
  if (retryAfterSec !== undefined) reply.headers = { "Retry-After": String(Math.max(1, Math.ceil(retryAfterSec))) };
  return reply;
}

/** Headers the edge reads; copying only these keeps the per-request cost flat. */
const READ_HEADERS = [
  "x-api-key",
  "authorization",
  "content-type",
  "content-encoding",
  "content-length",
  "idempotency-key",
  "x-forwarded-for",
  "origin",
] as const;

interface PendingBody {
  startedAt: number;
  expire: () => void;
}

export class EdgeHttpServer {
  private readonly app: uWS.TemplatedApp;
  private listenSocket: uWS.us_listen_socket | null = null;
  private inFlight = 0;
  private accepting = true;
  private readonly pendingBodies = new Set<PendingBody>();
  private readonly sweeper: NodeJS.Timeout;
  private drainWaiters: Array<() => void> = [];

  constructor(
    private readonly routes: EdgeRoutes,
    private readonly limits: BodyLimits,
    private readonly onError: (error: unknown) => void,
    /** Browsers calling from other origins: preflights, and the marks on ingest and count answers. */
    private readonly cors: CorsPolicy,
  ) {
    this.app = uWS.App();
    /** A browser's preflight of a path that takes `methods`. */
    const preflight = (methods: string) => (res: uWS.HttpResponse, req: uWS.HttpRequest) =>
      this.sendNow(res, cors.preflight(req.getHeader("origin") || undefined, methods));
    this.app.get("/health", (res) => this.sendNow(res, routes.health()));
    // GET /metrics is also seeds 003/004's count query (the routes tell which), so browsers may call it.
    this.app.get("/metrics", (res, req) => this.handleBrowserGet(res, req, routes.metrics));
    this.app.options("/metrics", preflight("GET, OPTIONS"));
    this.app.get(EVENT_COUNTS_PATH, (res, req) => this.handleBrowserGet(res, req, routes.eventCounts));
    this.app.options(EVENT_COUNTS_PATH, preflight("GET, OPTIONS"));
    this.app.any(EVENT_COUNTS_PATH, (res) => this.sendNow(res, errorReply("method_not_allowed")));
    this.app.get("/ready", (res) => this.handleAsync(res, () => routes.ready()));
    this.app.get("/status", (res, req) => {
      const accept = req.getHeader("accept") || undefined; // read before any await (uWS rule)
      this.handleAsync(res, () => routes.status(accept));
    });
    // Every path that may take events comes here; the routes decide which do (404 for the rest).
    for (const pattern of routes.ingestPatterns) {
      this.app.post(pattern, (res, req) => this.handleIngest(res, req));
      this.app.options(pattern, preflight("POST, OPTIONS"));
      this.app.any(pattern, (res) => this.sendNow(res, errorReply("method_not_allowed")));
    }
    routes.extend?.(this.app);
    this.app.any("/*", (res) => this.sendNow(res, errorReply("not_found")));
    // Slow clients: a body that has not arrived in time is answered 408 and the connection closed.
    this.sweeper = setInterval(() => this.expireSlowBodies(), Math.min(1000, limits.bodyTimeoutMs)).unref();
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.app.listen(host, port, (socket) => {
        if (!socket) return reject(new Error(`edge could not listen on ${host}:${port}`));
        this.listenSocket = socket;
        resolve(uWS.us_socket_local_port(socket));
      });
    });
  }

  /** Stops accepting connections and requests; requests already being handled go on. */
  stopAccepting(): void {
    this.accepting = false;
    if (this.listenSocket) {
      uWS.us_listen_socket_close(this.listenSocket);
      this.listenSocket = null;
    }
  }

  /** Resolves when no request is in flight any more. */
  drained(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  close(): void {
    this.stopAccepting();
    clearInterval(this.sweeper);
    this.app.close();
  }

  get requestsInFlight(): number {
    return this.inFlight;
  }

  private handleIngest(res: uWS.HttpResponse, req: uWS.HttpRequest): void {
    const request = readRequest(res, req);
    const origin = request.headers.origin;
    const present = (reply: HttpReply): HttpReply =>
      this.cors.decorate(origin, this.routes.present ? this.routes.present(request, reply) : reply);
    if (!this.accepting) return this.sendNow(res, present(errorReply("shutting_down", undefined, 1)), true);
    const early = this.cors.refusal(origin) ?? this.routes.preflight(request);
    if (early) return this.sendNow(res, present(early), true);

    const declared = request.headers["content-length"];
    const declaredLength = declared ? Number(declared) : NaN;
    if (declaredLength > this.limits.maxBodyBytes) {
      return this.sendNow(res, present(errorReply("payload_too_large", `Body exceeds ${this.limits.maxBodyBytes} bytes`)), true);
    }

    this.begin();
    let aborted = false;
    let done = false;
    const pending: PendingBody = {
      startedAt: Date.now(),
      expire: () => {
        if (done || aborted) return;
        done = true;
        this.pendingBodies.delete(pending);
        this.write(res, present(errorReply("request_timeout")), true);
        this.end();
      },
    };
    res.onAborted(() => {
      aborted = true;
      if (!done) {
        done = true;
        this.pendingBodies.delete(pending);
        this.end();
      }
    });
    this.pendingBodies.add(pending);

    // Known length: one allocation. Unknown (chunked): grow as chunks come, still bounded.
    // (A declared length that is not a plain non-negative integer is ignored, not trusted.)
    let buffer = Buffer.allocUnsafe(Number.isSafeInteger(declaredLength) && declaredLength >= 0 ? declaredLength : 16 * 1024);
    let length = 0;
    res.onData((chunk, isLast) => {
      if (done) return;
      const bytes = new Uint8Array(chunk);
      if (length + bytes.length > this.limits.maxBodyBytes) {
        done = true;
        this.pendingBodies.delete(pending);
        this.write(res, present(errorReply("payload_too_large", `Body exceeds ${this.limits.maxBodyBytes} bytes`)), true);
        this.end();
        return;
      }
      if (length + bytes.length > buffer.length) {
        const grown = Buffer.allocUnsafe(Math.min(this.limits.maxBodyBytes, Math.max(buffer.length * 2, length + bytes.length)));
        buffer.copy(grown, 0, 0, length);
        buffer = grown;
      }
      // The chunk's memory belongs to uWS and is reused after this callback: copy it now.
      buffer.set(bytes, length);
      length += bytes.length;
      if (!isLast) return;
      this.pendingBodies.delete(pending);
      const body = buffer.subarray(0, length);
      this.routes.ingest(request, body).then(
        (reply) => this.finish(res, present(reply), () => aborted, () => (done = true)),
        (error: unknown) => {
          this.onError(error);
          this.finish(res, present(errorReply("internal")), () => aborted, () => (done = true));
        },
      );
    });
  }

  private finish(res: uWS.HttpResponse, reply: HttpReply, isAborted: () => boolean, markDone: () => void): void {
    if (!isAborted()) {
      markDone();
      this.write(res, reply, !this.accepting);
      this.end();
    }
  }

  /** A GET a page may make from another origin (counts): refused or answered and marked per the CORS policy. */
  private handleBrowserGet(res: uWS.HttpResponse, req: uWS.HttpRequest, route: (request: IncomingRequest) => HttpReply | Promise<HttpReply>): void {
    const request = readRequest(res, req); // before any await (uWS rule)
    const origin = request.headers.origin;
    const refused = this.cors.refusal(origin);
    if (refused) return this.sendNow(res, refused);
    this.handleAsync(res, async () => this.cors.decorate(origin, await route(request)));
  }

  private handleAsync(res: uWS.HttpResponse, produce: () => Promise<HttpReply>): void {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    produce().then(
      (reply) => {
        if (!aborted) this.write(res, reply);
      },
      (error: unknown) => {
        this.onError(error);
        if (!aborted) this.write(res, errorReply("internal"));
      },
    );
  }

  private sendNow(res: uWS.HttpResponse, reply: HttpReply, closeConnection = false): void {
    this.write(res, reply, closeConnection);
  }

  private write(res: uWS.HttpResponse, reply: HttpReply, closeConnection = false): void {
    res.cork(() => {
      res.writeStatus(STATUS_TEXT[reply.status] ?? String(reply.status));
      // 204 (a CORS preflight's answer) has no body, so neither a type nor a length (RFC 9110).
      if (reply.status !== 204) res.writeHeader("Content-Type", reply.contentType ?? "application/json");
      if (reply.headers) for (const name in reply.headers) res.writeHeader(name, reply.headers[name]!);
      // A client we will not read further (413 mid-body, shutdown) must not reuse the connection.
      // (endWithoutBody with no arguments is the form that writes no Content-Length.)
      if (reply.status === 204 && !closeConnection) res.endWithoutBody();
      else res.end(reply.body, closeConnection);
    });
  }

  private begin(): void {
    this.inFlight++;
  }

  private end(): void {
    this.inFlight--;
    if (this.inFlight === 0 && this.drainWaiters.length > 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      waiters.forEach((w) => w());
    }
  }

  private expireSlowBodies(): void {
    const deadline = Date.now() - this.limits.bodyTimeoutMs;
    for (const pending of this.pendingBodies) if (pending.startedAt < deadline) pending.expire();
  }
}

function readRequest(res: uWS.HttpResponse, req: uWS.HttpRequest): IncomingRequest {
  const headers: Record<string, string> = {};
  for (const name of READ_HEADERS) {
    const value = req.getHeader(name);
    if (value) headers[name] = value;
  }
  return {
    method: req.getCaseSensitiveMethod(),
    url: req.getUrl(),
    query: req.getQuery() ?? "",
    headers,
    remoteAddress: Buffer.from(res.getRemoteAddressAsText()).toString(),
    receivedAt: Date.now(),
  };
}

/**
 * The edge service: owns the uWS server and wires HTTP requests to the other services through
 * Moleculer calls (one call per batch per hop). Thin: the steps live in nodes/edge/*.
 */
import type { ServiceBroker, ServiceSchema } from "moleculer";
import { reloadApiKeys, type ApiKeyEntry, type Config } from "../../config/env";
import { tenantSettings, userLimits, type TenantTable } from "../../config/tenants";
import type { SessionBatch, SessionIngestResult } from "../common/event";
import { IngestError } from "../common/errors";
import { EVENT_COUNTS_PATH, type EventCountQuery, type EventCounts } from "../common/event-counts";
import { METRIC } from "../common/metrics";
import { statusPageReply } from "../status/status.service";
import { serviceAvailable } from "../common/broker";
import { ApiKeyStore, presentedKey, type Principal } from "../../nodes/edge/api-keys";
import { applyEventRoute, eventRouteOf, INGEST_URL_PATTERNS, UNKNOWN_ROUTE } from "../../nodes/edge/event-routes";
import { EdgeHttpServer, errorReply, type HttpReply, type IncomingRequest } from "../../nodes/edge/http-server";
import { IngestHandler, type ValidationOutcome } from "../../nodes/edge/ingest-handler";
import { clientAddress } from "../../nodes/edge/client-address";
import { asksForEventCounts, EventCountRoute } from "../../nodes/edge/event-counts-route";
import { IpLimiter } from "../../nodes/edge/ip-limiter";
import { UserLimiter } from "../../nodes/edge/user-limiter";
import { LeaseCache } from "../../nodes/edge/rate-lease";
import { silentReply } from "../../nodes/edge/silent-mode";
import type { BucketLimits } from "../rate-limiter/token-bucket";
import { CLOSE } from "../../nodes/edge/ws-frames";
import { registerStreamRoute, type StreamHandle } from "../../nodes/edge/ws-stream";
import type { ScrapeOnlyPrometheusReporter } from "./prometheus-text";
import { LeaseRouter } from "./lease-router";
import { SessionRouter } from "./session-router";

export interface EdgeServiceDeps {
  prometheus: ScrapeOnlyPrometheusReporter;
  /** Services the edge needs before it reports ready. */
  requiredServices: string[];
  /** Called once the edge listens, with the bound port (PORT=0 picks a free one). */
  onListening?: (port: number) => void;
}

/** Count queries scan the store: a few at a time per node, each within the sink's own timeout (10 s). */
const MAX_COUNTS_IN_FLIGHT = 4;
const COUNT_CALL_TIMEOUT_MS = 15_000;

const JSON_TYPES = /^(application\/json|text\/plain)(\s*;.*)?$/i;

export function createEdgeService(config: Config, deps: EdgeServiceDeps): ServiceSchema {
  let server: EdgeHttpServer | null = null;
  let router: SessionRouter | null = null;
  let leaseRouter: LeaseRouter | null = null;
  let leaseSweeper: NodeJS.Timeout | null = null;
  let stream: StreamHandle | null = null;
  let reloadKeys: (() => void) | null = null;
  // Tenant settings (rate limits, per-user limits, silent mode): replaced whole on SIGHUP.
  let tenants: TenantTable = config.tenants;
  let applyTenants: (() => void) | null = null;

  return {
    name: "edge",
    events: {
      /** SIGHUP (nodes/node.ts): API_KEYS_FILE read again, without a restart. */
      "keys.reload"() {
        reloadKeys?.();
      },
      /** SIGHUP (nodes/node.ts): TENANTS_FILE read again and validated; its table. */
      "tenants.reload"(ctx: { params: TenantTable }) {
        tenants = ctx.params;
        applyTenants?.();
      },
      /** A session node is leaving: route its sessions to their next owner from now on. */
      "session.draining"(ctx: { params: { nodeID: string } }) {
        router?.nodeDraining(ctx.params.nodeID);
      },
    },
    async started() {
      const broker: ServiceBroker = this.broker;
      const keys = new ApiKeyStore(config.apiKeys);
      router = new SessionRouter(broker, { cluster: config.natsUrl !== null, callTimeoutMs: 10_000 });
      leaseRouter = new LeaseRouter(broker, { cluster: config.natsUrl !== null, callTimeoutMs: 5_000 });
      // A key's bucket has its tenant's limits: resolved at start-up and again when keys are reloaded.
      const limitsByKey = new Map<string, BucketLimits>();
      const resolveLimits = (): void => {
        limitsByKey.clear();
        for (const principal of keys.principals()) {
          const settings = tenantSettings(tenants, principal.tenant);
          limitsByKey.set(principal.keyId, { ratePerSec: settings.ratePerSec, burst: settings.burst });
        }
      };
      resolveLimits();
      applyTenants = () => {
        resolveLimits();
        this.logger.info({ tenants: tenants.byTenant.size }, "tenant settings reloaded");
      };
      reloadKeys = () => {
        let entries: ApiKeyEntry[];
        try {
          entries = reloadApiKeys(config);
        } catch (error) {
          this.logger.error({ err: error }, "API keys not reloaded: the keys in use stay");
          return;
        }
        keys.replace(entries);
        resolveLimits();
        // A stream keeps the key it opened with: close those whose key is gone, moved to another
        // tenant, or may no longer send (revoking a leaked key must not wait for a reconnect).
        const now = new Map(keys.principals().map((p) => [p.keyId, p]));
        const revoked = (p: Principal): boolean => {
          const current = now.get(p.keyId);
          return current === undefined || current.tenant !== p.tenant || !current.scopes.has("ingest");
        };
        const streamsClosed = stream?.closeRevoked(revoked, CLOSE.policyViolation, "API key revoked") ?? 0;
        this.logger.info({ keys: keys.size, streamsClosed }, "API keys reloaded");
      };
      const defaultLimits: BucketLimits = { ratePerSec: config.rateLimitEventsPerSec, burst: config.rateLimitBurst };
      const limitsOf = (keyId: string): BucketLimits => limitsByKey.get(keyId) ?? defaultLimits;
      const leases = new LeaseCache(
        (key, wanted, min) => leaseRouter!.acquire(key, wanted, min, limitsOf(key)),
        // A lease is about 50 ms of the key's rate: one call per lease, and little left unused
        // on an edge when traffic moves to another.
        { chunk: (key) => Math.max(1, Math.floor(limitsOf(key).ratePerSec / 20)), ttlMs: 1000 },
      );
      // Per-user buckets are this edge's own (nodes/edge/user-limiter.ts), with the tenant table's limits (reloaded on SIGHUP).
      const users = new UserLimiter();
      const userLimitsOf = (tenant: string) => userLimits(tenantSettings(tenants, tenant));
      const unauthenticated = new IpLimiter({ ratePerSec: config.unauthRatePerSec, burst: config.unauthBurst });
      leaseSweeper = setInterval(() => leases.sweep(), 5000).unref();

      const metrics = broker.metrics;
      const handler = new IngestHandler(
        {
          validate: (input) => broker.call<ValidationOutcome, typeof input>("validator.validate", input),
          dispatch: (tenant: string, sessions: SessionBatch[]): Promise<SessionIngestResult> => router!.dispatch(tenant, sessions),
          takeTokens: (principal: Principal, count: number) => leases.take(principal.keyId, count),
          throttleUsers: (principal: Principal, events: readonly unknown[]) => {
            const limits = userLimitsOf(principal.tenant);
            return limits === null ? [] : users.throttle(principal.tenant, limits, events, performance.now());
          },
          record: {
            received: (tenant, n) => metrics.increment(METRIC.eventsReceived, { tenant }, n),
            rejected: (reason, n) => metrics.increment(METRIC.eventsRejected, { reason }, n),
            accepted: (tenant, n, dups) => {
              metrics.increment(METRIC.eventsAccepted, { tenant }, n);
              if (dups > 0) metrics.increment(METRIC.eventsDuplicate, { tenant }, dups);
            },
            throttled: (scope) => metrics.increment(METRIC.rateLimited, { scope }),
          },
        },
        { maxBodyBytes: config.maxBodyBytes, maxEventsPerBatch: config.maxEventsPerBatch, maxDepth: config.maxJsonDepth },
      );

      // Past its budget a client without a valid key learns only "slow down", so guessing keys
      // runs at UNAUTH_RATE_PER_SEC per address at most, whichever endpoint (HTTP or WebSocket)
      // it tries them on. Null: within the budget; else ms until the address may try again.
      const unauthenticatedWait = (peer: string, forwardedFor: string | undefined): number | null => {
        const slot = unauthenticated.take(clientAddress(peer, forwardedFor, config.trustedProxies));
        if (slot.ok) return null;
        metrics.increment(METRIC.rateLimited, { scope: "ip" });
        return slot.retryAfterMs;
      };
      const refuseUnauthenticated = (request: IncomingRequest): HttpReply => {
        const waitMs = unauthenticatedWait(request.remoteAddress, request.headers["x-forwarded-for"]);
        return waitMs === null ? errorReply("unauthorized") : errorReply("rate_limited", "Too many requests without a valid API key", waitMs / 1000);
      };

      const outOfScope = (principal: Principal, what: string): HttpReply =>
        errorReply("forbidden", `This API key may not ${what} (its scopes: ${[...principal.scopes].join(", ")})`);

      const eventCounts = new EventCountRoute({
        count: (query) => broker.call<EventCounts, EventCountQuery>("storage-writer.countEvents", query, { timeout: COUNT_CALL_TIMEOUT_MS }),
        onFailure: (error, query) => this.logger.warn({ err: error, tenant: query.tenant_id }, "event count failed"),
        maxInFlight: MAX_COUNTS_IN_FLIGHT,
      });
      const answerEventCounts = async (request: IncomingRequest): Promise<HttpReply> => {
        const principal = principalOf(request);
        const reply = !principal
          ? refuseUnauthenticated(request)
          : !principal.scopes.has("counts")
            ? outOfScope(principal, "read event counts")
            : await eventCounts.answer(principal.tenant, request.query, Date.now());
        metrics.increment(METRIC.requests, { route: EVENT_COUNTS_PATH, status: String(reply.status) });
        return reply;
      };

      // One digest per request: preflight authenticates, ingest and present reuse the answer.
      const principals = new WeakMap<IncomingRequest, Principal | null>();
      const principalOf = (request: IncomingRequest): Principal | null => {
        let principal = principals.get(request);
        if (principal === undefined) {
          principal = keys.authenticate(presentedKey(request.headers));
          principals.set(request, principal);
        }
        return principal;
      };

      server = new EdgeHttpServer(
        {
          health: () => ({ status: 200, body: JSON.stringify({ status: "ok", node: config.nodeId }) }),
          metrics: (request) => {
            if (asksForEventCounts(request.query)) return answerEventCounts(request);
            return { status: 200, body: deps.prometheus.render(), contentType: "text/plain; version=0.0.4; charset=utf-8" };
          },
          eventCounts: answerEventCounts,
          ready: async () => readiness(broker, deps.requiredServices, server, config.natsUrl !== null),
          status: (accept) => statusPageReply(broker, accept),
          ingestPatterns: INGEST_URL_PATTERNS,
          preflight: (request) => {
            if (eventRouteOf(request.url) === undefined) return errorReply("not_found");
            const principal = principalOf(request);
            if (!principal) {
              metrics.increment(METRIC.eventsRejected, { reason: "unauthorized" });
              return refuseUnauthenticated(request);
            }
            if (!principal.scopes.has("ingest")) return outOfScope(principal, "send events");
            const type = request.headers["content-type"];
            if (type !== undefined && !JSON_TYPES.test(type)) return errorReply("unsupported_media_type");
            return null;
          },
          present: (request, reply) => {
            // The real status, also for silent tenants: their drops stay visible to operators.
            metrics.increment(METRIC.requests, { route: eventRouteOf(request.url)?.path ?? UNKNOWN_ROUTE, status: String(reply.status) });
            const principal = principalOf(request);
            if (principal && tenantSettings(tenants, principal.tenant).silent) return silentReply(reply);
            return reply;
          },
          ingest: async (request, body): Promise<HttpReply> => {
            const principal = principalOf(request)!;
            try {
              const decoded = handler.decodeHttpBody(body, request.headers["content-encoding"]);
              const events = applyEventRoute(eventRouteOf(request.url)!, decoded.events);
              const answer = await handler.ingest(principal, events, request.receivedAt, request.headers["idempotency-key"], decoded.sentAt);
              if (answer.accepted === 0 && answer.duplicates === 0 && answer.rejected.length > 0) {
                return {
                  status: 400,
                  body: JSON.stringify({
                    error: { code: "invalid_events", message: "Every event in the request was rejected" },
                    ...answer,
                  }),
                };
              }
              return { status: 202, body: JSON.stringify(answer), accepted: answer.accepted };
            } catch (error) {
              if (error instanceof IngestError) {
                if (error.code === "unavailable") this.logger.warn({ err: error }, "durable path unavailable");
                return errorReply(error.code, error.message, error.retryAfterSec);
              }
              throw error;
            }
          },
          extend: (app) => {
            stream = registerStreamRoute(app, {
              handler,
              keys,
              limits: {
                maxPayloadBytes: config.wsMaxPayloadBytes,
                maxEventsPerBatch: config.maxEventsPerBatch,
                maxDepth: config.maxJsonDepth,
                idleTimeoutSec: config.wsIdleTimeoutSec,
                maxInflight: config.wsMaxInflight,
                maxBackpressureBytes: config.wsMaxBackpressureBytes,
              },
              originAllowed: (origin) => config.cors.check(origin) !== "refused",
              // The same per-address budget as HTTP: a WebSocket is no cheaper way to guess keys.
              unauthenticated: unauthenticatedWait,
              record: {
                connections: (open) => metrics.set(METRIC.wsConnections, open),
                frame: (outcome) => metrics.increment(METRIC.wsFrames, { outcome }),
                unauthorized: () => metrics.increment(METRIC.eventsRejected, { reason: "unauthorized" }),
              },
              log: this.logger,
            });
          },
        },
        { maxBodyBytes: config.maxBodyBytes, bodyTimeoutMs: config.bodyTimeoutMs },
        (error) => this.logger.error({ err: error }, "edge request failed"),
        config.cors,
      );
      // Take no traffic before the services of this very node are up (remote ones are /ready's business).
      const local = deps.requiredServices.filter((name) => config.services.has(name as never));
      if (local.length > 0) await broker.waitForServices(local, 60_000);
      const port = await server.listen(config.host, config.port);
      this.logger.info({ host: config.host, port }, "edge listening");
      deps.onListening?.(port);
    },
    async stopped() {
      reloadKeys = null;
      applyTenants = null;
      if (leaseSweeper) clearInterval(leaseSweeper);
      // Before anything behind the edge stops: in-flight requests and stream batches finish and
      // get their acks. Half the shutdown budget at most; the rest is for the services after us.
      const drained = await Promise.race([
        drainEdge(server, stream).then(() => true),
        new Promise<false>((resolve) => setTimeout(resolve, config.shutdownTimeoutMs / 2, false).unref()),
      ]);
      if (!drained) this.logger.warn({ streamBatches: stream?.inFlight() ?? 0 }, "edge drain timed out");
      stream = null;
      router?.close();
      leaseRouter?.close();
      server?.close();
      server = null;
    },
  };
}

/**
 * Stops new requests, new sockets and new stream batches, waits for those in flight (each until
 * its events are durable and its answer is written), then closes the streams behind their acks.
 */
async function drainEdge(server: EdgeHttpServer | null, stream: StreamHandle | null): Promise<void> {
  server?.stopAccepting();
  stream?.stopAccepting();
  await Promise.all([server?.drained(), stream?.drained()]);
  stream?.closeAll(CLOSE.goingAway, "node shutting down");
}

/**
 * Ready means a request sent now can be acknowledged: the services on the path are reachable and
 * the durable path works. Single-process: the sink is the durable path, so a failing sink is
 * 503. Cluster: JetStream is the durable path (checked through a session actor's connection);
 * a failing sink only grows the stream's backlog, so it is reported in the body (with the lag),
 * not as 503, which would make load balancers drop every edge during a storage outage.
 */
async function readiness(broker: ServiceBroker, required: string[], server: EdgeHttpServer | null, cluster: boolean): Promise<HttpReply> {
  const notReady = (reason: string, extra: object = {}): HttpReply => ({
    status: 503,
    body: JSON.stringify({ status: "not_ready", reason, ...extra }),
  });
  if (!server || broker.stopping) return notReady("node is shutting down");
  for (const name of required) {
    if (!serviceAvailable(broker, name)) return notReady(`service ${name} is not available`);
  }
  let storage: { ok: boolean; reason?: string; pending?: number; streamPending?: number };
  try {
    storage = await broker.call<typeof storage, object>("storage-writer.ready", {}, { timeout: 2000 });
  } catch (error) {
    storage = { ok: false, reason: `storage-writer did not answer: ${(error as Error).message}` };
  }
  if (!cluster) {
    if (!storage.ok) return notReady(storage.reason ?? "storage is not ready", { storage });
    return { status: 200, body: JSON.stringify({ status: "ready", storage }) };
  }
  try {
    const stream = await broker.call<{ ok: boolean; reason?: string }, object>("session.ready", {}, { timeout: 2000 });
    if (!stream.ok) return notReady(stream.reason ?? "event stream is not reachable", { storage });
  } catch (error) {
    return notReady(`session actor did not answer: ${(error as Error).message}`, { storage });
  }
  return { status: 200, body: JSON.stringify({ status: "ready", storage }) };
}

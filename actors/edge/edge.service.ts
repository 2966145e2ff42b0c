/**
 * The edge service: owns the uWS server and wires HTTP requests to the other services through
 * Moleculer calls (one call per batch per hop). Thin: the steps live in nodes/edge/*.
 */
import type { ServiceBroker, ServiceSchema } from "moleculer";
import type { Config } from "../../config/env";
import type { SessionBatch, SessionIngestResult } from "../common/event";
import { IngestError } from "../common/errors";
import { METRIC } from "../common/metrics";
import { serviceAvailable } from "../common/broker";
import { ApiKeyStore, presentedKey, type Principal } from "../../nodes/edge/api-keys";
import { EdgeHttpServer, errorReply, type HttpReply, type IncomingRequest } from "../../nodes/edge/http-server";
import { IngestHandler, type ValidationOutcome } from "../../nodes/edge/ingest-handler";
import { LeaseCache, type LeaseGrant } from "../../nodes/edge/rate-lease";
import type { ScrapeOnlyPrometheusReporter } from "./prometheus-text";
import { SessionRouter } from "./session-router";

export interface EdgeServiceDeps {
  prometheus: ScrapeOnlyPrometheusReporter;
  /** Services the edge needs before it reports ready. */
  requiredServices: string[];
  /** Called once the edge listens, with the bound port (PORT=0 picks a free one). */
  onListening?: (port: number) => void;
}

const JSON_TYPES = /^(application\/json|text\/plain)(\s*;.*)?$/i;

export function createEdgeService(config: Config, deps: EdgeServiceDeps): ServiceSchema {
  let server: EdgeHttpServer | null = null;
  let router: SessionRouter | null = null;
  let leaseSweeper: NodeJS.Timeout | null = null;

  return {
    name: "edge",
    events: {
      /** A session node is leaving: route its sessions to their next owner from now on. */
      "session.draining"(ctx: { params: { nodeID: string } }) {
        router?.nodeDraining(ctx.params.nodeID);
      },
    },
    actions: {
      /** Stops taking requests and waits for those in flight (rolling restarts, SIGTERM). */
      drain: {
        visibility: "public",
        async handler(): Promise<{ drained: true }> {
          server?.stopAccepting();
          await server?.drained();
          return { drained: true };
        },
      },
    },
    async started() {
      const broker: ServiceBroker = this.broker;
      const keys = new ApiKeyStore(config.apiKeys);
      router = new SessionRouter(broker, { cluster: config.natsUrl !== null, callTimeoutMs: 10_000 });
      const leases = new LeaseCache(
        (key, wanted, min) => broker.call<LeaseGrant, { key: string; wanted: number; min: number }>("rate-limiter.lease", { key, wanted, min }),
        { chunk: () => Math.max(1, Math.floor(config.rateLimitEventsPerSec / 20)), ttlMs: 1000 },
      );
      leaseSweeper = setInterval(() => leases.sweep(), 5000).unref();

      const metrics = broker.metrics;
      const handler = new IngestHandler(
        {
          validate: (input) => broker.call<ValidationOutcome, typeof input>("validator.validate", input),
          dispatch: (tenant: string, sessions: SessionBatch[]): Promise<SessionIngestResult> => router!.dispatch(tenant, sessions),
          takeTokens: (principal: Principal, count: number) => leases.take(principal.keyId, count),
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
        { maxBodyBytes: config.maxBodyBytes, maxEventsPerBatch: config.maxEventsPerBatch, maxDepth: 32 },
      );

      const principalOf = (request: IncomingRequest): Principal | null => keys.authenticate(presentedKey(request.headers));

      server = new EdgeHttpServer(
        {
          health: () => ({ status: 200, body: JSON.stringify({ status: "ok", node: config.nodeId }) }),
          metrics: () => ({
            status: 200,
            body: deps.prometheus.render(),
            contentType: "text/plain; version=0.0.4; charset=utf-8",
          }),
          ready: async () => readiness(broker, deps.requiredServices, server),
          preflight: (request) => {
            if (!principalOf(request)) {
              metrics.increment(METRIC.eventsRejected, { reason: "unauthorized" });
              return errorReply("unauthorized");
            }
            const type = request.headers["content-type"];
            if (type !== undefined && !JSON_TYPES.test(type)) return errorReply("unsupported_media_type");
            return null;
          },
          ingest: async (request, body): Promise<HttpReply> => {
            const principal = principalOf(request)!;
            try {
              const events = handler.decodeHttpBody(body, request.headers["content-encoding"]);
              const answer = await handler.ingest(principal, events, request.receivedAt, request.headers["idempotency-key"]);
              if (answer.accepted === 0 && answer.duplicates === 0 && answer.rejected.length > 0) {
                return {
                  status: 400,
                  body: JSON.stringify({
                    error: { code: "invalid_events", message: "Every event in the request was rejected" },
                    ...answer,
                  }),
                };
              }
              return { status: 202, body: JSON.stringify(answer) };
            } catch (error) {
              if (error instanceof IngestError) {
                if (error.code === "unavailable") this.logger.warn({ err: error }, "durable path unavailable");
                return errorReply(error.code, error.message, error.retryAfterSec);
              }
              throw error;
            }
          },
        },
        { maxBodyBytes: config.maxBodyBytes, bodyTimeoutMs: 10_000 },
        (error) => this.logger.error({ err: error }, "edge request failed"),
      );
      const port = await server.listen(config.host, config.port);
      this.logger.info({ host: config.host, port }, "edge listening");
      deps.onListening?.(port);
    },
    async stopped() {
      if (leaseSweeper) clearInterval(leaseSweeper);
      router?.close();
      server?.close();
      server = null;
    },
  };
}

async function readiness(broker: ServiceBroker, required: string[], server: EdgeHttpServer | null): Promise<HttpReply> {
  const notReady = (reason: string): HttpReply => ({
    status: 503,
    body: JSON.stringify({ status: "not_ready", reason }),
  });
  if (!server || broker.stopping) return notReady("node is shutting down");
  for (const name of required) {
    if (!serviceAvailable(broker, name)) return notReady(`service ${name} is not available`);
  }
  try {
    const sink = await broker.call<{ ok: boolean; reason?: string }, object>("storage-writer.ready", {}, { timeout: 2000 });
    if (!sink.ok) return notReady(sink.reason ?? "storage is not ready");
  } catch (error) {
    return notReady(`storage-writer did not answer: ${(error as Error).message}`);
  }
  return { status: 200, body: JSON.stringify({ status: "ready" }) };
}

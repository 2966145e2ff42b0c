/**
 * Moleculer broker options, derived from the typed config. Single-process mode (no NATS_URL)
 * has no transporter at all: every call is a local function call. Cluster mode (NATS_URL set)
 * uses the NATS transporter with a msgpackr serializer.
 */
import type { BrokerOptions } from "moleculer";
import type { Config } from "./config/env";
import { MsgPackrSerializer } from "./actors/common/msgpack-serializer";
import { ScrapeOnlyPrometheusReporter } from "./actors/edge/prometheus-text";

export interface BrokerSetup {
  options: BrokerOptions;
  /** Renders GET /metrics. */
  prometheus: ScrapeOnlyPrometheusReporter;
}

/**
 * Moleculer 0.14's internal middlewares in its own order (`INTERNAL_MIDDLEWARES` in
 * service-broker.js), except "Metrics". That one updates four metrics and a quantile histogram on
 * every action call (labels hashed into strings each time); with one call per hop per batch it
 * was up to a quarter of the node's CPU for single-event requests (bench/README.md). The
 * product's own metrics (events, storage, streams, lag) stay on /metrics; Moleculer's per-action
 * `moleculer_request_*` series are not collected. A unit test checks that this list is the
 * built-in one minus Metrics.
 */
export const BROKER_MIDDLEWARES = [
  "ActionHook",
  "Validator",
  "Bulkhead",
  "Cacher",
  "ContextTracker",
  "CircuitBreaker",
  "Timeout",
  "Retry",
  "Fallback",
  "ErrorHandler",
  "Tracing",
  "Debounce",
  "Throttle",
] as const;

export function createBrokerSetup(config: Config): BrokerSetup {
  const prometheus = new ScrapeOnlyPrometheusReporter();
  const options: BrokerOptions = {
    namespace: "ingest",
    nodeID: config.nodeId,
    // nodes/node.ts owns SIGTERM/SIGINT: it stops the services in dependency order and then the
    // broker. Moleculer's own handlers would also call broker.stop() (every service at once) and
    // exit the process when that resolves, cutting the ordered drain short (a spool still
    // inserting, a storage batch still flushing).
    skipProcessEventRegistration: true,
    transporter: config.natsUrl
      ? { type: "NATS", options: { url: config.natsUrl, maxReconnectAttempts: -1, reconnectTimeWait: 500 } }
      : undefined,
    serializer: config.natsUrl ? new MsgPackrSerializer() : undefined,
    // A dead node's sessions move when its heartbeat stops: keep that to a few seconds.
    registry: { strategy: "RoundRobin", preferLocal: true, discoverer: { type: "Local", options: { heartbeatInterval: config.heartbeatIntervalSec, heartbeatTimeout: config.heartbeatTimeoutSec } } },
    logger: {
      type: "Pino",
      options: {
        level: config.logLevel === "silent" ? "fatal" : config.logLevel,
        pino: { options: { level: config.logLevel, base: { pid: process.pid, node: config.nodeId } } },
      },
    },
    logLevel: config.logLevel === "silent" ? "fatal" : config.logLevel,
    // Calls carry whole batches; a storage flush can take a while under load, so be generous
    // and let the caller's own deadline (the client's HTTP timeout) decide.
    requestTimeout: 30_000,
    // Balanced calls (validator, a storage-writer's `ready`) that hit a node which just left are
    // retried on another node. Calls pinned to a node (session, rate-limiter owners) pass
    // `retries: 0` and pick the next owner themselves.
    retryPolicy: {
      enabled: true,
      retries: 3,
      delay: 50,
      maxDelay: 400,
      factor: 2,
      check: (err: Error) => Boolean(err && (err as { retryable?: boolean }).retryable),
    },
    // A leaving node finishes the requests it already took before its services stop.
    tracking: { enabled: true, shutdownTimeout: 5000 },
    metrics: { enabled: true, reporter: [prometheus as never] },
    internalMiddlewares: false,
    middlewares: [...BROKER_MIDDLEWARES] as never,
    tracing: { enabled: false },
    // Moleculer's own validator would check params of every call; ours validates once at the edge.
    validator: false,
  };
  return { options, prometheus };
}

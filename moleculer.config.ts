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

export function createBrokerSetup(config: Config): BrokerSetup {
  const prometheus = new ScrapeOnlyPrometheusReporter();
  const options: BrokerOptions = {
    namespace: "ingest",
    nodeID: config.nodeId,
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
    tracing: { enabled: false },
    // Moleculer's own validator would check params of every call; ours validates once at the edge.
    validator: false,
  };
  return { options, prometheus };
}

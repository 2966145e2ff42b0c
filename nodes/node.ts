/**
 * Process entry point: one Moleculer broker running the services named by SERVICES.
 *
 * Single-process mode (no NATS_URL): every service in this process, no transporter, the file
 * sink (or ClickHouse when CLICKHOUSE_URL is set, behind a local spool when SPOOL_DIR is too),
 * acknowledgements after the sink's commit (for a spooled ClickHouse, the spool's fdatasync).
 *
 * Shutdown (SIGTERM/SIGINT) runs in dependency order so nothing acknowledged is lost: the edge
 * stops accepting and waits for in-flight requests (each waits for its events to be durable),
 * then session actors drain their mailboxes, then the storage writer flushes its open batch
 * and closes the sink, then the forwarder hands over what it holds.
 */
import { ServiceBroker, type Service, type ServiceSchema } from "moleculer";
import { ConfigError, loadConfig, type Config, type ServiceName } from "../config/env";
import { reloadTenantTable, type TenantTable } from "../config/tenants";
import { createLogger, type PinoLogger } from "../actors/common/logger";
import { registerProductMetrics } from "../actors/common/metrics";
import { PRODUCT_VERSION } from "../actors/common/product-version";
import { createEdgeService } from "../actors/edge/edge.service";
import { createForwarderService } from "../actors/forwarder/forwarder.service";
import { createRateLimiterService } from "../actors/rate-limiter/rate-limiter.service";
import { createSessionService } from "../actors/session/session.service";
import { closeEventStreamLink } from "../actors/common/event-stream";
import { ClickHouseSink, createClickHouseClient } from "../actors/storage-writer/clickhouse/clickhouse-sink";
import { RetentionJob } from "../actors/storage-writer/clickhouse/retention";
import { FileSink } from "../actors/storage-writer/file-sink";
import type { Sink } from "../actors/storage-writer/sink";
import { SpooledSink } from "../actors/storage-writer/spool/spooled-sink";
import { createStorageWriterService, type SinkJobs } from "../actors/storage-writer/storage-writer.service";
import { createStatusService } from "../actors/status/status.service";
import { createValidatorService } from "../actors/validator/validator.service";
import { createBrokerSetup } from "../moleculer.config";
import { startOpsServer } from "./ops-server";

/** Stop order: upstream first, so each service's work is finished by the time it stops. */
const STOP_ORDER: readonly ServiceName[] = ["edge", "session", "validator", "rate-limiter", "storage-writer", "forwarder"];

export interface RunningNode {
  broker: ServiceBroker;
  config: Config;
  /** The edge's bound port, when this node runs the edge. */
  port: number | null;
  shutdown(reason: string): Promise<void>;
}

interface SinkSetup {
  sink: Sink;
  /** ClickHouse retention; the file sink has none. */
  jobs?: SinkJobs;
}

function createSink(config: Config, logger: PinoLogger): SinkSetup {
  if (!config.clickhouseUrl) {
    const sink = new FileSink({
      dir: config.dataDir,
      nodeId: config.nodeId,
      maxBytes: config.segmentMaxBytes,
      maxAgeMs: config.segmentMaxAgeMs,
    });
    return { sink };
  }
  const chLogger = logger.child({ mod: "clickhouse" });
  const clickhouse = new ClickHouseSink({ url: config.clickhouseUrl, database: config.clickhouseDatabase, logger: chLogger });
  const sink = config.spoolDir
    ? new SpooledSink({
        inner: clickhouse,
        dir: config.spoolDir,
        maxBytes: config.spoolMaxBytes,
        insertMaxEvents: config.spoolInsertMaxEvents,
        insertWaitMs: config.spoolInsertWaitMs,
        memoryEvents: config.spoolMemoryEvents,
        segmentMaxBytes: config.segmentMaxBytes,
        // Half the shutdown budget for inserting what is spooled; the rest waits for the next start.
        closeDrainMs: Math.floor(config.shutdownTimeoutMs / 2),
        logger: logger.child({ mod: "spool" }),
      })
    : clickhouse;
  const client = createClickHouseClient(config.clickhouseUrl, 30_000, chLogger);
  const retention = new RetentionJob({
    client,
    database: config.clickhouseDatabase,
    retentionDays: config.retentionDays,
    logger: chLogger,
  });
  return {
    sink,
    jobs: {
      start: () => retention.start(),
      stop: async () => {
        await retention.stop();
        await client.close();
      },
    },
  };
}

function storageWriterSchema(config: Config, logger: PinoLogger): ServiceSchema {
  const { sink, jobs } = createSink(config, logger);
  return createStorageWriterService(config, sink, jobs);
}

export async function startNode(config: Config, logger: PinoLogger): Promise<RunningNode> {
  const { options, prometheus } = createBrokerSetup(config);
  const broker = new ServiceBroker(options);
  registerProductMetrics(broker);

  let port: number | null = null;
  // Factories, so a node builds (and connects) only what SERVICES asks it to run.
  const factories: Record<ServiceName, () => ServiceSchema> = {
    edge: () =>
      createEdgeService(config, {
        prometheus,
        requiredServices: ["validator", "rate-limiter", "session", "storage-writer"],
        onListening: (p) => (port = p),
      }),
    session: () => createSessionService(config),
    validator: () => createValidatorService(config),
    "rate-limiter": () => createRateLimiterService(config),
    "storage-writer": () => storageWriterSchema(config, logger),
    forwarder: () => createForwarderService(config),
  };
  const services = new Map<ServiceName, Service>();
  for (const name of STOP_ORDER) {
    if (config.services.has(name)) services.set(name, broker.createService(factories[name]()));
  }
  // On every node, whatever SERVICES says: GET /status asks each node for its figures.
  // broker.stop() stops it last, after the product services.
  broker.createService(createStatusService(config));

  if (config.usingDevKey) {
    logger.warn("INGEST_API_KEYS is not set: accepting the key `dev` for tenant `dev` (single-process development mode only)");
  }
  await broker.start();
  const opsServer = config.services.has("edge") ? null : await startOpsServer(broker, prometheus, config.host, config.port);
  if (opsServer) port = (opsServer.address() as { port: number }).port;
  logger.info(
    { node: config.nodeId, version: PRODUCT_VERSION, services: [...config.services], mode: config.natsUrl ? "cluster" : "single-process", port },
    "node started",
  );

  let stopping: Promise<void> | null = null;
  const shutdown = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      logger.info({ reason }, "shutting down: draining");
      if (config.natsUrl && services.has("session")) {
        // Rolling restart: edges stop routing sessions here before this actor stops taking them,
        // so clients see no error. Calls already on their way are still served.
        await broker.broadcast("session.draining", { nodeID: broker.nodeID });
        await new Promise((r) => setTimeout(r, 300));
      }
      for (const name of STOP_ORDER) {
        const service = services.get(name);
        if (service) await broker.destroyService(service);
      }
      await broker.stop();
      await closeEventStreamLink();
      opsServer?.close();
      logger.info("shutdown complete");
    })();
    return stopping;
  };
  return { broker, config, port, shutdown };
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    const logger = createLogger("info");
    if (error instanceof ConfigError) {
      logger.fatal({ variable: error.variable }, `invalid configuration: ${error.message}`);
    } else {
      logger.fatal({ err: error }, "invalid configuration");
    }
    logger.flush();
    process.exit(2);
  }
  const logger = createLogger(config.logLevel, { node: config.nodeId });
  let node: RunningNode;
  try {
    node = await startNode(config, logger);
  } catch (error) {
    logger.fatal({ err: error }, "node failed to start");
    logger.flush();
    process.exit(1);
  }

  const onSignal = (signal: NodeJS.Signals) => {
    // A second signal while draining is the operator insisting: exit now.
    if (stoppingBySignal) {
      logger.warn({ signal }, "second signal: exiting without finishing the drain");
      process.exit(1);
    }
    stoppingBySignal = true;
    const force = setTimeout(() => {
      logger.error({ timeoutMs: config.shutdownTimeoutMs }, "drain did not finish in time: exiting");
      logger.flush();
      process.exit(1);
    }, config.shutdownTimeoutMs);
    force.unref();
    node.shutdown(signal).then(
      () => {
        logger.flush();
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        logger.flush();
        process.exit(1);
      },
    );
  };
  let stoppingBySignal = false;
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  // SIGHUP: read API_KEYS_FILE and TENANTS_FILE again (the edge swaps its keys, the edge and the
  // validator their tenant settings; nothing restarts). A file that fails keeps what is in use.
  process.on("SIGHUP", () => {
    logger.info("SIGHUP: reloading API keys and tenant settings");
    node.broker.broadcastLocal("keys.reload");
    if (config.tenants.file === null) return;
    let tenants: TenantTable;
    try {
      tenants = reloadTenantTable(config.tenants, config.schemasDir);
    } catch (error) {
      logger.error({ err: error }, "tenant settings not reloaded: the settings in use stay");
      return;
    }
    node.broker.broadcastLocal("tenants.reload", tenants);
  });
}

if (require.main === module) {
  void main();
}

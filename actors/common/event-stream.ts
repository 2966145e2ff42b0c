/**
 * The cluster's durable event log: one JetStream stream, split into partition subjects by a
 * hash of (tenant, session), so one session always lands in one partition and a partition is
 * an ordered unit for consumers that need order (the forwarder).
 *
 * One NATS connection per process serves every service of that process (the session actor
 * publishes, storage-writer and forwarder consume); Moleculer's transporter keeps its own.
 */
import { connect, type JetStreamClient, type NatsConnection } from "nats";
import type { Config } from "../../config/env";
import { hashRoutingKey } from "../session/hash-ring";
import { ensureEventStream } from "./jetstream";
import type { Logger } from "./logger";

export const EVENT_STREAM = "INGEST_EVENTS";
export const EVENT_SUBJECT_PREFIX = "ingest.events";

export function partitionOf(tenantId: string, sessionId: string, partitions: number): number {
  return hashRoutingKey(tenantId, sessionId) % partitions;
}

export function partitionSubject(partition: number): string {
  return `${EVENT_SUBJECT_PREFIX}.${partition}`;
}

export interface EventStreamLink {
  nc: NatsConnection;
  js: JetStreamClient;
}

let shared: Promise<EventStreamLink> | null = null;

/** The process's NATS connection with the event stream ensured (created or updated to config). */
export function eventStreamLink(config: Config, logger: Logger): Promise<EventStreamLink> {
  if (!config.natsUrl) throw new Error("the event stream needs NATS_URL");
  shared ??= (async () => {
    const nc = await connect({
      servers: config.natsUrl!,
      name: `ingest-${config.nodeId}`,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      // Without this the client captures a stack trace (two Error objects) for every request,
      // i.e. every JetStream publish and pull: measured at 8% of the node's busy time with
      // single-event requests. Timeouts still reject with a NatsError, made when they fire.
      noAsyncTraces: true,
    });
    void (async () => {
      for await (const status of nc.status()) {
        if (status.type === "disconnect" || status.type === "reconnect") {
          logger.warn({ status: status.type, data: status.data }, "event stream connection status");
        }
      }
    })();
    const jsm = await nc.jetstreamManager();
    const { action } = await ensureEventStream(jsm, {
      name: EVENT_STREAM,
      subjects: [`${EVENT_SUBJECT_PREFIX}.>`],
      maxAgeMs: config.streamMaxAgeSec * 1000,
      maxBytes: config.streamMaxBytes,
      duplicateWindowMs: 120_000,
      replicas: config.streamReplicas,
      storage: "file",
    });
    logger.info({ stream: EVENT_STREAM, action, partitions: config.streamPartitions }, "event stream ready");
    return { nc, js: nc.jetstream() };
  })();
  shared.catch(() => (shared = null));
  return shared;
}

/** Drains and closes the process's connection (after every consumer stopped). */
export async function closeEventStreamLink(): Promise<void> {
  const link = shared;
  shared = null;
  if (!link) return;
  try {
    const { nc } = await link;
    if (!nc.isClosed()) await nc.drain();
  } catch {
    // never connected: nothing to close
  }
}

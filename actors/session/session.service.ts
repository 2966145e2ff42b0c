/**
 * The session actor service. It receives every session of a request that this node owns,
 * serialises each session through its mailbox, drops duplicates, and answers once the accepted
 * events are durable:
 *  - single-process mode: the storage writer committed them to the sink; durable batches are
 *    then handed, in session order, to the forwarder;
 *  - cluster mode: JetStream acknowledged their publish; storage writers and forwarders consume
 *    the stream themselves.
 */
import { Errors, type Context, type ServiceBroker, type ServiceSchema } from "moleculer";
import type { NatsConnection } from "nats";
import type { Config } from "../../config/env";
import type { IngestEvent, SessionIngestRequest } from "../common/event";
import { serviceAvailable } from "../common/broker";
import { eventStreamLink } from "../common/event-stream";
import { fromWire, type WireSessionIngestRequest } from "../common/session-wire";
import { METRIC } from "../common/metrics";
import { SESSION_DRAINING } from "../edge/session-router";
import { Coalescer } from "./coalescer";
import { SessionActor, type SessionIngestStats } from "./session-actor";
import { StreamPersister } from "./stream-persister";

export function createSessionService(config: Config): ServiceSchema {
  let actor: SessionActor | null = null;
  let gauge: NodeJS.Timeout | null = null;
  let streamConnection: NatsConnection | null = null;

  return {
    name: "session",
    actions: {
      /** Whether this actor can make events durable now (its JetStream connection is up). */
      ready: {
        handler(): { ok: boolean; reason?: string } {
          if (!actor || actor.isDraining) return { ok: false, reason: "session actor is draining" };
          if (streamConnection && streamConnection.isClosed()) return { ok: false, reason: "event stream connection is closed" };
          return { ok: true };
        },
      },
      ingest: {
        async handler(ctx: Context<SessionIngestRequest | WireSessionIngestRequest>): Promise<SessionIngestStats> {
          if (!actor || actor.isDraining) {
            // The edge sends these sessions to their next owner.
            throw new Errors.MoleculerRetryableError("session actor is draining", 503, SESSION_DRAINING);
          }
          const params = ctx.params;
          const request: SessionIngestRequest = "wire" in params ? { tenant_id: params.tenant_id, sessions: params.wire.map(fromWire) } : params;
          const stats = await actor.ingest(request);
          const metrics = this.broker.metrics;
          if (stats.seqGaps > 0) metrics.increment(METRIC.seqGaps, undefined, stats.seqGaps);
          if (stats.seqDuplicates > 0) metrics.increment(METRIC.seqDuplicates, undefined, stats.seqDuplicates);
          return stats;
        },
      },
    },
    async started() {
      const broker: ServiceBroker = this.broker;
      const logger = this.logger;
      let persist: (events: IngestEvent[], encoded?: Uint8Array) => Promise<void>;
      let onDurable: ((events: IngestEvent[]) => void) | undefined;
      if (config.natsUrl) {
        const link = await eventStreamLink(config, logger);
        streamConnection = link.nc;
        const persister = new StreamPersister({
          js: () => link.js,
          partitions: config.streamPartitions,
          maxPayloadBytes: Math.floor(link.nc.info?.max_payload ?? 1024 * 1024) - 4096,
          publishTimeoutMs: 5_000,
          maxCoalescedEvents: config.batchMaxEvents,
        });
        persist = (events, encoded) => persister.persist(events, encoded);
      } else {
        const toStorage = new Coalescer<IngestEvent>(
          (events) => broker.call("storage-writer.write", { events }),
          config.batchMaxEvents,
        );
        persist = (events) => toStorage.add(events);
        // Durable batches of one event-loop turn go to the forwarder as one call, in the order
        // they became durable (so each session's order holds): one call per turn of the loop,
        // not one per session batch, which for single-event requests was one call per event.
        const toForwarder = new Coalescer<IngestEvent>(async (events) => {
          try {
            await broker.call("forwarder.forward", { events });
          } catch (error) {
            logger.warn({ err: error, events: events.length }, "forwarder did not take a durable batch");
          }
        }, config.batchMaxEvents);
        onDurable = (events) => {
          if (!serviceAvailable(broker, "forwarder")) return;
          void toForwarder.add(events);
        };
      }
      actor = new SessionActor({ dedupWindow: config.dedupWindow, persist, onDurable });
      gauge = setInterval(() => broker.metrics.set(METRIC.activeSessions, actor?.activeMailboxes ?? 0), 1000).unref();
    },
    async stopped() {
      if (gauge) clearInterval(gauge);
      await actor?.drain();
    },
  };
}

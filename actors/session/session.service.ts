/**
 * The session actor service. It receives every session of a request that this node owns,
 * serialises each session through its mailbox, drops duplicates, and answers once the
 * accepted events are durable. Durable means: the storage writer committed them (single-process
 * mode). Durable events are then handed, in session order, to the forwarder.
 */
import type { Context, ServiceBroker, ServiceSchema } from "moleculer";
import type { Config } from "../../config/env";
import type { IngestEvent, SessionIngestRequest } from "../common/event";
import { METRIC } from "../common/metrics";
import { serviceAvailable } from "../common/broker";
import { Coalescer } from "./coalescer";
import { SessionActor, type SessionIngestStats } from "./session-actor";

export function createSessionService(config: Config): ServiceSchema {
  let actor: SessionActor | null = null;
  let gauge: NodeJS.Timeout | null = null;

  return {
    name: "session",
    actions: {
      ingest: {
        async handler(ctx: Context<SessionIngestRequest>): Promise<SessionIngestStats> {
          if (!actor) throw new Error("session actor is not started");
          const stats = await actor.ingest(ctx.params);
          const metrics = this.broker.metrics;
          if (stats.seqGaps > 0) metrics.increment(METRIC.seqGaps, undefined, stats.seqGaps);
          if (stats.seqDuplicates > 0) metrics.increment(METRIC.seqDuplicates, undefined, stats.seqDuplicates);
          return stats;
        },
      },
    },
    started() {
      const broker: ServiceBroker = this.broker;
      const logger = this.logger;
      const toStorage = new Coalescer<IngestEvent>(
        (events) => broker.call("storage-writer.write", { events }),
        config.batchMaxEvents,
      );
      actor = new SessionActor({
        dedupWindow: config.dedupWindow,
        persist: (events) => toStorage.add(events),
        onDurable: (events) => {
          if (!serviceAvailable(broker, "forwarder")) return;
          broker.call("forwarder.forward", { events }).catch((error: unknown) => {
            logger.warn({ err: error, events: events.length }, "forwarder did not take a durable batch");
          });
        },
      });
      gauge = setInterval(() => broker.metrics.set(METRIC.activeSessions, actor?.activeMailboxes ?? 0), 1000).unref();
    },
    async stopped() {
      if (gauge) clearInterval(gauge);
      await actor?.drain();
    },
  };
}

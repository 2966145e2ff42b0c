/**
 * The forwarder service: receives durable events in per-session order and POSTs them, in
 * batches and in the same order, to FORWARD_URL. Without FORWARD_URL it only counts what it
 * would have sent. Its queue is bounded so a dead target never slows ingestion.
 */
import type { Context, ServiceSchema } from "moleculer";
import type { Config } from "../../config/env";
import type { IngestEvent } from "../common/event";
import { METRIC } from "../common/metrics";
import { ForwardQueue } from "./forward-queue";
import { postJsonBatch } from "./http-target";

export function createForwarderService(config: Config): ServiceSchema {
  let queue: ForwardQueue<IngestEvent> | null = null;
  let gauge: NodeJS.Timeout | null = null;

  return {
    name: "forwarder",
    actions: {
      forward: {
        handler(ctx: Context<{ events: IngestEvent[] }>): { queued: number } {
          const events = ctx.params.events;
          if (!queue) return { queued: 0 };
          queue.push(events);
          return { queued: events.length };
        },
      },
    },
    started() {
      const metrics = this.broker.metrics;
      const logger = this.logger;
      const target = config.forwardUrl;
      if (!target) {
        logger.info("FORWARD_URL is not set: the forwarder accepts nothing to deliver");
        return;
      }
      queue = new ForwardQueue<IngestEvent>({
        deliver: (events) => postJsonBatch(target, events, 10_000),
        maxBatch: 1000,
        maxQueued: 1_000_000,
        onDelivered: (n) => metrics.increment(METRIC.forwarded, undefined, n),
        onFailure: (error, attempt) => {
          metrics.increment(METRIC.forwardFailures);
          if (attempt === 1 || attempt % 10 === 0) logger.warn({ err: error, attempt }, "forward attempt failed");
        },
        onDrop: (n, reason) => {
          metrics.increment(METRIC.forwardDropped, { reason }, n);
          logger.error({ events: n, reason }, "forwarder dropped events");
        },
      });
      gauge = setInterval(() => metrics.set(METRIC.forwardQueue, queue?.size ?? 0), 1000).unref();
    },
    async stopped() {
      if (gauge) clearInterval(gauge);
      if (!queue) return;
      // Give the target a moment to take what is queued; what is left is reported, not hidden.
      await Promise.race([queue.idle(), new Promise((r) => setTimeout(r, 2000))]);
      queue.stop();
    },
  };
}

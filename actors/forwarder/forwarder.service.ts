/**
 * The forwarder service: delivers durable events, in per-session order, in batches, to
 * FORWARD_URL (HTTP POST of JSON batches) or FORWARD_SUBJECT (NATS), behind a circuit breaker.
 * Without a target it has nothing to deliver to and says so at start-up.
 *  - single-process mode: the session actor hands it each durable batch (`forward`); a bounded
 *    queue means a dead target never slows ingestion (drops are counted and logged);
 *  - cluster mode: it consumes the JetStream event stream partition by partition, in order.
 */
import type { Context, ServiceSchema } from "moleculer";
import type { Config } from "../../config/env";
import type { IngestEvent } from "../common/event";
import { EVENT_STREAM, eventStreamLink } from "../common/event-stream";
import { METRIC, reportLag } from "../common/metrics";
import { CircuitBreaker, CircuitOpenError } from "./circuit-breaker";
import { ForwardQueue } from "./forward-queue";
import { createNatsTarget } from "./nats-target";
import { postJsonBatch } from "./http-target";
import { StreamForwarder } from "./stream-forwarder";
import { StreamLagMonitor } from "../common/stream-lag";

export function createForwarderService(config: Config): ServiceSchema {
  let queue: ForwardQueue<IngestEvent> | null = null;
  let streamForwarder: StreamForwarder | null = null;
  let lag: StreamLagMonitor | null = null;
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
    async started() {
      const metrics = this.broker.metrics;
      const logger = this.logger;
      if (!config.forwardUrl && !config.forwardSubject) {
        logger.info("neither FORWARD_URL nor FORWARD_SUBJECT is set: the forwarder has no target and delivers nothing");
        return;
      }
      const link = config.natsUrl ? await eventStreamLink(config, logger) : null;
      const target =
        config.forwardSubject && link
          ? createNatsTarget(link.nc, config.forwardSubject, 10_000)
          : (events: readonly IngestEvent[]) => postJsonBatch(config.forwardUrl!, events, 10_000);
      // A dead target is not hammered: after repeated failures calls fail fast until a probe succeeds.
      const breaker = new CircuitBreaker({
        failureThreshold: config.forwardBreakerFailures,
        cooldownMs: config.forwardBreakerCooldownMs,
        onStateChange: (state) => {
          metrics.set(METRIC.forwardCircuitOpen, state === "open" ? 1 : 0);
          logger.warn({ state }, "forward target circuit breaker changed state");
        },
      });
      const deliver = (events: IngestEvent[]) => breaker.run(() => target(events));
      const onDelivered = (n: number) => metrics.increment(METRIC.forwarded, undefined, n);
      const onFailure = (error: unknown, attempt: number) => {
        if (error instanceof CircuitOpenError) return;
        metrics.increment(METRIC.forwardFailures);
        if (attempt === 1 || attempt % 10 === 0) logger.warn({ err: error, attempt }, "forward attempt failed");
      };
      if (link) {
        streamForwarder = new StreamForwarder({
          nc: link.nc,
          stream: EVENT_STREAM,
          partitions: config.streamPartitions,
          deliver,
          ackWaitMs: config.consumerAckWaitMs,
          retryMaxMs: Math.min(10_000, Math.floor(config.consumerAckWaitMs / 2)),
          logger,
          onDelivered,
          onFailure,
        });
        await streamForwarder.start();
        const consumers = Array.from({ length: config.streamPartitions }, (_, p) => `forwarder-p${p}`);
        lag = new StreamLagMonitor(link.nc, EVENT_STREAM, consumers, reportLag(metrics), logger);
        lag.start();
        return;
      }
      queue = new ForwardQueue<IngestEvent>({
        deliver,
        maxBatch: 1000,
        maxQueued: 1_000_000,
        onDelivered,
        onFailure,
        onDrop: (n, reason) => {
          metrics.increment(METRIC.forwardDropped, { reason }, n);
          logger.error({ events: n, reason }, "forwarder dropped events");
        },
      });
      gauge = setInterval(() => metrics.set(METRIC.forwardQueue, queue?.size ?? 0), 1000).unref();
    },
    async stopped() {
      if (gauge) clearInterval(gauge);
      lag?.stop();
      await streamForwarder?.stop();
      if (!queue) return;
      // Give the target a moment to take what is queued; what is left is reported, not hidden.
      await Promise.race([queue.idle(), new Promise((r) => setTimeout(r, 2000))]);
      queue.stop();
    },
  };
}

/**
 * The storage-writer service: batches events (closing at BATCH_MAX_EVENTS or BATCH_MAX_WAIT_MS)
 * and commits each batch to the sink, answering a write only once its batch is durable.
 */
import type { Context, ServiceSchema } from "moleculer";
import type { Config } from "../../config/env";
import type { IngestEvent } from "../common/event";
import { METRIC } from "../common/metrics";
import { Batcher } from "./batcher";
import type { Sink } from "./sink";

export function createStorageWriterService(config: Config, sink: Sink): ServiceSchema {
  let batcher: Batcher<IngestEvent> | null = null;
  let gauge: NodeJS.Timeout | null = null;

  return {
    name: "storage-writer",
    actions: {
      write: {
        async handler(ctx: Context<{ events: IngestEvent[] }>): Promise<{ stored: number }> {
          if (!batcher) throw new Error("storage-writer is not started");
          await batcher.add(ctx.params.events);
          return { stored: ctx.params.events.length };
        },
      },
      ready: {
        handler(): Promise<{ ok: boolean; reason?: string }> {
          return sink.ready();
        },
      },
      flush: {
        async handler(): Promise<{ flushed: true }> {
          await batcher?.flush();
          return { flushed: true };
        },
      },
    },
    async started() {
      const metrics = this.broker.metrics;
      const logger = this.logger;
      await sink.start();
      batcher = new Batcher<IngestEvent>({
        maxItems: config.batchMaxEvents,
        maxWaitMs: config.batchMaxWaitMs,
        commit: (events) => sink.write(events),
        onCommitted: ({ items, durationMs, error }) => {
          const labels = { sink: sink.name };
          if (error) {
            metrics.increment(METRIC.batchesFailed, labels);
            logger.error({ err: error, events: items }, "storage batch commit failed");
            return;
          }
          metrics.increment(METRIC.batchesFlushed, labels);
          metrics.increment(METRIC.rowsStored, labels, items);
          metrics.observe(METRIC.flushLatency, durationMs, labels);
        },
      });
      gauge = setInterval(() => metrics.set(METRIC.storagePending, batcher?.pending ?? 0), 1000).unref();
      logger.info({ sink: sink.name }, "storage-writer started");
    },
    async stopped() {
      if (gauge) clearInterval(gauge);
      await batcher?.flush();
      await sink.close();
    },
  };
}

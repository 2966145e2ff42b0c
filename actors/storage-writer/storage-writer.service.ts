/**
 * The storage-writer service. Batches close at BATCH_MAX_EVENTS or BATCH_MAX_WAIT_MS and each
 * batch is one sink commit (one fsynced segment write, one ClickHouse insert, one fsynced spool
 * append in front of ClickHouse).
 *  - single-process mode: the session actor calls `write` and is answered once its batch is durable;
 *  - cluster mode: the writer consumes the JetStream event stream as the "storage-writer" group.
 */
import { Errors, type Context, type ServiceSchema } from "moleculer";
import type { Config } from "../../config/env";
import type { IngestEvent } from "../common/event";
import { COUNTS_UNSUPPORTED, type EventCountQuery, type EventCounts } from "../common/event-counts";
import { EVENT_STREAM, EVENT_SUBJECT_PREFIX, eventStreamLink } from "../common/event-stream";
import { METRIC, reportLag } from "../common/metrics";
import { Batcher, type BatcherOptions } from "./batcher";
import type { Sink, SinkBacklog } from "./sink";
import { StreamWriter } from "./stream-writer";
import { StreamLagMonitor } from "../common/stream-lag";

/** A sink failing for longer than this makes /ready say so (the stream is holding a backlog). */
const LAG_READY_LIMIT_MS = 5_000;

/** Housekeeping that lives as long as the sink (e.g. ClickHouse retention): started after it, stopped before it closes. */
export interface SinkJobs {
  start(): void;
  stop(): Promise<void>;
}

export function createStorageWriterService(config: Config, sink: Sink, jobs?: SinkJobs): ServiceSchema {
  let batcher: Batcher<IngestEvent> | null = null;
  let streamWriter: StreamWriter | null = null;
  let lag: StreamLagMonitor | null = null;
  let gauge: NodeJS.Timeout | null = null;

  return {
    name: "storage-writer",
    actions: {
      write: {
        async handler(ctx: Context<{ events: IngestEvent[] }>): Promise<{ stored: number }> {
          if (!batcher) throw new Error("storage-writer takes direct writes only in single-process mode");
          await batcher.add(ctx.params.events);
          return { stored: ctx.params.events.length };
        },
      },
      /** Counts of stored events (GET /v1/metrics): any writer answers, all share one store. */
      countEvents: {
        async handler(ctx: Context<EventCountQuery>): Promise<EventCounts> {
          if (!sink.countEvents) {
            throw new Errors.MoleculerClientError(`the ${sink.name} sink cannot count events; set CLICKHOUSE_URL`, 501, COUNTS_UNSUPPORTED);
          }
          return sink.countEvents(ctx.params);
        },
      },
      ready: {
        async handler(): Promise<{ ok: boolean; reason?: string; pending: number; streamPending: number; spooled?: SinkBacklog }> {
          const pending = batcher?.pending ?? streamWriter?.pendingEvents ?? 0;
          const streamPending = lag?.pending ?? 0;
          const failing = streamWriter?.failingForMs ?? 0;
          if (failing > LAG_READY_LIMIT_MS) {
            return {
              ok: false,
              reason: `${sink.name} sink failing for ${Math.round(failing / 1000)} s; ${streamPending} messages buffered in the stream`,
              pending,
              streamPending,
            };
          }
          const spooled = sink.backlog?.();
          return { ...(await sink.ready()), pending, streamPending, ...(spooled ? { spooled } : {}) };
        },
      },
    },
    async started() {
      const metrics = this.broker.metrics;
      const logger = this.logger;
      await sink.start();
      const labels = { sink: sink.name };
      const onCommitted: BatcherOptions<IngestEvent>["onCommitted"] = ({ items, durationMs, error }) => {
        if (error) {
          metrics.increment(METRIC.batchesFailed, labels);
          logger.error({ err: error, events: items }, "storage batch commit failed");
          return;
        }
        metrics.increment(METRIC.batchesFlushed, labels);
        metrics.increment(METRIC.rowsStored, labels, items);
        metrics.observe(METRIC.flushLatency, durationMs, labels);
      };
      if (config.natsUrl) {
        const link = await eventStreamLink(config, logger);
        streamWriter = new StreamWriter({
          nc: link.nc,
          stream: EVENT_STREAM,
          filterSubject: `${EVENT_SUBJECT_PREFIX}.>`,
          sink,
          batchMaxEvents: config.batchMaxEvents,
          batchMaxWaitMs: config.batchMaxWaitMs,
          batchMinIntervalMs: config.batchMinIntervalMs,
          ackWaitMs: config.consumerAckWaitMs,
          maxAckPending: 20_000,
          dedupWindow: config.dedupWindow,
          logger,
          onCommitted,
          onRetry: () => metrics.increment(METRIC.batchesFailed, labels),
        });
        await streamWriter.start();
        lag = new StreamLagMonitor(link.nc, EVENT_STREAM, ["storage-writer"], reportLag(metrics), logger);
        lag.start();
      } else {
        batcher = new Batcher<IngestEvent>({
          maxItems: config.batchMaxEvents,
          maxWaitMs: config.batchMaxWaitMs,
          commit: (events) => sink.write(events),
          onCommitted,
          maxConcurrentCommits: sink.maxConcurrentWrites ?? 1,
          minIntervalMs: config.batchMinIntervalMs,
        });
      }
      gauge = setInterval(() => {
        metrics.set(METRIC.storagePending, batcher?.pending ?? streamWriter?.pendingEvents ?? 0);
        const backlog = sink.backlog?.();
        if (backlog) {
          metrics.set(METRIC.spoolPending, backlog.events);
          metrics.set(METRIC.spoolBytes, backlog.bytes);
          metrics.set(METRIC.spoolFailing, Math.floor(backlog.failingForMs / 1000));
        }
      }, 1000);
      gauge.unref();
      jobs?.start();
      logger.info({ sink: sink.name, mode: config.natsUrl ? "stream consumer" : "direct" }, "storage-writer started");
    },
    async stopped() {
      if (gauge) clearInterval(gauge);
      lag?.stop();
      await streamWriter?.stop();
      await batcher?.flush();
      await jobs?.stop();
      await sink.close();
    },
  };
}

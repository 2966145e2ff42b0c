/**
 * Cluster-mode storage: a durable JetStream consumer group ("storage-writer") feeding the same
 * Batcher and Sink as single-process mode. Every writer node pulls from the same durable, so
 * starting another writer shares the work; a writer that dies leaves its un-acked messages to be
 * redelivered to the others after the ack wait.
 *
 * A message is acked only after every event in it is committed by the sink. While the sink is
 * down, the commit is retried with capped exponential backoff and jitter, pending messages are
 * kept alive with `working()`, and the stream holds the backlog: the writer stops pulling while
 * `maxPendingEvents` events it took are not committed (`maxAckPending` counts messages, whose
 * sizes vary by thousands of events), and the drain after recovery is one batch commit at a time.
 * Redeliveries of messages already committed (the writer committed them, but the ack was lost or
 * came after the ack wait) are recognised by their stream sequence in a bounded window and acked
 * without a second insert. One lookup per message, not per event: copies of an event in two
 * different messages (a client resend after its session moved to another owner) are left to the
 * table's ReplacingMergeTree, which `FINAL` queries see once.
 */
import type { NatsConnection } from "nats";
import { IdWindow } from "../common/id-window";
import type { IngestEvent } from "../common/event";
import { backoffDelay, Sleeper } from "../common/backoff";
import { BatchConsumer, type BatchMessage } from "../common/jetstream";
import type { Logger } from "../common/logger";
import { Batcher, type BatcherOptions } from "./batcher";
import type { Sink } from "./sink";

export interface StreamWriterOptions {
  nc: NatsConnection;
  stream: string;
  filterSubject: string;
  sink: Sink;
  batchMaxEvents: number;
  batchMaxWaitMs: number;
  /** Least time between the starts of two commits, ms (default 0). */
  batchMinIntervalMs?: number;
  ackWaitMs: number;
  maxAckPending: number;
  /** Stream messages remembered as committed, to drop their redeliveries (0: none). */
  dedupWindow: number;
  /**
   * Events taken and not yet committed at which the writer stops pulling until commits bring it
   * under (a slow or failing sink must not fill the process). It may go over by one fetch.
   * Default: (the sink's concurrent writes + 1) × batchMaxEvents, room for every commit slot
   * and the batch filling behind them.
   */
  maxPendingEvents?: number;
  /** Most messages per pull request (default 256). */
  fetchMaxMessages?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  logger: Logger;
  onCommitted?: BatcherOptions<IngestEvent>["onCommitted"];
  onRetry?: (attempt: number, error: unknown) => void;
}

/** The committed window's one scope: stream sequences are unique within the stream. */
const MESSAGES = "";

export class StreamWriter {
  private readonly consumer: BatchConsumer;
  private readonly batcher: Batcher<IngestEvent>;
  /** Stream sequences of messages already committed: redeliveries of them are dropped. */
  private readonly committed: IdWindow<number> | null;
  private readonly pending = new Set<BatchMessage>();
  private readonly sleeper = new Sleeper();
  private keepAlive: NodeJS.Timeout | null = null;
  private stopping = false;
  private failingSince: number | null = null;
  private readonly maxPendingEvents: number;
  /** The consumer's next pull, waiting for commits to make room (see `roomToTake`). */
  private roomWaiters: Array<() => void> = [];
  private stopRequested = false;

  constructor(private readonly options: StreamWriterOptions) {
    this.committed = options.dedupWindow > 0 ? new IdWindow<number>(options.dedupWindow) : null;
    this.maxPendingEvents = options.maxPendingEvents ?? ((options.sink.maxConcurrentWrites ?? 1) + 1) * options.batchMaxEvents;
    this.batcher = new Batcher<IngestEvent>({
      maxItems: options.batchMaxEvents,
      maxWaitMs: options.batchMaxWaitMs,
      commit: (events) => this.commitWithRetry(events),
      onCommitted: (info) => {
        options.onCommitted?.(info);
        if (this.batcher.pending < this.maxPendingEvents) this.wakeRoomWaiters();
      },
      maxConcurrentCommits: options.sink.maxConcurrentWrites ?? 1,
      minIntervalMs: options.batchMinIntervalMs ?? 0,
    });
    this.consumer = new BatchConsumer(options.nc, {
      stream: options.stream,
      durable: "storage-writer",
      filterSubject: options.filterSubject,
      handler: (messages) => this.take(messages),
      beforeFetch: () => this.roomToTake(),
      maxMessages: options.fetchMaxMessages ?? 256,
      expiresMs: 2_000,
      ackWaitMs: options.ackWaitMs,
      maxAckPending: options.maxAckPending,
      logger: options.logger,
    });
  }

  /** Events taken from the stream and not yet committed. */
  get pendingEvents(): number {
    return this.batcher.pending;
  }

  /** Milliseconds the sink has been failing (0 when healthy): the lag signal for /ready. */
  get failingForMs(): number {
    return this.failingSince === null ? 0 : Date.now() - this.failingSince;
  }

  async start(): Promise<void> {
    await this.consumer.start();
    // Long outages outlast the ack wait: tell JetStream we still hold these, or it redelivers them.
    this.keepAlive = setInterval(() => {
      for (const message of this.pending) message.working();
    }, Math.max(500, Math.floor(this.options.ackWaitMs / 3)));
    this.keepAlive.unref();
  }

  async stop(): Promise<void> {
    const consumerStopped = this.consumer.stop();
    // A pull held back for room must go ahead, so the consumer's loop can see it is stopping.
    this.stopRequested = true;
    this.wakeRoomWaiters();
    await consumerStopped;
    // Whatever was taken is committed (or, if the sink is down, left un-acked for redelivery).
    this.stopping = true;
    this.sleeper.wakeAll();
    await this.batcher.flush().catch(() => undefined);
    if (this.keepAlive) clearInterval(this.keepAlive);
  }

  /** Resolves when the writer may pull more: fewer than maxPendingEvents events uncommitted. */
  private async roomToTake(): Promise<void> {
    if (this.batcher.pending < this.maxPendingEvents || this.stopRequested) return;
    this.options.logger.warn(
      { pendingEvents: this.batcher.pending, maxPendingEvents: this.maxPendingEvents },
      "storage is behind: not pulling from the stream until commits catch up",
    );
    while (this.batcher.pending >= this.maxPendingEvents && !this.stopRequested) {
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    }
  }

  private wakeRoomWaiters(): void {
    const waiters = this.roomWaiters;
    this.roomWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Hands the messages' events to the batcher and returns at once: acks follow the commit. */
  private async take(messages: BatchMessage[]): Promise<void> {
    for (const message of messages) {
      if (this.committed?.has(MESSAGES, message.seq)) {
        message.ack();
        continue;
      }
      this.pending.add(message);
      this.batcher.add(message.events).then(
        () => {
          this.committed?.add(MESSAGES, message.seq);
          this.pending.delete(message);
          message.ack();
        },
        () => {
          // Only when stopping with the sink down: let another writer have it now.
          this.pending.delete(message);
          message.nak();
        },
      );
    }
  }

  private async commitWithRetry(events: IngestEvent[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.options.sink.write(events);
        if (this.failingSince !== null) {
          this.options.logger.info({ downForMs: Date.now() - this.failingSince }, "sink recovered");
          this.failingSince = null;
        }
        return;
      } catch (error) {
        this.failingSince ??= Date.now();
        this.options.onRetry?.(attempt, error);
        if (this.stopping) throw error;
        if (attempt === 1 || attempt % 10 === 0) {
          this.options.logger.warn({ err: error, attempt, events: events.length }, "sink write failed; retrying");
        }
        await this.sleeper.sleep(backoffDelay(attempt, this.options.retryBaseMs ?? 200, this.options.retryMaxMs ?? 10_000));
        if (this.stopping) throw error;
      }
    }
  }
}

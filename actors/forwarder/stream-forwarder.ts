/**
 * Cluster-mode forwarding: one durable JetStream consumer per partition subject, each with at
 * most one un-acked message (`maxAckPending: 1`). JetStream then hands out a partition's next
 * message only after the previous one is acked, whichever forwarder node pulls it, so every
 * partition (hence every session) is delivered in stream order even with several forwarder
 * nodes, and a redelivery after a forwarder's death comes before anything newer.
 *
 * A failing target is retried with capped exponential backoff and jitter while the message is
 * kept alive with `working()`; the stream holds the backlog, so a dead target slows neither
 * ingestion nor storage. The backlog is bounded by the stream's own limits.
 */
import type { NatsConnection } from "nats";
import type { IngestEvent } from "../common/event";
import { backoffDelay, Sleeper } from "../common/backoff";
import { partitionSubject } from "../common/event-stream";
import { BatchConsumer, type BatchMessage } from "../common/jetstream";
import type { Logger } from "../common/logger";

export interface StreamForwarderOptions {
  nc: NatsConnection;
  stream: string;
  partitions: number;
  deliver: (events: IngestEvent[]) => Promise<void>;
  ackWaitMs: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  logger: Logger;
  onDelivered?: (count: number) => void;
  onFailure?: (error: unknown, attempt: number) => void;
}

export class StreamForwarder {
  private readonly consumers: BatchConsumer[] = [];
  private readonly sleeper = new Sleeper();
  private stopping = false;

  constructor(private readonly options: StreamForwarderOptions) {
    for (let p = 0; p < options.partitions; p++) {
      this.consumers.push(
        new BatchConsumer(options.nc, {
          stream: options.stream,
          durable: `forwarder-p${p}`,
          filterSubject: partitionSubject(p),
          handler: (messages) => this.forward(messages),
          maxMessages: 1,
          maxAckPending: 1,
          expiresMs: 2_000,
          ackWaitMs: options.ackWaitMs,
          logger: options.logger,
        }),
      );
    }
  }

  async start(): Promise<void> {
    await Promise.all(this.consumers.map((c) => c.start()));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.sleeper.wakeAll();
    await Promise.all(this.consumers.map((c) => c.stop()));
  }

  private async forward(messages: BatchMessage[]): Promise<void> {
    for (const message of messages) {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.options.deliver(message.events);
          message.ack();
          this.options.onDelivered?.(message.events.length);
          break;
        } catch (error) {
          this.options.onFailure?.(error, attempt);
          if (this.stopping) {
            message.nak();
            return;
          }
          message.working();
          await this.sleeper.sleep(backoffDelay(attempt, this.options.retryBaseMs ?? 200, this.options.retryMaxMs ?? 10_000));
          message.working();
        }
      }
    }
  }
}

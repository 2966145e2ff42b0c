/**
 * Watches how far consumers of the event stream are behind: the backlog a ClickHouse outage or
 * a dead forward target leaves in JetStream. Reports `num_pending` per consumer as a gauge, and
 * notices when the stream's limits discarded messages a consumer had not read yet (the
 * stream's first sequence moved past the consumer's ack floor): that is data loss for that
 * consumer, so it is counted and logged as an error, never silent. For a partition consumer
 * the count is an upper bound (the discarded range also holds other partitions' messages).
 */
import type { NatsConnection } from "nats";
import type { Logger } from "./logger";

export interface LagReport {
  consumer: string;
  pending: number;
  /** Messages newly discarded unconsumed since the last report. */
  discarded: number;
}

export class StreamLagMonitor {
  private timer: NodeJS.Timeout | null = null;
  private readonly lastLost = new Map<string, number>();
  private latest = new Map<string, number>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly stream: string,
    private readonly consumers: string[],
    private readonly report: (r: LagReport) => void,
    private readonly logger: Logger,
  ) {}

  /** Total pending messages across the watched consumers, as last seen. */
  get pending(): number {
    let total = 0;
    for (const value of this.latest.values()) total += value;
    return total;
  }

  start(intervalMs = 5000): void {
    this.timer = setInterval(() => void this.check().catch((err: unknown) => this.logger.warn({ err }, "stream lag check failed")), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async check(): Promise<void> {
    const jsm = await this.nc.jetstreamManager();
    const stream = await jsm.streams.info(this.stream);
    const firstSeq = stream.state.first_seq;
    for (const name of this.consumers) {
      const info = await jsm.consumers.info(this.stream, name);
      this.latest.set(name, info.num_pending);
      const ackFloor = info.ack_floor.stream_seq;
      const lostThrough = firstSeq - 1;
      const countedThrough = Math.max(ackFloor, this.lastLost.get(name) ?? 0);
      let discarded = 0;
      if (lostThrough > countedThrough) {
        discarded = lostThrough - countedThrough;
        this.lastLost.set(name, lostThrough);
        this.logger.error(
          { consumer: name, discarded, firstSeq, ackFloor },
          "stream limits discarded messages this consumer had not processed",
        );
      }
      this.report({ consumer: name, pending: info.num_pending, discarded });
    }
  }
}

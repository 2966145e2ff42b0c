/**
 * Retention for `<db>.events`: drops whole daily partitions older than RETENTION_DAYS.
 *
 * Dropping partitions instead of a TTL clause: 18.16 has no TTL, and a partition drop is a
 * metadata operation (instant, no merge, no mutation) on every version. Partitions are
 * `toYYYYMMDD(event_date)` in UTC (see migrations.ts), so the partition id is the UTC day.
 *
 * Note for new servers: `max_partition_size_to_drop` (default 50 GB) refuses drops of bigger
 * partitions; the job logs the error and tries again next interval.
 */
import type { ClickHouseClient } from "@clickhouse/client";
import type { Logger } from "pino";
import { EVENTS_TABLE } from "./migrations";
import { assertSafeIdentifier, qualifiedName, quoteString } from "./sql";

const DAY_MS = 86_400_000;
const PARTITION_ID = /^(\d{4})(\d{2})(\d{2})$/;

/** The UTC day of `partitionId` (`YYYYMMDD`) as epoch ms at 00:00, or undefined if it is not one. */
export function partitionDayMs(partitionId: string): number | undefined {
  const m = PARTITION_ID.exec(partitionId);
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const ms = Date.UTC(y, mo - 1, d);
  const back = new Date(ms);
  // Reject ids Date.UTC would silently normalise (20240230 -> March 1st).
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d) return undefined;
  return ms;
}

/**
 * Which partitions are expired: those whose UTC day is before (today - retentionDays), today
 * being the UTC day of `nowMs`. With retentionDays = 30 on 2024-03-31, 20240301 is kept and
 * 20240229 is dropped: at least `retentionDays` full days before today are always kept.
 * Ids that are not a valid `YYYYMMDD` date are never returned: we only drop what we understand.
 * Result is de-duplicated and sorted oldest first.
 */
export function expiredPartitions(partitionIds: readonly string[], nowMs: number, retentionDays: number): string[] {
  if (!Number.isInteger(retentionDays) || retentionDays < 1) {
    throw new Error(`retentionDays must be an integer >= 1, got ${retentionDays}`);
  }
  const todayMs = Math.floor(nowMs / DAY_MS) * DAY_MS;
  const cutoffMs = todayMs - retentionDays * DAY_MS;
  const out = new Set<string>();
  for (const id of partitionIds) {
    const day = partitionDayMs(id);
    if (day !== undefined && day < cutoffMs) out.add(id);
  }
  return [...out].sort();
}

export interface RetentionJobOptions {
  client: ClickHouseClient;
  database: string;
  retentionDays: number;
  /** How often to check. Default one hour. */
  intervalMs?: number;
  logger?: Logger;
  /** Clock, epoch ms (tests). Default `Date.now`. */
  now?: () => number;
}

export class RetentionJob {
  private readonly client: ClickHouseClient;
  private readonly database: string;
  private readonly retentionDays: number;
  private readonly intervalMs: number;
  private readonly logger: Logger | undefined;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<string[]> | undefined;

  constructor(options: RetentionJobOptions) {
    assertSafeIdentifier(options.database, "ClickHouse database");
    // Validates retentionDays up front rather than on the first tick.
    expiredPartitions([], 0, options.retentionDays);
    this.client = options.client;
    this.database = options.database;
    this.retentionDays = options.retentionDays;
    this.intervalMs = options.intervalMs ?? 3_600_000;
    this.logger = options.logger;
    this.now = options.now ?? Date.now;
  }

  /** Runs once now, then every interval. Failures are logged, not thrown: retention can wait. */
  start(): void {
    if (this.timer) return;
    const tick = (): void => {
      this.runOnce().catch((err: unknown) => {
        this.logger?.error({ err }, "ClickHouse retention run failed");
      });
    };
    this.timer = setInterval(tick, this.intervalMs);
    // Retention must never keep the process alive on shutdown.
    this.timer.unref();
    tick();
  }

  /** Stops the interval and waits for a run in progress. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.running) await this.running.catch(() => undefined);
  }

  /** One pass; returns the partition ids it dropped. Concurrent calls share one run. */
  runOnce(): Promise<string[]> {
    if (!this.running) {
      this.running = this.dropExpired().finally(() => {
        this.running = undefined;
      });
    }
    return this.running;
  }

  private async dropExpired(): Promise<string[]> {
    const rs = await this.client.query({
      query:
        `SELECT DISTINCT partition_id FROM system.parts ` +
        `WHERE database = ${quoteString(this.database)} AND table = ${quoteString(EVENTS_TABLE)} AND active`,
      format: "JSONEachRow",
    });
    const ids = (await rs.json<{ partition_id: string }>()).map((r) => r.partition_id);
    const expired = expiredPartitions(ids, this.now(), this.retentionDays);
    const dropped: string[] = [];
    for (const id of expired) {
      // The id came from the server and passed the YYYYMMDD check; it is still quoted, never
      // pasted, because nothing read back from a database is trusted as SQL.
      await this.client.command({
        query: `ALTER TABLE ${qualifiedName(this.database, EVENTS_TABLE)} DROP PARTITION ID ${quoteString(id)}`,
      });
      dropped.push(id);
      this.logger?.info({ database: this.database, partition: id }, "dropped expired ClickHouse partition");
    }
    return dropped;
  }
}

/**
 * The SQL of an event count (see actors/common/event-counts.ts) and the reading of its rows.
 * Pure, so the text can be checked without a server; the sink runs it (ClickHouseSink.countEvents).
 *
 * - `FINAL`: copies of a redelivered event collapse into one row (migrations.ts), so every event
 *   counts once, merged or not.
 * - The window is on `timestamp` (epoch ms, exact); the same window on `event_date` as well lets
 *   the server skip whole daily partitions (the partition key is the date, not the timestamp).
 * - Tenant and event name are string literals through `quoteString`, the only way a value enters
 *   SQL here; numbers are checked to be integers first. 18.16 has no query parameters.
 * - Only functions 18.16 and current servers share: `uniqExactIf`, `intDiv`, `toDate`.
 */
import type { EventCountGroup, EventCountGrouping, EventCountQuery, EventCounts } from "../../common/event-counts";
import { EVENT_COUNT_GROUPINGS, MAX_COUNT_GROUPS, TIME_BUCKET_MS } from "../../common/event-counts";
import { EVENTS_TABLE } from "./migrations";
import { qualifiedName, quoteString } from "./sql";

/** Each grouping's key: the channel, or the bucket's start in epoch seconds. */
const GROUP_KEYS: Record<EventCountGrouping, string> = {
  channel: "channel",
  hour: `intDiv(timestamp, ${TIME_BUCKET_MS.hour}) * ${TIME_BUCKET_MS.hour / 1000}`,
  day: `intDiv(timestamp, ${TIME_BUCKET_MS.day}) * ${TIME_BUCKET_MS.day / 1000}`,
};

/**
 * The last day a `Date` holds on every server version (18.16's Date is days since 1970 in 16
 * bits, and `event_date` comes through a 32-bit DateTime). A bound past it is left off
 * `event_date`; the `timestamp` bounds are exact anyway.
 */
const LAST_DATE_MS = Date.UTC(2105, 11, 31);

export interface EventCountStatements {
  /** One row: total_events, unique_users. */
  total: string;
  /** Rows of grp, total_events, unique_users, MAX_COUNT_GROUPS + 1 at most (the extra one tells truncation); null without group_by. */
  groups: string | null;
}

export function eventCountStatements(database: string, query: EventCountQuery): EventCountStatements {
  assertWindow(query.from_ms, query.to_ms);
  if (query.group_by !== null && !EVENT_COUNT_GROUPINGS.includes(query.group_by)) {
    throw new Error(`group_by must be one of ${EVENT_COUNT_GROUPINGS.join(", ")}`);
  }
  const from = `${qualifiedName(database, EVENTS_TABLE)} FINAL`;
  const where = [`tenant_id = ${quoteString(query.tenant_id)}`, `event_name = ${quoteString(query.event_name)}`];
  const lastMs = query.to_ms - 1;
  if (query.from_ms <= LAST_DATE_MS) where.push(`event_date >= toDate('${isoDate(query.from_ms)}')`);
  if (lastMs <= LAST_DATE_MS) where.push(`event_date <= toDate('${isoDate(lastMs)}')`);
  where.push(`timestamp >= ${query.from_ms}`, `timestamp < ${query.to_ms}`);
  const filter = where.join(" AND ");
  const measures = "count() AS total_events, uniqExactIf(user_id, user_id != '') AS unique_users";
  const total = `SELECT ${measures} FROM ${from} WHERE ${filter}`;
  if (query.group_by === null) return { total, groups: null };
  // Channels by size (a cut keeps the largest); time buckets in order (a cut keeps the earliest).
  const order = query.group_by === "channel" ? "total_events DESC, grp" : "grp";
  const groups =
    `SELECT ${GROUP_KEYS[query.group_by]} AS grp, ${measures} FROM ${from} WHERE ${filter} ` +
    `GROUP BY grp ORDER BY ${order} LIMIT ${MAX_COUNT_GROUPS + 1}`;
  return { total, groups };
}

/** A row as JSONEachRow gives it: 18.16 quotes 64-bit integers, current servers may not. */
export interface CountRow {
  total_events: number | string;
  unique_users: number | string;
}

export interface GroupRow extends CountRow {
  grp: number | string;
}

export function readEventCounts(query: EventCountQuery, total: CountRow | undefined, groupRows: readonly GroupRow[] | null): EventCounts {
  let groups: EventCountGroup[] | null = null;
  if (groupRows !== null) {
    groups = groupRows.slice(0, MAX_COUNT_GROUPS).map((row) => ({
      group: groupName(query.group_by!, row.grp),
      total_events: Number(row.total_events),
      unique_users: Number(row.unique_users),
    }));
  }
  return {
    total_events: Number(total?.total_events ?? 0),
    unique_users: Number(total?.unique_users ?? 0),
    groups,
    truncated: groupRows !== null && groupRows.length > MAX_COUNT_GROUPS,
  };
}

function groupName(grouping: EventCountGrouping, key: number | string): string | null {
  if (grouping === "channel") return key === "" ? null : String(key);
  const start = new Date(Number(key) * 1000);
  return Number.isNaN(start.getTime()) ? String(key) : start.toISOString().replace(".000Z", "Z");
}

function assertWindow(fromMs: number, toMs: number): void {
  if (!Number.isSafeInteger(fromMs) || !Number.isSafeInteger(toMs) || fromMs < 0 || toMs <= fromMs) {
    throw new Error(`count window must be integers 0 <= from_ms < to_ms, got [${fromMs}, ${toMs})`);
  }
}

function isoDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

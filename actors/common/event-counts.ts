/**
 * Counts of stored events: the serving path of the reference services (seeds 003 and 004,
 * `GET /metrics?event_name=...&from=...&to=...&group_by=...`). The edge turns a request into an
 * `EventCountQuery`; a storage writer whose sink can answer it (ClickHouse) returns
 * `EventCounts`. Both travel as Moleculer call params and results, so they are plain data.
 */

/** Where edges answer counts (GET); seeds 003 and 004 call `/metrics` with an `event_name`. */
export const EVENT_COUNTS_PATH = "/v1/metrics";

/** How a count may be split: by the event's channel, or by the UTC hour or day of its timestamp. */
export type EventCountGrouping = "channel" | "hour" | "day";

export const EVENT_COUNT_GROUPINGS: readonly EventCountGrouping[] = ["channel", "hour", "day"];

/** The length of a time bucket, ms (UTC hours and days: epoch ms divide into them evenly). */
export const TIME_BUCKET_MS: Readonly<Record<Exclude<EventCountGrouping, "channel">, number>> = { hour: 3_600_000, day: 86_400_000 };

export interface EventCountQuery {
  /** From the caller's API key, never from the request. */
  tenant_id: string;
  event_name: string;
  /** The window [from_ms, to_ms) over the events' `timestamp`, epoch milliseconds. */
  from_ms: number;
  to_ms: number;
  group_by: EventCountGrouping | null;
}

export interface EventCountGroup {
  /** The channel (null for events without one), or the bucket's start as ISO-8601 (hour, day). */
  group: string | null;
  total_events: number;
  unique_users: number;
}

export interface EventCounts {
  /** Events in the window, each counted once however often it was delivered. */
  total_events: number;
  /** Distinct non-empty `user_id`s among them. */
  unique_users: number;
  /** Per group (null when the query had no `group_by`); at most MAX_COUNT_GROUPS of them. */
  groups: EventCountGroup[] | null;
  /** Whether groups beyond MAX_COUNT_GROUPS were left out (channels: the least frequent; hours and days: the latest). */
  truncated: boolean;
}

/** Groups one answer carries at most: a tenant's channels are client-set strings, so unbounded. */
export const MAX_COUNT_GROUPS = 1000;

/** The error type a storage writer answers with when its sink cannot count (the file sink). */
export const COUNTS_UNSUPPORTED = "COUNTS_UNSUPPORTED";

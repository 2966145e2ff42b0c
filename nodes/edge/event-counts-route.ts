/**
 * `GET /v1/metrics?event_name=...&from=...&to=...&group_by=...`: how many of a tenant's events of
 * one name were stored in a time window, and from how many users; the serving path of the
 * reference services (seeds 003 and 004, whose clients call it as `GET /metrics?event_name=...`,
 * which the edge tells from a Prometheus scrape by its `event_name`).
 *
 * Parameters:
 *   event_name  required
 *   from, to    unix seconds or ISO-8601; the window is [from, to); default the 24 hours up to now
 *   group_by    channel | hour | day (UTC); hours and days: at most MAX_COUNT_GROUPS buckets
 * Answer (seed 003 reads `count`, seed 004 `total_events` and `data`):
 *   {"event_name","from","to","count","total_events","unique_users"[,"grouped_by","data","truncated"]}
 *
 * The query parsing and the answer are pure; the count itself comes from `count` (a storage
 * writer's ClickHouse, through Moleculer).
 */
import { COUNTS_UNSUPPORTED, EVENT_COUNT_GROUPINGS, MAX_COUNT_GROUPS, TIME_BUCKET_MS, type EventCountGrouping, type EventCountQuery, type EventCounts } from "../../actors/common/event-counts";
import { parseIsoTimestamp } from "../../actors/validator/normalize";
import { errorReply, type HttpReply } from "./http-server";

const PARAMETERS = ["event_name", "from", "to", "group_by"] as const;
const MAX_EVENT_NAME_LENGTH = 1024;
const DEFAULT_WINDOW_MS = 24 * 3_600_000;
/** Unix seconds this large are epoch milliseconds sent by mistake (1e11 s is the year 5138). */
const SECONDS_LIMIT = 1e11;

/** Whether a `GET /metrics` with this query string asks for event counts rather than Prometheus text. */
export function asksForEventCounts(queryString: string): boolean {
  return new URLSearchParams(queryString).has("event_name");
}

export function parseEventCountQuery(queryString: string, tenant: string, nowMs: number): { query: EventCountQuery } | { error: string } {
  const values: Partial<Record<(typeof PARAMETERS)[number], string>> = {};
  for (const [name, value] of new URLSearchParams(queryString)) {
    if (!(PARAMETERS as readonly string[]).includes(name)) {
      return { error: `unknown parameter ${JSON.stringify(name)} (known: ${PARAMETERS.join(", ")})` };
    }
    const key = name as (typeof PARAMETERS)[number];
    if (values[key] !== undefined) return { error: `${name} is given more than once` };
    values[key] = value;
  }
  const eventName = values.event_name;
  if (!eventName) return { error: "event_name is required" };
  if (eventName.length > MAX_EVENT_NAME_LENGTH) return { error: `event_name must be at most ${MAX_EVENT_NAME_LENGTH} characters` };

  const to = values.to === undefined ? nowMs : parseTime(values.to, "to");
  if (typeof to === "string") return { error: to };
  const from = values.from === undefined ? Math.max(0, to - DEFAULT_WINDOW_MS) : parseTime(values.from, "from");
  if (typeof from === "string") return { error: from };
  if (from >= to) return { error: "from must be before to" };

  let groupBy: EventCountGrouping | null = null;
  if (values.group_by) {
    if (!(EVENT_COUNT_GROUPINGS as readonly string[]).includes(values.group_by)) {
      return { error: `group_by must be one of ${EVENT_COUNT_GROUPINGS.join(", ")}` };
    }
    groupBy = values.group_by as EventCountGrouping;
    if (groupBy !== "channel") {
      const bucket = TIME_BUCKET_MS[groupBy];
      const buckets = Math.floor((to - 1) / bucket) - Math.floor(from / bucket) + 1;
      if (buckets > MAX_COUNT_GROUPS) {
        return { error: `group_by=${groupBy} covers at most ${MAX_COUNT_GROUPS} ${groupBy}s; this window has ${buckets}` };
      }
    }
  }
  return { query: { tenant_id: tenant, event_name: eventName, from_ms: from, to_ms: to, group_by: groupBy } };
}

/** Epoch ms of a `from`/`to` value, or the error. */
function parseTime(value: string, name: string): number | string {
  if (/^\d+$/.test(value)) {
    const seconds = Number(value);
    if (seconds >= SECONDS_LIMIT) return `${name} looks like milliseconds; give unix seconds or ISO-8601`;
    return seconds * 1000;
  }
  // An unencoded `+` in a URL reads as a space: before a zone offset it can only have been a `+`.
  const ms = parseIsoTimestamp(value.replace(/ (\d{2}:?\d{2})$/, "+$1"));
  if (Number.isNaN(ms)) return `${name} must be unix seconds or an ISO-8601 time, got ${JSON.stringify(value.slice(0, 64))}`;
  if (ms < 0) return `${name} must not be before 1970`;
  return ms;
}

export function eventCountsBody(query: EventCountQuery, counts: EventCounts): string {
  const body: Record<string, unknown> = {
    event_name: query.event_name,
    from: query.from_ms / 1000,
    to: query.to_ms / 1000,
    count: counts.total_events,
    total_events: counts.total_events,
    unique_users: counts.unique_users,
  };
  if (query.group_by !== null) {
    body.grouped_by = query.group_by;
    body.data = counts.groups ?? [];
    body.truncated = counts.truncated;
  }
  return JSON.stringify(body);
}

export interface EventCountRouteDeps {
  /** Runs the count on a storage writer. */
  count(query: EventCountQuery): Promise<EventCounts>;
  /** A count that failed for a reason other than the request (logged; the client gets 503). */
  onFailure(error: unknown, query: EventCountQuery): void;
  /** Count queries this node runs at once; more are answered 429 (each is a scan on the store). */
  maxInFlight: number;
}

export class EventCountRoute {
  private inFlight = 0;

  constructor(private readonly deps: EventCountRouteDeps) {}

  /** The answer to an authenticated count request of `tenant`. */
  async answer(tenant: string, queryString: string, nowMs: number): Promise<HttpReply> {
    const parsed = parseEventCountQuery(queryString, tenant, nowMs);
    if ("error" in parsed) return errorReply("invalid_query", parsed.error);
    if (this.inFlight >= this.deps.maxInFlight) {
      return errorReply("rate_limited", `At most ${this.deps.maxInFlight} count queries run at once on a node`, 1);
    }
    this.inFlight++;
    try {
      const counts = await this.deps.count(parsed.query);
      return { status: 200, body: eventCountsBody(parsed.query, counts) };
    } catch (error) {
      if ((error as { type?: unknown }).type === COUNTS_UNSUPPORTED) return errorReply("counts_unsupported");
      this.deps.onFailure(error, parsed.query);
      return errorReply("store_unavailable", undefined, 1);
    } finally {
      this.inFlight--;
    }
  }
}

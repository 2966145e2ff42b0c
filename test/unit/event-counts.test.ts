import { describe, expect, it } from "vitest";
import { COUNTS_UNSUPPORTED, MAX_COUNT_GROUPS, type EventCountQuery, type EventCounts } from "../../actors/common/event-counts";
import { eventCountStatements, readEventCounts } from "../../actors/storage-writer/clickhouse/event-counts-sql";
import { asksForEventCounts, EventCountRoute, eventCountsBody, parseEventCountQuery } from "../../nodes/edge/event-counts-route";

const NOW = Date.UTC(2026, 10, 22, 12, 30, 15, 250);
const HOUR = 3_600_000;

function parsed(queryString: string): EventCountQuery {
  const result = parseEventCountQuery(queryString, "t1", NOW);
  if ("error" in result) throw new Error(result.error);
  return result.query;
}

function parseError(queryString: string): string {
  const result = parseEventCountQuery(queryString, "t1", NOW);
  if (!("error" in result)) throw new Error(`expected an error for ${queryString}`);
  return result.error;
}

describe("parseEventCountQuery", () => {
  it("defaults to the 24 hours up to now, no grouping, the caller's tenant", () => {
    expect(parsed("event_name=login")).toEqual({ tenant_id: "t1", event_name: "login", from_ms: NOW - 24 * HOUR, to_ms: NOW, group_by: null });
  });

  it("reads unix seconds (seed 004) and ISO-8601 (seed 003), with offsets", () => {
    expect(parsed("event_name=product_view&from=1706745600&to=1706832000&group_by=channel")).toMatchObject({
      from_ms: 1_706_745_600_000,
      to_ms: 1_706_832_000_000,
      group_by: "channel",
    });
    expect(parsed("event_name=login&from=2026-02-13T20:00:00Z&to=2026-02-14")).toMatchObject({
      from_ms: Date.UTC(2026, 1, 13, 20),
      to_ms: Date.UTC(2026, 1, 14),
    });
    // An unencoded `+` arrives as a space; an encoded one as `+`: both are the offset.
    expect(parsed("event_name=a&from=2026-02-13T20:00:00+01:00&to=2026-02-13T22:00:00%2B01:00")).toMatchObject({
      from_ms: Date.UTC(2026, 1, 13, 19),
      to_ms: Date.UTC(2026, 1, 13, 21),
    });
    // Only `to`: the 24 hours before it.
    expect(parsed("event_name=a&to=1706832000")).toMatchObject({ from_ms: 1_706_832_000_000 - 24 * HOUR, to_ms: 1_706_832_000_000 });
  });

  it("decodes the event name as a URL parameter", () => {
    expect(parsed("event_name=it%27s%20a%20%22name%22%20%E2%9C%93").event_name).toBe(`it's a "name" ✓`);
  });

  it.each([
    ["", "event_name is required"],
    ["event_name=", "event_name is required"],
    ["from=1", "event_name is required"],
    [`event_name=${"x".repeat(1025)}`, "event_name must be at most 1024 characters"],
    ["event_name=a&event_name=b", "event_name is given more than once"],
    ["event_name=a&tenant_id=other", 'unknown parameter "tenant_id" (known: event_name, from, to, group_by)'],
    ["event_name=a&from=1706745600000", "from looks like milliseconds; give unix seconds or ISO-8601"],
    ["event_name=a&to=yesterday", 'to must be unix seconds or an ISO-8601 time, got "yesterday"'],
    ["event_name=a&from=2026-02-30", 'from must be unix seconds or an ISO-8601 time, got "2026-02-30"'],
    ["event_name=a&from=-5", 'from must be unix seconds or an ISO-8601 time, got "-5"'],
    ["event_name=a&from=1969-12-31T23:00:00Z", "from must not be before 1970"],
    ["event_name=a&from=1706832000&to=1706832000", "from must be before to"],
    ["event_name=a&from=1706832000&to=1706745600", "from must be before to"],
    ["event_name=a&group_by=user", "group_by must be one of channel, hour, day"],
    ["event_name=a&from=0&to=3600001&group_by=hour", "group_by=hour covers at most 1000 hours; this window has 1001"],
  ])("%s → %s", (queryString, error) => {
    expect(parseError(queryString)).toBe(error);
  });

  it("allows exactly MAX_COUNT_GROUPS hour buckets, counted on bucket boundaries", () => {
    expect(parsed(`event_name=a&from=0&to=${MAX_COUNT_GROUPS * 3600}&group_by=hour`).group_by).toBe("hour");
    // Half an hour in: the window touches 1,001 hours.
    expect(parseError(`event_name=a&from=1800&to=${MAX_COUNT_GROUPS * 3600 + 1}&group_by=hour`)).toMatch(/this window has 1001/);
    expect(parsed("event_name=a&from=0&to=86400000&group_by=day").group_by).toBe("day");
  });

  it("never throws on random query strings, and whatever it accepts makes valid statements", () => {
    const names = ["event_name", "event_name", "from", "to", "group_by", "x", "%65vent_name", ""];
    const pieces = ["%", "%2", "%E2%9C%93", "+", " ", "'", "\\", "0", "9", "1723400000", "1723486400", "T", "Z", "-", ":", "hour", "day", "channel", "2026-02-13", "T20:00:00", "%00", "=", "&"];
    let seed = 7;
    const random = (n: number) => Math.floor(((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * n);
    const junk = () => Array.from({ length: random(4) }, () => pieces[random(pieces.length)]).join("");
    let accepted = 0;
    for (let n = 0; n < 5000; n++) {
      const text = Array.from({ length: 1 + random(4) }, () => `${names[random(names.length)]}=${junk()}`).join(random(8) === 0 ? junk() : "&");
      const result = parseEventCountQuery(text, "t", NOW);
      if ("query" in result) {
        accepted++;
        expect(() => eventCountStatements("ingest", result.query)).not.toThrow();
      } else {
        expect(result.error).toMatch(/\S/);
      }
    }
    expect(accepted).toBeGreaterThan(200);
  });

  it("tells a count request on /metrics from a Prometheus scrape by its event_name", () => {
    expect(asksForEventCounts("")).toBe(false);
    expect(asksForEventCounts("name[]=x")).toBe(false);
    expect(asksForEventCounts("event_name=login")).toBe(true);
    expect(asksForEventCounts("from=1&event_name=")).toBe(true);
  });
});

describe("eventCountStatements", () => {
  const query: EventCountQuery = { tenant_id: "t1", event_name: "login", from_ms: Date.UTC(2026, 1, 13, 20), to_ms: Date.UTC(2026, 1, 15), group_by: null };

  it("counts with FINAL over the tenant, the name and the window, bounding the partitions too", () => {
    const { total, groups } = eventCountStatements("ingest", query);
    expect(groups).toBeNull();
    expect(total).toBe(
      "SELECT count() AS total_events, uniqExactIf(user_id, user_id != '') AS unique_users FROM `ingest`.`events` FINAL " +
        "WHERE tenant_id = 't1' AND event_name = 'login' AND event_date >= toDate('2026-02-13') AND event_date <= toDate('2026-02-14') " +
        `AND timestamp >= ${query.from_ms} AND timestamp < ${query.to_ms}`,
    );
  });

  it("quotes the tenant and the name, whatever they hold", () => {
    const { total } = eventCountStatements("ingest", { ...query, tenant_id: "a'b", event_name: "x' OR 1=1 --\\" });
    expect(total).toContain("tenant_id = 'a\\'b' AND event_name = 'x\\' OR 1=1 --\\\\'");
  });

  it("groups by channel (largest first) or by time bucket (in order), one row more than it keeps", () => {
    const byChannel = eventCountStatements("ingest", { ...query, group_by: "channel" }).groups!;
    expect(byChannel).toMatch(/^SELECT channel AS grp, count\(\) AS total_events, .* GROUP BY grp ORDER BY total_events DESC, grp LIMIT 1001$/);
    const byHour = eventCountStatements("ingest", { ...query, group_by: "hour" }).groups!;
    expect(byHour).toMatch(/^SELECT intDiv\(timestamp, 3600000\) \* 3600 AS grp, .* GROUP BY grp ORDER BY grp LIMIT 1001$/);
    expect(eventCountStatements("ingest", { ...query, group_by: "day" }).groups).toMatch(/^SELECT intDiv\(timestamp, 86400000\) \* 86400 AS grp/);
  });

  it("leaves a date bound off where a Date cannot hold it", () => {
    const far = eventCountStatements("ingest", { ...query, to_ms: Date.UTC(9999, 0, 1) }).total;
    expect(far).toContain("event_date >= toDate('2026-02-13')");
    expect(far).not.toContain("event_date <=");
    const beyond = eventCountStatements("ingest", { ...query, from_ms: Date.UTC(2200, 0, 1), to_ms: Date.UTC(2201, 0, 1) }).total;
    expect(beyond).not.toContain("event_date");
  });

  it("refuses a window or grouping that did not come through the edge's checks", () => {
    expect(() => eventCountStatements("ingest", { ...query, from_ms: 5, to_ms: 5 })).toThrow(/count window/);
    expect(() => eventCountStatements("ingest", { ...query, from_ms: 1.5 })).toThrow(/count window/);
    expect(() => eventCountStatements("ingest", { ...query, from_ms: "0); DROP TABLE x" as unknown as number })).toThrow(/count window/);
    expect(() => eventCountStatements("ingest", { ...query, group_by: "user_id" as never })).toThrow(/group_by/);
  });
});

describe("readEventCounts", () => {
  const base: EventCountQuery = { tenant_id: "t", event_name: "e", from_ms: 0, to_ms: 1, group_by: null };

  it("reads 64-bit counts quoted (18.16) or not (current servers)", () => {
    expect(readEventCounts(base, { total_events: "42", unique_users: 7 }, null)).toEqual({ total_events: 42, unique_users: 7, groups: null, truncated: false });
    expect(readEventCounts(base, undefined, null)).toEqual({ total_events: 0, unique_users: 0, groups: null, truncated: false });
  });

  it("names channel groups (none is null) and time buckets (ISO-8601, UTC)", () => {
    const channels = readEventCounts({ ...base, group_by: "channel" }, { total_events: 3, unique_users: 2 }, [
      { grp: "web", total_events: "2", unique_users: "1" },
      { grp: "", total_events: "1", unique_users: "1" },
    ]);
    expect(channels.groups).toEqual([
      { group: "web", total_events: 2, unique_users: 1 },
      { group: null, total_events: 1, unique_users: 1 },
    ]);
    const hours = readEventCounts({ ...base, group_by: "hour" }, { total_events: 1, unique_users: 0 }, [{ grp: "1771012800", total_events: 1, unique_users: 0 }]);
    expect(hours.groups).toEqual([{ group: "2026-02-13T20:00:00Z", total_events: 1, unique_users: 0 }]);
  });

  it("keeps MAX_COUNT_GROUPS groups and says when there were more", () => {
    const rows = Array.from({ length: MAX_COUNT_GROUPS + 1 }, (_, i) => ({ grp: `c${i}`, total_events: 1, unique_users: 1 }));
    const counts = readEventCounts({ ...base, group_by: "channel" }, { total_events: rows.length, unique_users: 1 }, rows);
    expect(counts.groups).toHaveLength(MAX_COUNT_GROUPS);
    expect(counts.truncated).toBe(true);
    expect(readEventCounts({ ...base, group_by: "channel" }, undefined, rows.slice(1)).truncated).toBe(false);
  });
});

describe("eventCountsBody", () => {
  const counts: EventCounts = { total_events: 15, unique_users: 9, groups: null, truncated: false };

  it("answers seed 003's shape (count) and seed 004's (total_events, unique_users, from and to in seconds)", () => {
    const query = parsed("event_name=login&from=1706745600&to=1706832000");
    expect(JSON.parse(eventCountsBody(query, counts))).toEqual({
      event_name: "login",
      from: 1706745600,
      to: 1706832000,
      count: 15,
      total_events: 15,
      unique_users: 9,
    });
  });

  it("adds grouped_by, data and truncated when grouped", () => {
    const query = parsed("event_name=login&from=1706745600&to=1706832000&group_by=channel");
    const grouped = { ...counts, groups: [{ group: "web", total_events: 15, unique_users: 9 }] };
    expect(JSON.parse(eventCountsBody(query, grouped))).toMatchObject({
      grouped_by: "channel",
      data: [{ group: "web", total_events: 15, unique_users: 9 }],
      truncated: false,
    });
  });
});

describe("EventCountRoute", () => {
  function deferred<T>(): { promise: Promise<T>; resolve(value: T): void } {
    let resolve!: (value: T) => void;
    const promise = new Promise<T>((r) => (resolve = r));
    return { promise, resolve };
  }
  const counts: EventCounts = { total_events: 1, unique_users: 1, groups: null, truncated: false };

  it("asks the store with the caller's tenant and answers 200", async () => {
    const asked: EventCountQuery[] = [];
    const route = new EventCountRoute({ count: async (q) => (asked.push(q), counts), onFailure: () => {}, maxInFlight: 2 });
    const reply = await route.answer("t9", "event_name=a&from=0&to=10", NOW);
    expect(reply.status).toBe(200);
    expect(asked).toEqual([{ tenant_id: "t9", event_name: "a", from_ms: 0, to_ms: 10_000, group_by: null }]);
  });

  it("answers a bad query 400 without asking the store", async () => {
    let asked = 0;
    const route = new EventCountRoute({ count: async () => (asked++, counts), onFailure: () => {}, maxInFlight: 2 });
    const reply = await route.answer("t", "event_name=a&group_by=user", NOW);
    expect(reply.status).toBe(400);
    expect(JSON.parse(reply.body)).toEqual({ error: { code: "invalid_query", message: "group_by must be one of channel, hour, day" } });
    expect(asked).toBe(0);
  });

  it("runs at most maxInFlight at once; the next gets 429 with Retry-After until one finishes", async () => {
    const pending = [deferred<EventCounts>(), deferred<EventCounts>()];
    let call = 0;
    const route = new EventCountRoute({ count: () => pending[call++]!.promise, onFailure: () => {}, maxInFlight: 2 });
    const first = route.answer("t", "event_name=a", NOW);
    const second = route.answer("t", "event_name=a", NOW);
    const third = await route.answer("t", "event_name=a", NOW);
    expect(third.status).toBe(429);
    expect(third.headers).toEqual({ "Retry-After": "1" });
    pending[0]!.resolve(counts);
    expect((await first).status).toBe(200);
    pending.push(deferred<EventCounts>());
    const fourth = route.answer("t", "event_name=a", NOW);
    pending[1]!.resolve(counts);
    pending[2]!.resolve(counts);
    expect((await second).status).toBe(200);
    expect((await fourth).status).toBe(200);
  });

  it("answers 501 when the store cannot count, 503 (logged) when it fails", async () => {
    const unsupported = Object.assign(new Error("file sink"), { type: COUNTS_UNSUPPORTED });
    const failures: unknown[] = [];
    const failing = new Error("ClickHouse refused the connection");
    let error: Error = unsupported;
    const route = new EventCountRoute({ count: () => Promise.reject(error), onFailure: (e) => failures.push(e), maxInFlight: 1 });
    const notHere = await route.answer("t", "event_name=a", NOW);
    expect(notHere.status).toBe(501);
    expect(JSON.parse(notHere.body).error.code).toBe("counts_unsupported");
    expect(failures).toEqual([]);
    error = failing;
    const down = await route.answer("t", "event_name=a", NOW);
    expect(down.status).toBe(503);
    expect(down.headers).toEqual({ "Retry-After": "1" });
    expect(JSON.parse(down.body).error.code).toBe("store_unavailable");
    expect(failures).toEqual([failing]);
    // The slot was given back both times.
    error = unsupported;
    expect((await route.answer("t", "event_name=a", NOW)).status).toBe(501);
  });
});

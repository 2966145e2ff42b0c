/**
 * The ClickHouse sink, its migrations and retention, checked against one ClickHouse engine: the
 * tests that need only SQL and data, run by clickhouse-sink.test.ts against Debian's 18.16 server
 * and by clickhouse-current.test.ts against a current ClickHouse in-process (chDB). The tests that
 * need a server process (timeouts, restarts, a crash) stay in the first.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, type ClickHouseClient } from "@clickhouse/client";
import type { IngestEvent } from "../../actors/common/event";
import type { EventCountQuery } from "../../actors/common/event-counts";
import {
  ClickHouseSink,
  type ClickHouseSinkOptions,
  type RowFormatter,
} from "../../actors/storage-writer/clickhouse/clickhouse-sink";
import { everyRowFound, landedRowsSql, type RowKey, type StoredKey } from "../../actors/storage-writer/clickhouse/lost-answer";
import { MIGRATIONS, runMigrations } from "../../actors/storage-writer/clickhouse/migrations";
import { RetentionJob } from "../../actors/storage-writer/clickhouse/retention";
import { quoteIdentifier, quoteString } from "../../actors/storage-writer/clickhouse/sql";
import { referenceTsvRow } from "./tsv-row";

export const DB = "ingest";
const DAY_MS = 86_400_000;

/** Where the suite's sinks and reader send their SQL. */
export interface ClickHouseTarget {
  /** A new client's way to the engine: a server's URL, or a fresh in-process connection. */
  engine(): Pick<ClickHouseSinkOptions, "url" | "connection">;
  close(): Promise<void>;
}

/** What the suite set up, for a file's own tests after it. */
export interface SuiteHandle {
  readonly sink: ClickHouseSink;
  readonly reader: ClickHouseClient;
  rows<T>(query: string): Promise<T[]>;
  /** Rows of ingest.events matching `where`, FINAL unless `final` is false. */
  count(where: string, final?: boolean): Promise<number>;
}

export function makeEvents(tenant: string, n: number, baseMs: number, prefix = "e"): IngestEvent[] {
  return Array.from({ length: n }, (_, i) => ({
    tenant_id: tenant,
    event_id: `${prefix}-${String(i).padStart(6, "0")}`,
    event_name: i % 3 === 0 ? "page_view" : "click",
    session_id: i % 2 === 0 ? `user:u${i % 97}` : `s-${i % 13}`,
    seq: i % 5 === 0 ? null : i,
    user_id: i % 4 === 0 ? null : `u${i % 97}`,
    channel: i % 7 === 0 ? null : "web",
    // Distinct, non-round milliseconds so truncation to seconds would show.
    timestamp: baseMs + i * 7 + 3,
    received_at: baseMs + i * 7 + 250,
    properties: {
      i,
      label: `ünïcødé ✓ 日本 😀 'q' "dq" \\ back\nline\ttab`,
      nested: { ok: i % 2 === 0, list: [1, 2.5, null, "x"], empty: {} },
    },
  }));
}

/**
 * Registers the engine-independent tests on the target `open` gives (called in beforeAll), with
 * one sink started on it; returns the handle the file's later tests use.
 */
export function clickHouseSinkSuite(open: () => Promise<ClickHouseTarget>): SuiteHandle {
  let target: ClickHouseTarget;
  let reader: ClickHouseClient;
  let sink: ClickHouseSink;
  const rows = async <T>(query: string): Promise<T[]> => {
    const rs = await reader.query({ query, format: "JSONEachRow" });
    return rs.json<T>();
  };
  const count = async (where: string, final = true): Promise<number> => {
    const r = await rows<{ c: string }>(`SELECT count() AS c FROM ingest.events ${final ? "FINAL" : ""} WHERE ${where}`);
    return Number(r[0]?.c);
  };
  const handle: SuiteHandle = {
    get sink() {
      return sink;
    },
    get reader() {
      return reader;
    },
    rows,
    count,
  };

  beforeAll(async () => {
    target = await open();
    reader = createClient({ ...target.engine(), request_timeout: 10_000 });
    sink = new ClickHouseSink({ ...target.engine(), database: DB, requestTimeoutMs: 2_000 });
    await sink.start();
  }, 60_000);

  afterAll(async () => {
    await sink?.close();
    await reader?.close();
    await target?.close();
  }, 30_000);

  describe("migrations", () => {
    it("are idempotent and create the fixed schema", async () => {
      // sink.start() in beforeAll applied them; running again applies nothing and breaks nothing.
      expect(await runMigrations(reader, DB)).toEqual([]);
      expect(await runMigrations(reader, DB)).toEqual([]);
      const second = new ClickHouseSink({ ...target.engine(), database: DB });
      await second.start();
      expect(second.serverVersion).toMatch(/^\d+\.\d+/);
      await second.close();

      const versions = await rows<{ version: number }>(`SELECT DISTINCT version FROM ingest.schema_migrations`);
      expect(versions.map((v) => Number(v.version))).toEqual(MIGRATIONS.map((m) => m.version));

      const cols = await rows<{ name: string; type: string }>(
        `SELECT name, type FROM system.columns WHERE database = 'ingest' AND table = 'events'`,
      );
      expect(Object.fromEntries(cols.map((c) => [c.name, c.type]))).toEqual({
        tenant_id: "String",
        event_id: "String",
        session_id: "String",
        seq: "Nullable(UInt64)",
        event_name: "String",
        user_id: "String",
        channel: "String",
        timestamp: "UInt64",
        received_at: "UInt64",
        properties: "String",
        inserted_at: "UInt64",
        event_time: "DateTime('UTC')",
        event_date: "Date",
      });
      const dl = await rows<{ name: string }>(
        `SELECT name FROM system.columns WHERE database = 'ingest' AND table = 'events_dead_letter'`,
      );
      expect(dl.map((c) => c.name).sort()).toEqual(["error", "event_id", "failed_at", "raw", "tenant_id"]);
    });
  });

  describe("SQL quoting on the engine", () => {
    it("round-trips tricky strings and identifiers", async () => {
      const values = ["it's", "a\\b", "\\'", "nul\0byte", "\x01\x1f\x7f", "line\nbreak\r\ttab", "back`tick", "ünïcødé ✓ 日本 😀", "'; SELECT 1; --"];
      const select = values.map((v, i) => `${quoteString(v)} AS ${quoteIdentifier(`c${i}`)}`).join(", ");
      const [row] = await rows<Record<string, string>>(`SELECT ${select}`);
      expect(values.map((_, i) => row?.[`c${i}`])).toEqual(values);

      const [named] = await rows<Record<string, number>>(`SELECT 1 AS ${quoteIdentifier("we`ird\\name'x")}`);
      expect(Object.keys(named ?? {})).toEqual(["we`ird\\name'x"]);
    });
  });

  describe("ClickHouseSink.write", () => {
    const base = Date.now() - 3_600_000;
    const bulk = makeEvents("bulk", 10_000, base);

    it("inserts 10,000 events in one INSERT with ms timestamps and properties intact", async () => {
      const before = sink.insertBatches;
      await sink.write(bulk);
      expect(sink.insertBatches - before).toBe(1);

      const got = await rows<{
        event_id: string;
        session_id: string;
        seq: string | null;
        event_name: string;
        user_id: string;
        channel: string;
        timestamp: string;
        received_at: string;
        properties: string;
        event_time: string;
        event_date: string;
      }>(
        `SELECT event_id, session_id, seq, event_name, user_id, channel, timestamp, received_at, properties,
                toString(event_time) AS event_time, toString(event_date) AS event_date
         FROM ingest.events FINAL WHERE tenant_id = 'bulk' ORDER BY event_id`,
      );
      expect(got).toHaveLength(10_000);
      got.forEach((row, i) => {
        const e = bulk[i] as IngestEvent;
        expect(row.event_id).toBe(e.event_id);
        expect(Number(row.timestamp)).toBe(e.timestamp);
        expect(Number(row.received_at)).toBe(e.received_at);
        expect(row.seq === null ? null : Number(row.seq)).toBe(e.seq);
        expect(row.user_id).toBe(e.user_id ?? "");
        expect(row.channel).toBe(e.channel ?? "");
        expect(row.session_id).toBe(e.session_id);
        expect(row.event_name).toBe(e.event_name);
        expect(JSON.parse(row.properties)).toEqual(e.properties);
      });
      // The materialized second/day columns follow `timestamp` in UTC.
      const first = got[0] as (typeof got)[number];
      const iso = new Date((bulk[0] as IngestEvent).timestamp).toISOString();
      expect(first.event_time).toBe(`${iso.slice(0, 10)} ${iso.slice(11, 19)}`);
      expect(first.event_date).toBe(iso.slice(0, 10));
    });

    it("round-trips tab, newline, backslash and \\N in every string column (TabSeparated escaping)", async () => {
      const tricky = ["tab\there", "line\nbreak\r\n", "back\\slash\\", "\\N", "nul\0 bs\b ff\f", "'\"`", "ünïcødé 😀", ""];
      const events: IngestEvent[] = tricky.map((text, i) => ({
        tenant_id: "tsv",
        event_id: `id-${i}-${text}`,
        event_name: `name ${text}`,
        session_id: `session ${text}`,
        seq: i === 3 ? null : i,
        user_id: text === "" ? null : `user ${text}`,
        channel: i % 2 === 0 ? text : null,
        timestamp: base + i,
        received_at: base + i + 1,
        properties: { text, [`key ${text}`]: [text] },
      }));
      await sink.write(events);
      const got = await rows<{ event_id: string; event_name: string; session_id: string; seq: string | number | null; user_id: string; channel: string; properties: string }>(
        `SELECT event_id, event_name, session_id, seq, user_id, channel, properties FROM ingest.events FINAL WHERE tenant_id = 'tsv' ORDER BY timestamp`,
      );
      expect(got).toHaveLength(events.length);
      got.forEach((row, i) => {
        const e = events[i]!;
        // UInt64 comes back quoted from 18.16's JSON and as a number from chDB's: compare numbers.
        expect({ ...row, seq: row.seq === null ? null : Number(row.seq) }).toEqual({
          event_id: e.event_id,
          event_name: e.event_name,
          session_id: e.session_id,
          seq: e.seq,
          user_id: e.user_id ?? "",
          channel: e.channel ?? "",
          properties: expect.any(String),
        });
        expect(JSON.parse(row.properties)).toEqual(e.properties);
      });
    });

    it("shows a redelivered batch once with FINAL", async () => {
      const inserted = sink.rowsInserted;
      await sink.write(bulk);
      expect(sink.rowsInserted - inserted).toBe(10_000);
      const [c] = await rows<{ c: string }>(`SELECT count() AS c FROM ingest.events FINAL WHERE tenant_id = 'bulk'`);
      expect(Number(c?.c)).toBe(10_000);
      // Both copies are stored (until a merge collapses them); FINAL is what hides the duplicate.
      expect(await count("tenant_id = 'bulk'", false)).toBeGreaterThanOrEqual(10_000);
    });

    it("finds a stored batch by the lookup for a lost answer, and not a batch it never stored", async () => {
      const now = Date.now();
      const events = makeEvents("lookup", 40, now - 2 * DAY_MS);
      const insertedAt = now + 123;
      const formatted = sink.formatRows(events, insertedAt);
      await sink.insertRows(formatted.chunks, formatted.rows);
      const keys = (batch: IngestEvent[], at: number): RowKey[] =>
        batch.map((e) => ({ tenant_id: e.tenant_id, event_id: e.event_id, inserted_at: String(at), timestamp: e.timestamp }));
      const stored = keys(events, insertedAt);
      expect(everyRowFound(stored, await rows<StoredKey>(landedRowsSql(DB, stored)))).toBe(true);
      // The same events stamped by another insert, and events never sent: not found.
      const other = keys(events, insertedAt + 1);
      expect(everyRowFound(other, await rows<StoredKey>(landedRowsSql(DB, other)))).toBe(false);
      const never = keys(makeEvents("lookup", 3, now, "never"), insertedAt);
      expect(everyRowFound(never, await rows<StoredKey>(landedRowsSql(DB, never)))).toBe(false);
    });

    it("quarantines a row the server refuses (negative seq into UInt64) and inserts the rest", async () => {
      const events = makeEvents("poison-real", 200, Date.now() - 60_000);
      (events[137] as IngestEvent).seq = -1;
      const [ins, dl] = [sink.rowsInserted, sink.rowsDeadLettered];
      await sink.write(events);
      expect(sink.rowsInserted - ins).toBe(199);
      expect(sink.rowsDeadLettered - dl).toBe(1);
      expect(await count("tenant_id = 'poison-real'")).toBe(199);
      expect(await count("tenant_id = 'poison-real' AND event_id = 'e-000137'")).toBe(0);

      const dead = await rows<{ event_id: string; raw: string; error: string; failed_at: string }>(
        `SELECT event_id, raw, error, toString(failed_at) AS failed_at FROM ingest.events_dead_letter WHERE tenant_id = 'poison-real'`,
      );
      expect(dead).toHaveLength(1);
      expect(dead[0]?.event_id).toBe("e-000137");
      expect(JSON.parse(dead[0]?.raw ?? "")).toMatchObject({ event_id: "e-000137", seq: -1 });
      expect(dead[0]?.error).toMatch(/Code: (27|72)/);
      expect(dead[0]?.error).toMatch(/seq/);
    });

    it("isolates injected malformed lines with the injectable row formatter", async () => {
      const badIds = new Set(["m-000003", "m-000500", "m-000999"]);
      const formatRow: RowFormatter = (e, t) =>
        badIds.has(e.event_id)
          ? referenceTsvRow(e, t).replace(String(e.timestamp), "not a number")
          : referenceTsvRow(e, t);
      const poisoned = new ClickHouseSink({ ...target.engine(), database: DB, formatRow });
      await poisoned.start();
      try {
        await poisoned.write(makeEvents("poison-raw", 1_000, Date.now() - 60_000, "m"));
        expect(poisoned.rowsInserted).toBe(997);
        expect(poisoned.rowsDeadLettered).toBe(3);
        // Bisection, not one insert per row.
        expect(poisoned.insertBatches).toBeLessThan(60);
      } finally {
        await poisoned.close();
      }
      expect(await count("tenant_id = 'poison-raw'")).toBe(997);
      const dead = await rows<{ event_id: string; raw: string; error: string }>(
        `SELECT event_id, raw, error FROM ingest.events_dead_letter WHERE tenant_id = 'poison-raw' ORDER BY event_id`,
      );
      expect(dead.map((d) => d.event_id)).toEqual([...badIds].sort());
      for (const d of dead) {
        // The dead-letter copy is the row as JSON, whatever line was sent.
        expect(JSON.parse(d.raw)).toMatchObject({ tenant_id: "poison-raw", event_id: d.event_id });
        expect(d.error).toMatch(/^Code: \d+/);
        expect(d.error).toMatch(/Exception/);
      }
    });
  });

  describe("ClickHouseSink.countEvents", () => {
    const HOUR = 3_600_000;
    // 120 logins 3 minutes apart from 22:30 UTC two days ago (inside retention): six hours over
    // two days, three channels (one "none"), ten users and some events without one.
    const midnight = Math.floor(Date.now() / DAY_MS) * DAY_MS - DAY_MS;
    const start = midnight - 90 * 60_000;
    const event = (tenant: string, name: string, i: number): IngestEvent => ({
      tenant_id: tenant,
      event_id: `${name}-${i}`,
      event_name: name,
      session_id: `s-${i % 7}`,
      seq: i,
      user_id: i % 4 === 0 ? null : `u${i % 10}`,
      channel: i % 5 === 0 ? null : i % 5 < 3 ? "web" : "ios",
      timestamp: start + i * 180_000,
      received_at: start + i * 180_000 + 5,
      properties: {},
    });
    const logins = Array.from({ length: 120 }, (_, i) => event("counts", "login", i));
    const oddName = `it's "odd" \\ ✓`;
    const query = (over: Partial<EventCountQuery>): EventCountQuery => ({
      tenant_id: "counts",
      event_name: "login",
      from_ms: start,
      to_ms: start + 6 * HOUR,
      group_by: null,
      ...over,
    });
    /** What the counts must be, worked out from the events themselves. */
    const expected = (events: readonly IngestEvent[], key: (e: IngestEvent) => string | null) => {
      const groups = new Map<string | null, IngestEvent[]>();
      for (const e of events) groups.set(key(e), [...(groups.get(key(e)) ?? []), e]);
      return [...groups].map(([group, members]) => ({
        group,
        total_events: members.length,
        unique_users: new Set(members.map((e) => e.user_id).filter((u) => u !== null)).size,
      }));
    };
    const hourOf = (e: IngestEvent) => new Date(Math.floor(e.timestamp / HOUR) * HOUR).toISOString().replace(".000Z", "Z");

    beforeAll(async () => {
      await sink.write(logins);
      await sink.write(logins); // a redelivery: every event twice in the table until a merge
      await sink.write([
        ...Array.from({ length: 10 }, (_, i) => event("counts", "logout", i)),
        ...Array.from({ length: 20 }, (_, i) => event("counts-other", "login", i)),
        ...Array.from({ length: 5 }, (_, i) => event("counts", oddName, i)),
      ]);
    });

    it("counts each event once (FINAL) with its distinct users, for the tenant and name only", async () => {
      const [all] = expected(logins, () => null);
      expect(await sink.countEvents(query({}))).toEqual({ total_events: 120, unique_users: all!.unique_users, groups: null, truncated: false });
      expect(all!.unique_users).toBe(10); // u0..u9; a quarter of the events have no user
      expect((await sink.countEvents(query({ event_name: "logout" }))).total_events).toBe(10);
      expect((await sink.countEvents(query({ tenant_id: "counts-other" }))).total_events).toBe(20);
      expect((await sink.countEvents(query({ tenant_id: "nobody" }))).total_events).toBe(0);
      expect((await sink.countEvents(query({ event_name: oddName }))).total_events).toBe(5);
      expect((await sink.countEvents(query({ event_name: "login' OR '1'='1" }))).total_events).toBe(0);
    });

    it("takes the window as [from, to) to the millisecond", async () => {
      // Events 20..39 are the ones from 23:30:00.000 to before 00:30:00.000.
      const hour = query({ from_ms: start + HOUR, to_ms: start + 2 * HOUR });
      expect((await sink.countEvents(hour)).total_events).toBe(20);
      expect((await sink.countEvents({ ...hour, from_ms: hour.from_ms + 1 })).total_events).toBe(19);
      expect((await sink.countEvents({ ...hour, to_ms: hour.to_ms + 1 })).total_events).toBe(21);
    });

    it("groups by channel (largest first, none as null), by UTC hour and by UTC day", async () => {
      const byChannel = await sink.countEvents(query({ group_by: "channel" }));
      const channels = expected(logins, (e) => e.channel).sort(
        (a, b) => b.total_events - a.total_events || (a.group ?? "").localeCompare(b.group ?? ""),
      );
      expect(byChannel).toMatchObject({ total_events: 120, truncated: false, groups: channels });
      expect(channels.map((c) => [c.group, c.total_events])).toEqual([["ios", 48], ["web", 48], [null, 24]]); // a tie goes by name

      const byHour = await sink.countEvents(query({ group_by: "hour" }));
      expect(byHour.groups).toEqual(expected(logins, hourOf));
      expect(byHour.groups).toHaveLength(7);
      expect(byHour.groups![0]).toMatchObject({ group: hourOf(logins[0]!), total_events: 10 });
      expect(byHour.groups![0]!.group).toMatch(/T22:00:00Z$/);

      const byDay = await sink.countEvents(query({ group_by: "day" }));
      const dayOf = (e: IngestEvent) => new Date(e.timestamp < midnight ? midnight - DAY_MS : midnight).toISOString().replace(".000Z", "Z");
      expect(byDay.groups).toEqual(expected(logins, dayOf));
      expect(byDay.groups!.map((d) => d.total_events)).toEqual([30, 90]);
    });
  });

  describe("RetentionJob", () => {
    it("drops partitions older than the retention and keeps today's rows", async () => {
      const now = Date.now();
      const old = makeEvents("retention", 1, now - 40 * DAY_MS, "old");
      const recent = makeEvents("retention", 5, now, "new");
      await sink.write([...old, ...recent]);
      expect(await count("tenant_id = 'retention'")).toBe(6);

      const oldDay = new Date((old[0] as IngestEvent).timestamp).toISOString().slice(0, 10).replace(/-/g, "");
      const job = new RetentionJob({ client: reader, database: DB, retentionDays: 30 });
      const dropped = await job.runOnce();
      expect(dropped).toEqual([oldDay]);

      expect(await count("tenant_id = 'retention' AND event_id LIKE 'old-%'")).toBe(0);
      expect(await count("tenant_id = 'retention' AND event_id LIKE 'new-%'")).toBe(5);
      expect(await count("tenant_id = 'bulk'")).toBe(10_000);
      const parts = await rows<{ partition_id: string }>(
        `SELECT DISTINCT partition_id FROM system.parts WHERE database = 'ingest' AND table = 'events' AND active`,
      );
      expect(parts.map((p) => p.partition_id)).not.toContain(oldDay);
      // Nothing left to drop on a second pass.
      expect(await job.runOnce()).toEqual([]);
    });
  });

  return handle;
}

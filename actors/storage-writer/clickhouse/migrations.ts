/**
 * Schema of the ClickHouse storage and the idempotent migrations that create it.
 *
 * One schema for every server we support (18.16 up to current). Version detection was
 * considered (DateTime64(3) on >= 20.1) and rejected: two schemas mean two sets of queries,
 * two retention paths and a migration the day an old server is upgraded.
 *
 * Design of `events`:
 * - `timestamp` and `received_at` are `UInt64` epoch milliseconds. 18.16 has no DateTime64 and
 *   `DateTime` is whole seconds, so this is the only way to keep the column name *and* the
 *   millisecond precision on every version. JavaScript numbers hold epoch ms exactly.
 * - `event_time DateTime('UTC')` and `event_date Date` are MATERIALIZED from `timestamp`: the
 *   server computes them on every insert, so they can never disagree with `timestamp`, and
 *   they give queries time functions without `intDiv`. MATERIALIZED rather than DEFAULT because
 *   18.16's JSONEachRow fills omitted fields with the type's zero, not the DEFAULT expression
 *   (`input_format_defaults_for_omitted_fields` arrived in 19.x); MATERIALIZED columns are
 *   never read from the input. They are computed in UTC explicitly, so the server's time zone
 *   does not move rows between days.
 * - `PARTITION BY toYYYYMMDD(event_date)`: one partition per UTC day, partition id `YYYYMMDD`,
 *   which is what retention drops.
 * - `ENGINE = ReplacingMergeTree(inserted_at) ORDER BY (tenant_id, event_id)`: the sorting key
 *   is the dedup key, so rows are unique per (tenant_id, event_id) within a partition once
 *   merged, and queries that must not see redelivered copies read with `FINAL`. A copy in a
 *   *different* partition would survive, but that needs the same event with a different day:
 *   an event's `timestamp` is fixed once when it is normalised and every redelivery carries the
 *   same value, so copies always land in the same partition. Putting time before `event_id` in
 *   the key would not help queries much (the day is already the partition) and would make
 *   dedup depend on the timestamp too, so the key stays (tenant_id, event_id): tenant filters
 *   use the primary index, time filters on `event_date` prune partitions.
 * - `inserted_at` (epoch ms, set by the writer) is the version: the newest copy wins. Copies
 *   are identical apart from it, so which one wins does not matter; it only makes the choice
 *   deterministic.
 * - `seq Nullable(UInt64)`: 18.16 handles Nullable well for a non-key column (JSON `null` in and
 *   out); it keeps "no sequence number" distinct from 0 without a sentinel.
 * - `user_id`/`channel` are `String` with '' for none (the fixed external column types).
 * - `properties` is the JSON text of the event's properties.
 *
 * Avoided on purpose because 18.16 rejects them: TTL clauses, DateTime64, query parameters,
 * `ADD COLUMN IF NOT EXISTS` (use `MigrationContext.columnExists` instead), `Nullable` keys.
 */
import type { ClickHouseClient } from "@clickhouse/client";
import type { Logger } from "pino";
import { assertSafeIdentifier, qualifiedName, quoteIdentifier, quoteString } from "./sql";

export const EVENTS_TABLE = "events";
export const DEAD_LETTER_TABLE = "events_dead_letter";
export const MIGRATIONS_TABLE = "schema_migrations";

/** Columns the writer sends, in insert order (the MATERIALIZED ones are computed by the server). */
export const EVENT_INSERT_COLUMNS = [
  "tenant_id",
  "event_id",
  "session_id",
  "seq",
  "event_name",
  "user_id",
  "channel",
  "timestamp",
  "received_at",
  "properties",
  "inserted_at",
] as const;

export const DEAD_LETTER_INSERT_COLUMNS = ["tenant_id", "event_id", "raw", "error", "failed_at"] as const;

export function createDatabaseSql(database: string): string {
  return `CREATE DATABASE IF NOT EXISTS ${quoteIdentifier(database)}`;
}

export function eventsTableSql(database: string): string {
  return `CREATE TABLE IF NOT EXISTS ${qualifiedName(database, EVENTS_TABLE)}
(
    tenant_id    String,
    event_id     String,
    session_id   String,
    seq          Nullable(UInt64),
    event_name   String,
    user_id      String,
    channel      String,
    timestamp    UInt64,
    received_at  UInt64,
    properties   String,
    inserted_at  UInt64,
    event_time   DateTime('UTC') MATERIALIZED toDateTime(intDiv(timestamp, 1000), 'UTC'),
    event_date   Date MATERIALIZED toDate(toDateTime(intDiv(timestamp, 1000), 'UTC'))
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMMDD(event_date)
ORDER BY (tenant_id, event_id)`;
}

/**
 * Rows the server refused even on their own. Plain MergeTree: a row quarantined twice (a
 * redelivered batch) shows twice, which is honest for a table people read by hand. Monthly
 * partitions, so an operator can drop old months the same way retention drops days.
 */
export function deadLetterTableSql(database: string): string {
  return `CREATE TABLE IF NOT EXISTS ${qualifiedName(database, DEAD_LETTER_TABLE)}
(
    tenant_id  String,
    event_id   String,
    raw        String,
    error      String,
    failed_at  DateTime('UTC')
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(failed_at)
ORDER BY (tenant_id, event_id, failed_at)`;
}

export function schemaMigrationsTableSql(database: string): string {
  return `CREATE TABLE IF NOT EXISTS ${qualifiedName(database, MIGRATIONS_TABLE)}
(
    version     UInt32,
    name        String,
    applied_at  DateTime('UTC')
)
ENGINE = MergeTree
ORDER BY version`;
}

/** What a migration may do. Statements must be idempotent (see `runMigrations`). */
export interface MigrationContext {
  readonly database: string;
  command(sql: string): Promise<void>;
  /** 18.16 has no `ADD COLUMN IF NOT EXISTS`; check first, then `ALTER TABLE ... ADD COLUMN`. */
  columnExists(table: string, column: string): Promise<boolean>;
}

export interface Migration {
  /** Strictly increasing; never reuse or renumber a released version. */
  readonly version: number;
  readonly name: string;
  up(ctx: MigrationContext): Promise<void>;
}

/**
 * The migrations, in order. To change the schema, append one; never edit a released one.
 * Example of a later column addition that works on 18.16:
 *   { version: 2, name: "events.add_foo", async up(ctx) {
 *       if (!(await ctx.columnExists("events", "foo")))
 *         await ctx.command(`ALTER TABLE ${qualifiedName(ctx.database, "events")} ADD COLUMN foo String`);
 *   } }
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "create events and events_dead_letter",
    async up(ctx) {
      await ctx.command(eventsTableSql(ctx.database));
      await ctx.command(deadLetterTableSql(ctx.database));
    },
  },
];

/**
 * Creates the database and applies every migration not yet recorded in `schema_migrations`.
 *
 * ClickHouse has no transactional DDL, so a migration can run and the writer die before it is
 * recorded; the next start runs it again. Hence every step is idempotent (`IF NOT EXISTS`, or
 * a `columnExists` check). Two writers starting together may both run a migration and record
 * it twice; reading the applied set with DISTINCT makes that harmless.
 *
 * Returns the versions applied by this call.
 */
export async function runMigrations(
  client: ClickHouseClient,
  database: string,
  logger?: Logger,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<number[]> {
  assertSafeIdentifier(database, "ClickHouse database");
  assertOrdered(migrations);
  const command = async (sql: string): Promise<void> => {
    await client.command({ query: sql });
  };
  const ctx: MigrationContext = {
    database,
    command,
    async columnExists(table, column) {
      const rs = await client.query({
        query: `SELECT count() AS n FROM system.columns WHERE database = ${quoteString(database)} AND table = ${quoteString(table)} AND name = ${quoteString(column)}`,
        format: "JSONEachRow",
      });
      const rows = await rs.json<{ n: string | number }>();
      return Number(rows[0]?.n ?? 0) > 0;
    },
  };

  await command(createDatabaseSql(database));
  await command(schemaMigrationsTableSql(database));
  const rs = await client.query({
    query: `SELECT DISTINCT version FROM ${qualifiedName(database, MIGRATIONS_TABLE)}`,
    format: "JSONEachRow",
  });
  const applied = new Set((await rs.json<{ version: string | number }>()).map((r) => Number(r.version)));

  const ran: number[] = [];
  for (const migration of migrations) {
    if (applied.has(migration.version)) continue;
    logger?.info({ database, version: migration.version, name: migration.name }, "applying ClickHouse migration");
    await migration.up(ctx);
    await client.insert({
      table: qualifiedName(database, MIGRATIONS_TABLE),
      values: [{ version: migration.version, name: migration.name, applied_at: Math.floor(Date.now() / 1000) }],
      format: "JSONEachRow",
    });
    ran.push(migration.version);
  }
  return ran;
}

function assertOrdered(migrations: readonly Migration[]): void {
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i].version <= migrations[i - 1].version) {
      throw new Error(`migration versions must increase: ${migrations[i - 1].version} then ${migrations[i].version}`);
    }
  }
}

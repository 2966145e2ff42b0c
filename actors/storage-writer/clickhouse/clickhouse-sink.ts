/**
 * ClickHouse sink: one TabSeparated INSERT per batch into `<db>.events`.
 *
 * Exactly-once as seen by queries. The storage writer acknowledges a JetStream batch only after
 * `write()` resolved, so nothing is lost; but the writer can die after ClickHouse committed the
 * insert and before the ack reached JetStream, and JetStream then redelivers the same events.
 * Inserting them again is the price of at-least-once delivery. The table is a
 * `ReplacingMergeTree` whose sorting key is (tenant_id, event_id), so copies of an event collapse
 * into one row: eventually by background merges, and immediately for any query that reads with
 * `FINAL` (e.g. `SELECT count() FROM ingest.events FINAL`). A redelivered event carries the same
 * `timestamp`, hence the same daily partition, which is the scope of that dedup. So the stored
 * data is at-least-once, and what queries with `FINAL` see is exactly-once. That is the contract:
 * queries that must not double count use `FINAL` (or `argMax`/`uniqExact(event_id)` patterns);
 * dashboards that tolerate a transient duplicate may skip it.
 *
 * Poison rows. When ClickHouse refuses a batch because of its *data* (a value that does not
 * parse for its column, for example), the batch is split in halves recursively until the bad
 * rows stand alone: every good row is inserted, every row that the server refuses on its own
 * goes to `<db>.events_dead_letter` with the server's error text, and `write()` resolves, so a
 * single bad event can never block the stream. Anything else (connection refused or reset, a
 * timeout, overload, a missing table) rejects: the caller retries and JetStream keeps the
 * backlog. Except when the answer alone was lost (a reset or timeout after the request left):
 * the server may have committed the insert, so the sink waits until it no longer runs and looks
 * for its rows (lost-answer.ts); all there, it was inserted. A row is only quarantined after
 * failing alone with a data error, so a transient problem cannot push good rows into the
 * dead-letter table. A refused INSERT wrote nothing as
 * long as the batch fits one insert block (`max_insert_block_size`, about a million rows: the
 * server parses a whole block before writing it); a bigger batch, or a retry after a partially
 * bisected one, can insert some rows twice: duplicates, hidden by `FINAL` like any redelivery.
 *
 * ClickHouse 18.16 compatibility (checked against the real server):
 * - No query parameters: SQL text is built only through `./sql` quoting helpers.
 * - Errors come back as `Code: N, e.displayText() = DB::Exception: ...` without the
 *   `(ERROR_NAME)` suffix newer servers add, so @clickhouse/client cannot parse them into a
 *   `ClickHouseError` and hands back a plain `Error`. We read the code from the text.
 * - Data errors often come back as HTTP 500 (e.g. code 27 CANNOT_PARSE_INPUT_ASSERTION_FAILED,
 *   117 INCORRECT_DATA), exactly like real server faults, so the HTTP status cannot tell them
 *   apart either; the error code can.
 * - Unknown settings fail the whole query (code 115), e.g. `async_insert`. @clickhouse/client
 *   1.12.1 sends none by default (only `query_id`), and we keep response compression off so it
 *   does not add `enable_http_compression`. The one setting we want on new servers
 *   (`async_insert=0`, so that "answered success" means "written") is sent only when
 *   `system.settings` lists it.
 * - Durability: 18.16 writes parts without fsync; a committed insert survives the server
 *   process dying (page cache), not a power loss of that host.
 */
import { Readable } from "node:stream";
import { inspect } from "node:util";
import { randomUUID } from "node:crypto";
import {
  createClient,
  type ClickHouseClient,
  type ClickHouseClientConfigOptions,
  type ClickHouseSettings,
  type Logger as ClientLogger,
} from "@clickhouse/client";
import pino, { type Logger } from "pino";
import type { IngestEvent } from "../../common/event";
import type { EventCountQuery, EventCounts } from "../../common/event-counts";
import type { FormattedRows, RejectedRow, RowSink } from "../sink";
import {
  DEAD_LETTER_INSERT_COLUMNS,
  DEAD_LETTER_TABLE,
  EVENT_INSERT_COLUMNS,
  EVENTS_TABLE,
  runMigrations,
} from "./migrations";
import { eventCountStatements, readEventCounts, type CountRow, type GroupRow } from "./event-counts-sql";
import { assertSafeIdentifier, qualifiedName, quoteIdentifier, quoteString } from "./sql";
import { everyRowFound, landedRowsSql, rowKeysOf, type StoredKey } from "./lost-answer";
import { errorText, isDataError, outcomeUnknown } from "./server-errors";
import { rowFromLine, splitRows } from "./tsv-reader";
import { ChunkWriter, FIELD_SEPARATOR, fieldBytesBound, NUMBER_BYTES_BOUND, ROW_END, writeField, writeInteger, writeJsonText } from "./tsv-writer";

/** One row of `events` as the writer sends it (MATERIALIZED columns are computed server-side). */
export interface EventRow {
  tenant_id: string;
  event_id: string;
  session_id: string;
  seq: number | null;
  event_name: string;
  user_id: string;
  channel: string;
  /** Epoch milliseconds. */
  timestamp: number;
  /** Epoch milliseconds. */
  received_at: number;
  /** JSON text of the event's properties. */
  properties: string;
  /** Epoch milliseconds of the insert; the ReplacingMergeTree version. */
  inserted_at: number;
}

/** The mapping from the canonical event to the `events` columns. */
export function toEventRow(event: IngestEvent, insertedAtMs: number): EventRow {
  return {
    tenant_id: event.tenant_id,
    event_id: event.event_id,
    session_id: event.session_id,
    seq: event.seq,
    event_name: event.event_name,
    user_id: event.user_id ?? "",
    channel: event.channel ?? "",
    timestamp: event.timestamp,
    received_at: event.received_at,
    properties: JSON.stringify(event.properties),
    inserted_at: insertedAtMs,
  };
}

/**
 * Turns one event into one TabSeparated line (no trailing newline), the columns in
 * `EVENT_INSERT_COLUMNS` order. The sink's seam for tests: by default the sink writes rows with
 * `writeEventRow`; a test can inject a formatter whose line ClickHouse refuses.
 */
export type RowFormatter = (event: IngestEvent, insertedAtMs: number) => string;

export interface ClickHouseSinkOptions {
  /** e.g. `http://user:password@clickhouse:8123` */
  url: string;
  /** Validated against `^[A-Za-z_][A-Za-z0-9_]*$` at construction. */
  database: string;
  logger?: Logger;
  /** Per HTTP request; a write rejects no later than about this. Default 10 s. */
  requestTimeoutMs?: number;
  /** Row formatting seam (tests inject malformed lines). Default: `writeEventRow`. */
  formatRow?: RowFormatter;
  /** Engine seam (tests: current ClickHouse in-process, see createClickHouseClient). Default: HTTP to `url`. */
  connection?: ClickHouseConnection;
  /** Clock, epoch ms (tests). Default `Date.now`. */
  now?: () => number;
}

/**
 * What @clickhouse/client sends its requests through in place of HTTP (its experimental
 * `connection` option). Only the tests use it: chDB's connection runs a current ClickHouse
 * in-process, so the same sink, queries and settings are checked against 26.x as well as 18.16.
 */
export type ClickHouseConnection = NonNullable<ClickHouseClientConfigOptions["connection"]>;

/**
 * A @clickhouse/client configured to work with 18.16 and newer servers, logging through pino
 * instead of the library's console logger.
 */
export function createClickHouseClient(
  url: string,
  requestTimeoutMs: number,
  logger: Logger,
  connection?: ClickHouseConnection,
): ClickHouseClient {
  return createClient({
    url,
    connection,
    request_timeout: requestTimeoutMs,
    // Off on purpose: response compression adds the `enable_http_compression` setting to every
    // query; keeping the request set minimal is what makes old servers happy.
    compression: { request: false, response: false },
    application: "ingest-node-storage-writer",
    // Server keep_alive_timeout defaults to 3 s (18.16 and current); reusing a socket the server
    // is about to close gives ECONNRESET, so drop idle sockets sooner than that.
    keep_alive: { enabled: true, idle_socket_ttl: 2_000 },
    log: { LoggerClass: pinoClientLogger(logger) },
  });
}

function pinoClientLogger(logger: Logger): new () => ClientLogger {
  const log = logger.child({ module: "clickhouse-client" });
  return class implements ClientLogger {
    trace(p: { message: string; args?: Record<string, unknown> }): void {
      log.trace(p.args ?? {}, p.message);
    }
    debug(p: { message: string; args?: Record<string, unknown> }): void {
      log.debug(p.args ?? {}, p.message);
    }
    info(p: { message: string; args?: Record<string, unknown> }): void {
      log.info(p.args ?? {}, p.message);
    }
    warn(p: { message: string; args?: Record<string, unknown>; err?: Error }): void {
      log.warn({ ...p.args, err: p.err }, p.message);
    }
    error(p: { message: string; args?: Record<string, unknown>; err: Error }): void {
      log.error({ ...p.args, err: p.err }, p.message);
    }
  };
}

/**
 * Writes one event's TabSeparated row and its newline into `out`, the columns in
 * `EVENT_INSERT_COLUMNS` order, without building the line as a string (see tsv-writer.ts).
 * Strings are escaped as `tsvField` does; numbers are integers (validated); a missing seq is
 * `\N` (NULL), a missing user_id or channel the empty string. Throws, writing nothing, when the
 * properties cannot be serialised.
 *
 * TabSeparated rather than JSONEachRow: the properties are already JSON text, and a JSON row would
 * escape that text a second time (every quote) and make every row ~70% larger (378 vs 220 bytes
 * for the bench's events). ClickHouse takes both formats at about the same rate.
 */
export function writeEventRow(out: ChunkWriter, event: IngestEvent, insertedAt: number): void {
  const properties = JSON.stringify(event.properties);
  const userId = event.user_id ?? "";
  const channel = event.channel ?? "";
  const textLength =
    event.tenant_id.length + event.event_id.length + event.session_id.length + event.event_name.length + userId.length + channel.length + properties.length;
  // Text, four numbers (seq or \N, two timestamps, insertedAt), ten tabs and the newline.
  out.reserve(fieldBytesBound(textLength) + 4 * NUMBER_BYTES_BOUND + 11);
  const buf = out.buf;
  let at = out.offset;
  at = writeField(buf, at, event.tenant_id);
  buf[at++] = FIELD_SEPARATOR;
  at = writeField(buf, at, event.event_id);
  buf[at++] = FIELD_SEPARATOR;
  at = writeField(buf, at, event.session_id);
  buf[at++] = FIELD_SEPARATOR;
  if (event.seq === null) {
    buf[at++] = 0x5c; // \N, NULL
    buf[at++] = 0x4e;
  } else {
    at = writeInteger(buf, at, event.seq);
  }
  buf[at++] = FIELD_SEPARATOR;
  at = writeField(buf, at, event.event_name);
  buf[at++] = FIELD_SEPARATOR;
  at = writeField(buf, at, userId);
  buf[at++] = FIELD_SEPARATOR;
  at = writeField(buf, at, channel);
  buf[at++] = FIELD_SEPARATOR;
  at = writeInteger(buf, at, event.timestamp);
  buf[at++] = FIELD_SEPARATOR;
  at = writeInteger(buf, at, event.received_at);
  buf[at++] = FIELD_SEPARATOR;
  at = writeJsonText(buf, at, properties);
  buf[at++] = FIELD_SEPARATOR;
  at = writeInteger(buf, at, insertedAt);
  buf[at++] = ROW_END;
  out.offset = at;
}

/**
 * Formats a batch straight into the bytes of one INSERT, row by row into chunks of up to 64 KiB
 * (sized down for small batches, whose rows the spool keeps). With the
 * default formatter no row exists as a string (writeEventRow); an injected `formatRow` (tests)
 * has its line encoded as it comes. Either way nothing of the batch's formatting outlives its
 * row but the bytes: a batch's thousands of line strings kept until the body was joined made
 * the scavenger copy each of them (bench/hot-path.js, "format": 4.5 -> 2.7 µs per event, and
 * far less garbage while events are in flight).
 */
export function encodeInsertBody(events: readonly IngestEvent[], insertedAt: number, formatRow?: RowFormatter): FormattedRows {
  const out = new ChunkWriter(Math.min(64 * 1024, Math.max(4 * 1024, events.length * 512)));
  const rejected: RejectedRow[] = [];
  for (let i = 0; i < events.length; i++) {
    const event = events[i]!;
    try {
      if (formatRow === undefined) {
        writeEventRow(out, event, insertedAt);
      } else {
        const line = formatRow(event, insertedAt) + "\n";
        out.reserve(fieldBytesBound(line.length));
        out.offset += out.buf.write(line, out.offset, "utf8");
      }
    } catch (err) {
      // Unserialisable properties can never be inserted: quarantine now.
      rejected.push({ tenant_id: event.tenant_id, event_id: event.event_id, raw: safeRaw(event), error: `cannot format row: ${errorText(err)}` });
    }
  }
  const bytes = out.bytes;
  return { chunks: out.finish(), bytes, rows: events.length - rejected.length, rejected };
}

export class ClickHouseSink implements RowSink {
  readonly name = "clickhouse";
  /**
   * Two inserts at a time: an insert's fixed cost is mostly the server writing a new part's files
   * (I/O, one server thread each), so a second insert overlaps it instead of queueing behind it.
   */
  readonly maxConcurrentWrites = 2;
  readonly database: string;
  /** The server's `version()`, read once by `start()`. */
  serverVersion: string | undefined;
  /** Rows ClickHouse accepted into `events`. */
  rowsInserted = 0;
  /** Rows written to `events_dead_letter` instead. */
  rowsDeadLettered = 0;
  /** Successful INSERT requests into `events` (1 per clean batch, more while bisecting). */
  insertBatches = 0;
  /** Inserts whose answer was lost but whose rows were all found in ClickHouse (lost-answer.ts). */
  lostAnswers = 0;

  private readonly client: ClickHouseClient;
  private readonly logger: Logger;
  private readonly formatRow: RowFormatter | undefined;
  private readonly now: () => number;
  private readonly insertSql: string;
  /** Count queries stop on the server a second before the client would give up on them. */
  private readonly countSettings: ClickHouseSettings;
  private settings: ClickHouseSettings = {};
  private started = false;
  private closed = false;
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly requestTimeoutMs: number;

  constructor(options: ClickHouseSinkOptions) {
    assertSafeIdentifier(options.database, "ClickHouse database");
    this.database = options.database;
    this.logger = (options.logger ?? pino({ enabled: false })).child({ sink: "clickhouse" });
    this.formatRow = options.formatRow;
    this.now = options.now ?? Date.now;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.client = createClickHouseClient(options.url, this.requestTimeoutMs, this.logger, options.connection);
    this.countSettings = { max_execution_time: Math.max(1, Math.floor(this.requestTimeoutMs / 1000) - 1) };
    // Explicit column list: a column added later with a DEFAULT gets it, and the line's fields
    // are matched to columns by position against this list, not against the table's order.
    this.insertSql =
      `INSERT INTO ${qualifiedName(this.database, EVENTS_TABLE)} ` +
      `(${EVENT_INSERT_COLUMNS.map(quoteIdentifier).join(", ")}) FORMAT TabSeparated`;
  }

  async start(): Promise<void> {
    await runMigrations(this.client, this.database, this.logger);
    const rs = await this.client.query({ query: "SELECT version() AS version", format: "JSONEachRow" });
    this.serverVersion = (await rs.json<{ version: string }>())[0]?.version;
    this.settings = await this.supportedInsertSettings();
    this.started = true;
    this.logger.info({ serverVersion: this.serverVersion, insertSettings: this.insertSettings }, "ClickHouse sink started");
  }

  /** The settings every insert carries: those of `supportedInsertSettings` this server knows, read by `start()`. */
  get insertSettings(): Readonly<ClickHouseSettings> {
    return this.settings;
  }

  async write(events: readonly IngestEvent[]): Promise<void> {
    if (!this.started) throw new Error("ClickHouseSink.write() before start()");
    if (this.closed) throw new Error("ClickHouseSink.write() after close()");
    if (events.length === 0) return;
    const p = this.writeBatch(events);
    this.inFlight.add(p);
    try {
      await p;
    } finally {
      this.inFlight.delete(p);
    }
  }

  async ready(): Promise<{ ok: boolean; reason?: string }> {
    if (!this.started) return { ok: false, reason: "not started" };
    if (this.closed) return { ok: false, reason: "closed" };
    const res = await this.client.ping();
    return res.success ? { ok: true } : { ok: false, reason: `ClickHouse ping failed: ${errorText(res.error)}` };
  }

  /** Counts of stored events (event-counts-sql.ts): one query, or two in parallel with `group_by`. */
  async countEvents(query: EventCountQuery): Promise<EventCounts> {
    if (!this.started) throw new Error("ClickHouseSink.countEvents() before start()");
    const statements = eventCountStatements(this.database, query);
    const [total, groups] = await Promise.all([
      this.selectRows<CountRow>(statements.total),
      statements.groups === null ? null : this.selectRows<GroupRow>(statements.groups),
    ]);
    return readEventCounts(query, total[0], groups);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.inFlight]);
    await this.client.close();
  }

  private async writeBatch(events: readonly IngestEvent[]): Promise<void> {
    const body = this.formatRows(events, this.now());
    if (body.rows > 0) await this.insertRows(body.chunks, body.rows);
    await this.quarantine(body.rejected);
  }

  /** A batch as this sink's rows (`insertRows` takes them, now or after a stay in the spool). */
  formatRows(events: readonly IngestEvent[], insertedAt: number): FormattedRows {
    return encodeInsertBody(events, insertedAt, this.formatRow);
  }

  /**
   * Inserts rows `formatRows` made; rows the server refuses as data are isolated and quarantined
   * in the dead-letter table, the rest inserted. Rejects on anything else (nothing is dead-lettered then).
   */
  async insertRows(chunks: readonly Buffer[], rows: number): Promise<void> {
    if (!this.started) throw new Error("ClickHouseSink.insertRows() before start()");
    const refused: RejectedRow[] = [];
    await this.insertOrIsolate(chunks, rows, refused);
    await this.quarantine(refused);
  }

  /** Puts rows that cannot be inserted in the dead-letter table (resolves once they are there). */
  async quarantine(rows: readonly RejectedRow[]): Promise<void> {
    if (rows.length === 0) return;
    if (!this.started) throw new Error("ClickHouseSink.quarantine() before start()");
    await this.deadLetter(rows);
    this.logger.warn({ deadLettered: rows.length, firstError: rows[0]?.error }, "ClickHouse refused rows; quarantined in dead-letter table");
  }

  /**
   * Inserts the rows of `chunks`; on a data error splits them in halves until the refused rows
   * are alone. Costs at most 2n-1 inserts, about 2·log2(n) per bad row in practice.
   */
  private async insertOrIsolate(chunks: readonly Buffer[], rows: number, refused: RejectedRow[]): Promise<void> {
    try {
      await this.insertChunks(chunks);
      this.rowsInserted += rows;
      this.insertBatches += 1;
      return;
    } catch (err) {
      if (!isDataError(err)) throw err;
      const lines = splitRows(chunks);
      if (lines.length <= 1) {
        // The dead-letter copy is the row as JSON (readable, and replayable by any JSON tool),
        // not the TabSeparated line the server refused.
        const row = lines.length === 1 ? rowFromLine(lines[0]!) : {};
        refused.push({ tenant_id: String(row.tenant_id ?? ""), event_id: String(row.event_id ?? ""), raw: JSON.stringify(row), error: errorText(err) });
        return;
      }
      this.logger.debug({ rows: lines.length, err: errorText(err) }, "data error; splitting batch");
      const mid = Math.ceil(lines.length / 2);
      for (const half of [lines.slice(0, mid), lines.slice(mid)]) await this.insertOrIsolate(half, half.length, refused);
    }
  }

  private async insertChunks(chunks: readonly Buffer[]): Promise<void> {
    // Our own query id: the one a lost answer is looked for by (lost-answer.ts).
    const queryId = randomUUID();
    try {
      // exec + raw body: @clickhouse/client's insert() only takes objects for JSON formats, and
      // the formatted lines are what we want to send.
      const res = await this.client.exec({
        query: this.insertSql,
        query_id: queryId,
        values: Readable.from(chunks),
        clickhouse_settings: this.settings,
      });
      // The response body is empty for an INSERT; read it to the end so the socket is reusable.
      for await (const _chunk of res.stream) {
        // drain
      }
    } catch (error) {
      if (!outcomeUnknown(error) || !(await this.landedAnyway(queryId, chunks))) throw error;
      this.lostAnswers += 1;
      this.logger.warn({ err: errorText(error), queryId }, "an insert's answer was lost, but every one of its rows is in ClickHouse: taken as inserted");
    }
  }

  /**
   * Whether an insert whose answer was lost was committed all the same (lost-answer.ts): once
   * the server no longer runs it, its rows are looked up. Any doubt is a no: the server still
   * busy with it, or a lookup that fails. The whole look takes at most one request timeout (a
   * hung server would otherwise hold the refusal back by one more per query).
   */
  private async landedAnyway(queryId: string, chunks: readonly Buffer[]): Promise<boolean> {
    const deadline = AbortSignal.timeout(this.requestTimeoutMs);
    try {
      while (await this.stillRunning(queryId, deadline)) {
        if (deadline.aborted) return false;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const batch = rowKeysOf(chunks);
      return everyRowFound(batch, await this.selectRows<StoredKey>(landedRowsSql(this.database, batch), deadline));
    } catch (error) {
      this.logger.warn({ err: errorText(error), queryId }, "could not look up whether an insert whose answer was lost was committed; taken as failed");
      return false;
    }
  }

  private async stillRunning(queryId: string, deadline: AbortSignal): Promise<boolean> {
    const sql = `SELECT count() AS running FROM system.processes WHERE query_id = ${quoteString(queryId)}`;
    const rows = await this.selectRows<{ running: string | number }>(sql, deadline);
    return Number(rows[0]?.running) !== 0;
  }

  private async selectRows<T>(sql: string, abortSignal?: AbortSignal): Promise<T[]> {
    const rs = await this.client.query({ query: sql, format: "JSONEachRow", clickhouse_settings: this.countSettings, abort_signal: abortSignal });
    return rs.json<T>();
  }

  private async deadLetter(rows: readonly RejectedRow[]): Promise<void> {
    const failedAt = Math.floor(this.now() / 1000);
    await this.client.insert({
      table: qualifiedName(this.database, DEAD_LETTER_TABLE),
      columns: [...DEAD_LETTER_INSERT_COLUMNS],
      values: rows.map((r) => ({
        tenant_id: r.tenant_id,
        event_id: r.event_id,
        raw: r.raw,
        error: r.error,
        failed_at: failedAt,
      })),
      format: "JSONEachRow",
      clickhouse_settings: this.settings,
    });
    this.rowsDeadLettered += rows.length;
  }

  /** Settings newer servers need for our semantics, limited to those this server knows. */
  private async supportedInsertSettings(): Promise<ClickHouseSettings> {
    const wanted: ClickHouseSettings = {
      // A user profile may turn async inserts on; with them, "answered success" would no longer
      // mean "written". 18.16 has no such setting and would refuse the query if we sent it.
      async_insert: 0,
      // Newer servers may take a first TabSeparated row that looks like column names for a
      // header and skip it. Ours cannot look like one (seq is a number or \N), but a row is
      // data, always. 18.16 has neither the setting nor the detection.
      input_format_tsv_detect_header: 0,
    };
    const names = Object.keys(wanted);
    const rs = await this.client.query({
      query: `SELECT name FROM system.settings WHERE name IN (${names.map(quoteString).join(", ")})`,
      format: "JSONEachRow",
    });
    const known = new Set((await rs.json<{ name: string }>()).map((r) => r.name));
    const out: ClickHouseSettings = {};
    for (const [k, v] of Object.entries(wanted)) {
      if (known.has(k)) (out as Record<string, unknown>)[k] = v;
    }
    return out;
  }
}

/** Best-effort text of an event JSON cannot serialise (inspect copes with BigInt and cycles). */
function safeRaw(event: IngestEvent): string {
  return inspect(event, { depth: 6, breakLength: Infinity, maxStringLength: 65_536 });
}

/**
 * An INSERT whose answer never came back (the connection reset or timed out after the request
 * left) may have been committed by the server all the same. Refusing its batch then breaks the
 * promise that a refused event is never stored: the client resends, and events the server gave
 * ids to are stored twice. So before such an insert is called failed, the sink waits until the
 * server no longer runs it and looks its rows up: every one found (by tenant, event id and the
 * `inserted_at` its rows carry) means it was inserted; anything less, or any doubt, keeps the
 * failure. One INSERT of at most `max_insert_block_size` rows (~1M) is one block, and the sink's
 * batches are far smaller, so an insert the server finished has all its rows or none.
 *
 * The pure part: the lookup's SQL and the comparison (which errors leave the outcome open:
 * `outcomeUnknown` in server-errors.ts).
 */
import { EVENTS_TABLE } from "./migrations";
import { qualifiedName, quoteString } from "./sql";
import { rowFromLine, splitRows } from "./tsv-reader";

/** A row as the lookup compares it: the sorting key plus the insert's own stamp. */
export interface RowKey {
  tenant_id: string;
  event_id: string;
  /** The row's `inserted_at`, as decimal text (UInt64 comes back from JSONEachRow as a string). */
  inserted_at: string;
  /** The event's time, epoch ms: only narrows the partitions the lookup reads. */
  timestamp: number;
}

/** The keys of the rows an insert carried (its TabSeparated chunks, read back). */
export function rowKeysOf(chunks: readonly Buffer[]): RowKey[] {
  return splitRows(chunks).map((line) => {
    const row = rowFromLine(line);
    return { tenant_id: String(row.tenant_id), event_id: String(row.event_id), inserted_at: String(row.inserted_at), timestamp: Number(row.timestamp) };
  });
}

/** A row as the lookup returns it. */
export type StoredKey = Pick<RowKey, "tenant_id" | "event_id" | "inserted_at">;

const DAY_MS = 86_400_000;

function utcDate(ms: number): string {
  return new Date(Math.floor(ms / DAY_MS) * DAY_MS).toISOString().slice(0, 10);
}

/**
 * The rows of `events` that could be the batch's: its tenants, its `inserted_at` values, the
 * days its events fall on (partition pruning; `event_date` is materialised from `timestamp`).
 * Every value is quoted by `quoteString`; the batch's event ids are compared in the node, so
 * the query stays small whatever the batch's size.
 */
export function landedRowsSql(database: string, rows: readonly RowKey[]): string {
  const tenants = [...new Set(rows.map((r) => r.tenant_id))];
  const stamps = [...new Set(rows.map((r) => r.inserted_at))];
  let first = Infinity;
  let last = -Infinity;
  for (const r of rows) {
    if (r.timestamp < first) first = r.timestamp;
    if (r.timestamp > last) last = r.timestamp;
  }
  return (
    `SELECT tenant_id, event_id, toString(inserted_at) AS inserted_at FROM ${qualifiedName(database, EVENTS_TABLE)} ` +
    `WHERE tenant_id IN (${tenants.map(quoteString).join(", ")}) ` +
    `AND toString(inserted_at) IN (${stamps.map(quoteString).join(", ")}) ` +
    `AND event_date >= toDate(${quoteString(utcDate(first))}) AND event_date <= toDate(${quoteString(utcDate(last))})`
  );
}

const keyOf = (r: StoredKey): string => `${r.tenant_id}\u0000${r.event_id}\u0000${r.inserted_at}`;

/** Whether every row of the batch is among those the lookup found. */
export function everyRowFound(batch: readonly RowKey[], found: readonly StoredKey[]): boolean {
  if (batch.length === 0) return false;
  const present = new Set(found.map(keyOf));
  return batch.every((r) => present.has(keyOf(r)));
}

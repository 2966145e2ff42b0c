/**
 * An `events` row as one TabSeparated string, written the plain way: `tsvField` per string,
 * `String` per number, the columns in `EVENT_INSERT_COLUMNS` order. The sink writes its rows as
 * bytes (`writeEventRow`); this independent spelling is what tests check those bytes against,
 * and the base of the malformed lines tests inject through the sink's `formatRow` seam.
 */
import type { RowFormatter } from "../../actors/storage-writer/clickhouse/clickhouse-sink";
import { tsvField } from "../../actors/storage-writer/clickhouse/sql";

export const referenceTsvRow: RowFormatter = (event, insertedAtMs) =>
  [
    tsvField(event.tenant_id),
    tsvField(event.event_id),
    tsvField(event.session_id),
    event.seq === null ? "\\N" : String(event.seq),
    tsvField(event.event_name),
    event.user_id === null ? "" : tsvField(event.user_id),
    event.channel === null ? "" : tsvField(event.channel),
    String(event.timestamp),
    String(event.received_at),
    tsvField(JSON.stringify(event.properties)),
    String(insertedAtMs),
  ].join("\t");

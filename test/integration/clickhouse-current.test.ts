/**
 * The ClickHouse sink's engine-independent suite (test/support/clickhouse-sink-suite.ts) against
 * a current ClickHouse: chDB's engine (26.x) in this process, reached through the product's own
 * client with the `connection` option, data in a temp dir. The same suite runs against Debian's
 * 18.16 server in clickhouse-sink.test.ts; together they hold the schema, the insert format and
 * settings, the queries and the retention's statements to both ends of the supported range.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openChdbConnection } from "../support/chdb";
import { clickHouseSinkSuite } from "../support/clickhouse-sink-suite";

const suite = clickHouseSinkSuite(async () => {
  const dir = mkdtempSync(join(tmpdir(), "ingest-chdb-"));
  return {
    // The URL is never dialled: every request goes through the in-process connection.
    engine: () => ({ url: "http://chdb.invalid:8123", connection: openChdbConnection(dir) }),
    close: async () => rmSync(dir, { recursive: true, force: true }),
  };
});

describe("the in-process engine", () => {
  it("is a current ClickHouse, not 18.16", () => {
    const major = Number(suite.sink.serverVersion?.split(".")[0]);
    expect(major).toBeGreaterThanOrEqual(24);
  });

  it("knows the insert settings 18.16 lacks, so every insert carries them", () => {
    expect(suite.sink.insertSettings).toEqual({ async_insert: 0, input_format_tsv_detect_header: 0 });
  });
});

/**
 * Runs once before any test file: makes sure nats-server and clickhouse-server are installed
 * (installing the Debian packages when root on Debian, else failing with the exact command), and
 * chDB for the current-ClickHouse tests (from npm into test/chdb), so parallel test workers never
 * race each other into apt-get or npm.
 */
import { ensureChdb } from "./chdb";
import { ensureBinary as ensureClickHouse } from "./clickhouse-server";
import { findNatsServer } from "./nats-server";

export default function setup(): void {
  findNatsServer();
  ensureClickHouse();
  ensureChdb();
}

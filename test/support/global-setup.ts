/**
 * Runs once before any test file: makes sure nats-server and clickhouse-server are installed
 * (installing the Debian packages when root on Debian, else failing with the exact command), so
 * parallel test workers never race each other into apt-get.
 */
import { ensureBinary as ensureClickHouse } from "./clickhouse-server";
import { findNatsServer } from "./nats-server";

export default function setup(): void {
  findNatsServer();
  ensureClickHouse();
}

/**
 * Current ClickHouse for the compatibility tests, in-process: chDB (the ClickHouse engine as a
 * library, 26.x) behind @clickhouse/client's experimental `connection` option, so the product's
 * own client, SQL and settings run against it unchanged. Debian only packages 18.16 and no
 * current server can be downloaded here; chDB comes from npm.
 *
 * What chDB does not cover: the HTTP layer (the client's requests, timeouts, keep-alive), a
 * server process to stop or crash. Those stay with the 18.16 server tests.
 *
 * Kept out of the main install (test/chdb/package.json, its own lock): the engine is ~180 MB to
 * download and ~550 MB on disk. The global setup installs it once when it is missing.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { ClickHouseError } from "@clickhouse/client";
import type { ClickHouseConnection } from "../../actors/storage-writer/clickhouse/clickhouse-sink";
import { runInstall } from "./apt";

const CHDB_DIR = join(__dirname, "..", "chdb");
export const CHDB_INSTALL_COMMAND = `npm install --no-audit --no-fund --prefix ${CHDB_DIR}`;

/** Installs test/chdb's locked packages when they are missing; throws with the command's output when that fails. */
export function ensureChdb(): void {
  if (existsSync(join(CHDB_DIR, "node_modules", "chdb", "package.json"))) return;
  const result = runInstall("npm", ["install", "--no-audit", "--no-fund"], { cwd: CHDB_DIR });
  if (!result.ok) {
    throw new Error(`installing chDB for the current-ClickHouse tests failed (${CHDB_INSTALL_COMMAND}):\n${result.output}`);
  }
}

interface ChdbModule {
  createChdbConnection(options: { path: string }): ClickHouseConnection;
}

/**
 * A connection to an in-process ClickHouse keeping its data in `dir`. One per process: chDB
 * binds a single data directory per process.
 */
export function openChdbConnection(dir: string): ClickHouseConnection {
  const load = createRequire(join(CHDB_DIR, "package.json"));
  const { createChdbConnection } = load("chdb/connection") as ChdbModule;
  return withClientErrors(createChdbConnection({ path: dir }));
}

/**
 * chDB throws the error class of its own copy of the client's shared code, which is not the
 * `ClickHouseError` of the client the product uses (1.23 bundles that code into each package).
 * The sink tells a data error from an outage by that class, as it does with a server's answers,
 * so the connection's rejections are rethrown as the product client's class, same code and text.
 */
function withClientErrors(connection: ClickHouseConnection): ClickHouseConnection {
  const rethrow = (err: unknown): never => {
    // Its class is named ClickHouseError but leaves `name` as "Error".
    if (err instanceof Error && err.constructor.name === "ClickHouseError" && !(err instanceof ClickHouseError)) {
      const { code, type } = err as Error & { code: string; type?: string };
      throw new ClickHouseError({ message: err.message, code, type });
    }
    throw err;
  };
  return new Proxy(connection, {
    get(target, property) {
      // The connection keeps its state in private fields: call its methods on itself, not on the proxy.
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        const out: unknown = value.apply(target, args);
        return out instanceof Promise ? out.catch(rethrow) : out;
      };
    },
  });
}

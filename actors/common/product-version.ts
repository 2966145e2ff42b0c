/**
 * The product's version (package.json), for the status page and the start-up log: nodes of one
 * cluster must run the same version (README, "Cluster mode"), and the page warns when they do not.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";

const PACKAGE_NAME = "ingest-node";

/** Walks up from this file to our package.json: the source tree and dist/ sit at different depths. */
function readVersion(): string {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    const file = join(dir, "package.json");
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, "utf8")) as { name?: string; version?: string };
      if (pkg.name === PACKAGE_NAME && typeof pkg.version === "string") return pkg.version;
    }
    if (dirname(dir) === dir) return "unknown";
  }
}

export const PRODUCT_VERSION = readVersion();

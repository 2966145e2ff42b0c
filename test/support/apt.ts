/**
 * Installs Debian packages for the test servers on a fresh machine (CI runs as root on Debian
 * with nothing installed). The package lists of a new machine may be empty, so `apt-get update`
 * runs first, once per process.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

let listsUpdated = false;

export function canAptInstall(): boolean {
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  return isRoot && existsSync("/etc/debian_version");
}

/** Runs `apt-get install -y <packages>` (after one `apt-get update`); returns the exit status and output tail. */
export function aptInstall(packages: readonly string[]): { ok: boolean; output: string } {
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  if (!listsUpdated) {
    listsUpdated = true;
    spawnSync("apt-get", ["update", "-qq"], { stdio: "ignore", env, timeout: 300_000 });
  }
  const result = spawnSync("apt-get", ["install", "-y", ...packages], {
    stdio: ["ignore", "pipe", "pipe"],
    env,
    encoding: "utf8",
    timeout: 600_000,
  });
  return { ok: result.status === 0, output: `${result.stdout ?? ""}${result.stderr ?? ""}`.slice(-2000) };
}

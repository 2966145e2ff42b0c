/**
 * Installs Debian packages for the test servers on a fresh machine (CI runs as root on Debian
 * with nothing installed). The package lists of a new machine may be empty, so `apt-get update`
 * runs first, once per process. `runInstall` also serves the npm install of chDB (chdb.ts).
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

let listsUpdated = false;

export function canAptInstall(): boolean {
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  return isRoot && existsSync("/etc/debian_version");
}

/** Runs `apt-get install -y <packages>` (after one `apt-get update`); returns the exit status and output tail. */
export function aptInstall(packages: readonly string[]): InstallResult {
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  if (!listsUpdated) {
    listsUpdated = true;
    spawnSync("apt-get", ["update", "-qq"], { stdio: "ignore", env, timeout: 300_000 });
  }
  return runInstall("apt-get", ["install", "-y", ...packages], { env });
}

export interface InstallResult {
  ok: boolean;
  /** The last 2,000 characters of stdout and stderr, for the error that names the failure. */
  output: string;
}

/** Runs an install command to completion (10 minutes at most), its output kept rather than shown. */
export function runInstall(command: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): InstallResult {
  const result = spawnSync(command, args, {
    ...options,
    stdio: ["ignore", "pipe", "pipe"],
    encoding: "utf8",
    timeout: 600_000,
  });
  return { ok: result.status === 0, output: `${result.stdout ?? ""}${result.stderr ?? ""}`.slice(-2000) };
}

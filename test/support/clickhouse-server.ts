/**
 * A throw-away ClickHouse server for integration tests.
 *
 * Written against Debian's clickhouse-server 18.16 (the oldest server we support) and kept to
 * config that newer servers accept too (`<yandex>` root, no config.d, no access_management).
 * Every instance lives in its own temp dir (data, logs, preprocessed config), listens on
 * 127.0.0.1 only, on ports found by binding port 0, so parallel test files never collide.
 *
 * What 18.16 really needs, found by starting it by hand with `--config-file`:
 * - `path`, `tmp_path`, `user_files_path`, `format_schema_path` must be writable; otherwise it
 *   falls back to /var/lib/clickhouse, which a test must not touch.
 * - `users_config` is resolved relative to the config file; we give an absolute path anyway.
 * - Without `<logger>` files it logs to the console only when on a tty; we want files so a
 *   failed start can show the error log.
 * - `interserver_http_port` is always opened, so it also needs a free port.
 * - Start-up is fast (well under a second on an empty data dir); `GET /ping` answers `Ok.`
 *   only once the HTTP handler is up, which is after metadata has loaded.
 * - SIGTERM shuts down cleanly in well under a second; it runs fine as root.
 */
import { aptInstall, canAptInstall } from "./apt";
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync, rmSync } from "node:fs";
import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

export interface ClickHouseTestServer {
  /** `http://127.0.0.1:<httpPort>` */
  url: string;
  httpPort: number;
  tcpPort: number;
  /** The instance's temp dir (config, logs and data live under it). */
  dataDir: string;
  /** SIGTERM and wait for exit. Data is kept so `start()` can bring the same server back. */
  stop(): Promise<void>;
  /** SIGKILL, no waiting: a crash. `start()` afterwards recovers from the same data. */
  kill9(): void;
  /** (Re)start on the same ports and data; resolves once `/ping` answers. */
  start(): Promise<void>;
  /** Final cleanup: stop if running and remove the temp dir. */
  destroy(): Promise<void>;
}

export const CLICKHOUSE_INSTALL_COMMAND = "apt-get install -y clickhouse-server clickhouse-client";

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;

/** Servers still alive when the process exits get SIGKILL and their dirs removed (best effort). */
const live = new Set<{ child: () => ChildProcess | undefined; dir: string }>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const entry of live) {
      const child = entry.child();
      if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      try {
        rmSync(entry.dir, { recursive: true, force: true });
      } catch {
        // Exiting anyway; a leftover temp dir is not worth a crash here.
      }
    }
  });
}

export async function startClickHouse(): Promise<ClickHouseTestServer> {
  const binary = ensureBinary();
  // Ports from port 0 are free when we look, not necessarily when the server binds them;
  // another process can take one in between. Retry with fresh ports in that case only.
  for (let attempt = 1; ; attempt++) {
    try {
      return await launch(binary);
    } catch (err) {
      if (attempt >= 3 || !(err instanceof Error) || !/Address already in use/i.test(err.message)) throw err;
    }
  }
}

async function launch(binary: Binary): Promise<ClickHouseTestServer> {
  const dir = await mkdtemp(join(tmpdir(), "clickhouse-test-"));
  const [httpPort, tcpPort, interserverPort] = await freePorts(3);
  for (const sub of ["data", "tmp", "user_files", "format_schemas", "log"]) {
    await mkdir(join(dir, sub), { recursive: true });
  }
  const configPath = join(dir, "config.xml");
  const usersPath = join(dir, "users.xml");
  await writeFile(configPath, configXml(dir, usersPath, httpPort, tcpPort, interserverPort));
  await writeFile(usersPath, USERS_XML);

  const url = `http://127.0.0.1:${httpPort}`;
  let child: ChildProcess | undefined;
  let killing: Promise<void> | undefined;
  const entry = { child: () => child, dir };
  live.add(entry);
  installExitHook();

  const isRunning = (): boolean =>
    child !== undefined && child.exitCode === null && child.signalCode === null;

  const waitForExit = (proc: ChildProcess, timeoutMs: number): Promise<boolean> =>
    new Promise((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return resolve(true);
      const timer = setTimeout(() => resolve(false), timeoutMs);
      proc.once("exit", () => {
        clearTimeout(timer);
        resolve(true);
      });
    });

  const start = async (): Promise<void> => {
    // After kill9() the old process may not have been reaped yet; it still holds the ports.
    if (killing) await killing;
    if (isRunning()) throw new Error("ClickHouse test server is already running");
    // The server's own stdout/stderr only says where it logs; keep it for start-up failures.
    const consoleLog = createWriteStream(join(dir, "log", "console.log"), { flags: "a" });
    const proc = spawn(binary.command, [...binary.args, `--config-file=${configPath}`], {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
    });
    proc.stdout?.pipe(consoleLog);
    proc.stderr?.pipe(consoleLog);
    child = proc;
    let exited = false;
    proc.once("exit", () => {
      exited = true;
    });
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (exited) break;
      if (await pingOk(url)) return;
      await sleep(50);
    }
    if (!exited) {
      proc.kill("SIGKILL");
      await waitForExit(proc, STOP_TIMEOUT_MS);
    }
    throw new Error(
      `clickhouse-server did not become ready on ${url} (${exited ? `exited with ${proc.exitCode ?? proc.signalCode}` : "timed out"}):\n` +
        (await logTail(dir)),
    );
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    if (!proc || !isRunning()) return;
    proc.kill("SIGTERM");
    if (!(await waitForExit(proc, STOP_TIMEOUT_MS))) {
      proc.kill("SIGKILL");
      await waitForExit(proc, STOP_TIMEOUT_MS);
    }
  };

  const kill9 = (): void => {
    const proc = child;
    if (!proc || !isRunning()) return;
    proc.kill("SIGKILL");
    killing = waitForExit(proc, STOP_TIMEOUT_MS).then(() => {
      killing = undefined;
    });
  };

  const destroy = async (): Promise<void> => {
    await stop();
    // After kill9() the process may still be on its way out; do not delete its files under it.
    if (killing) await killing;
    rmSync(dir, { recursive: true, force: true });
    live.delete(entry);
  };

  try {
    await start();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    live.delete(entry);
    throw err;
  }
  return { url, httpPort, tcpPort, dataDir: dir, stop, kill9, start, destroy };
}

interface Binary {
  command: string;
  args: string[];
}

let installAttempted = false;

/** Finds the server binary; installs it once via apt when we are root on Debian. */
export function ensureBinary(): Binary {
  const found = findBinary();
  if (found) return found;
  if (installAttempted) {
    throw new Error(`clickhouse-server is still missing after: ${CLICKHOUSE_INSTALL_COMMAND}`);
  }
  if (!canAptInstall()) {
    throw new Error(`clickhouse-server is not installed; install it with: ${CLICKHOUSE_INSTALL_COMMAND}`);
  }
  installAttempted = true;
  const result = aptInstall(["clickhouse-server", "clickhouse-client"]);
  const after = findBinary();
  if (!result.ok || !after) throw new Error(`${CLICKHOUSE_INSTALL_COMMAND} failed: ${result.output}`);
  return after;
}

function findBinary(): Binary | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/usr/bin", "/usr/local/bin"];
  for (const d of dirs) {
    if (d && existsSync(join(d, "clickhouse-server"))) return { command: join(d, "clickhouse-server"), args: [] };
  }
  // Newer packages ship one multi-call binary; `clickhouse server` is the same server.
  for (const d of dirs) {
    if (d && existsSync(join(d, "clickhouse"))) return { command: join(d, "clickhouse"), args: ["server"] };
  }
  return undefined;
}

/** Binds port 0 `count` times at once (so the ports are distinct), then releases them. */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () =>
      new Promise<Server>((resolve, reject) => {
        const srv = createServer();
        srv.once("error", reject);
        srv.listen(0, "127.0.0.1", () => resolve(srv));
      }),
    ),
  );
  const ports = servers.map((s) => {
    const addr = s.address();
    if (addr === null || typeof addr === "string") throw new Error("unexpected server address");
    return addr.port;
  });
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}

async function pingOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(1_000) });
    return res.ok && (await res.text()).trim() === "Ok.";
  } catch {
    return false;
  }
}

async function logTail(dir: string): Promise<string> {
  const parts: string[] = [];
  for (const name of ["console.log", "server.err.log"]) {
    try {
      parts.push(`--- ${name}\n${(await readFile(join(dir, "log", name), "utf8")).slice(-4000)}`);
    } catch {
      // Missing log files are expected when the server died before opening them.
    }
  }
  return parts.join("\n");
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function configXml(dir: string, usersPath: string, http: number, tcp: number, interserver: number): string {
  // Small caches: tests hold a few MB. Paths end with '/' because 18.16 concatenates them.
  return `<?xml version="1.0"?>
<yandex>
  <logger>
    <level>information</level>
    <log>${join(dir, "log", "server.log")}</log>
    <errorlog>${join(dir, "log", "server.err.log")}</errorlog>
    <size>10M</size>
    <count>1</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>${http}</http_port>
  <tcp_port>${tcp}</tcp_port>
  <interserver_http_port>${interserver}</interserver_http_port>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <max_connections>256</max_connections>
  <keep_alive_timeout>3</keep_alive_timeout>
  <max_concurrent_queries>64</max_concurrent_queries>
  <uncompressed_cache_size>16777216</uncompressed_cache_size>
  <mark_cache_size>16777216</mark_cache_size>
  <path>${join(dir, "data")}/</path>
  <tmp_path>${join(dir, "tmp")}/</tmp_path>
  <user_files_path>${join(dir, "user_files")}/</user_files_path>
  <format_schema_path>${join(dir, "format_schemas")}/</format_schema_path>
  <users_config>${usersPath}</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mlock_executable>false</mlock_executable>
</yandex>
`;
}

const USERS_XML = `<?xml version="1.0"?>
<yandex>
  <profiles>
    <default></default>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks>
        <ip>127.0.0.1</ip>
        <ip>::1</ip>
      </networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas>
    <default>
      <interval>
        <duration>3600</duration>
        <queries>0</queries>
        <errors>0</errors>
        <result_rows>0</result_rows>
        <read_rows>0</read_rows>
        <execution_time>0</execution_time>
      </interval>
    </default>
  </quotas>
</yandex>
`;

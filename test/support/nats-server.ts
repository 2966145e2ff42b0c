/**
 * Test harness: a real `nats-server` child process on a free loopback port, with JetStream
 * storing into a private temp dir. Tests get real protocol behaviour (PubAck dedup, ack_wait
 * redelivery, pull-consumer sharing) that an in-memory fake would only imitate.
 */
import { aptInstall, canAptInstall } from "./apt";
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

export interface NatsServerHandle {
  /** `nats://127.0.0.1:<port>`, stable across `restart()`. */
  url: string;
  port: number;
  /** JetStream store dir (`-sd`); kept across `restart()`/`kill9()`, removed by `stop()`. */
  storeDir: string;
  /** Graceful shutdown (SIGTERM, SIGKILL after 5 s), then removes `storeDir`. Idempotent. */
  stop(): Promise<void>;
  /** Crash the server now (SIGKILL), keeping `storeDir`, e.g. to test recovery. */
  kill9(): void;
  /** Stops the server if it runs and starts it again on the same port and store dir. */
  restart(): Promise<void>;
}

export interface StartNatsServerOptions {
  /** Enable JetStream (`-js -sd <storeDir>`). Default true. */
  jetstream?: boolean;
}

export const NATS_INSTALL_COMMAND = "apt-get install -y nats-server";
const KNOWN_LOCATIONS = ["/usr/sbin/nats-server", "/usr/local/bin/nats-server", "/usr/bin/nats-server"];
const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5_000;

let installAttempted = false;

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function lookupBinary(): string | undefined {
  for (const dir of (process.env["PATH"] ?? "").split(delimiter)) {
    if (dir !== "" && isExecutable(join(dir, "nats-server"))) return join(dir, "nats-server");
  }
  return KNOWN_LOCATIONS.find(isExecutable);
}

/**
 * PATH, then the usual install locations. If missing and we are root on Debian, install the
 * distro package once per process (CI images); anyone else gets the exact command to run.
 */
export function findNatsServer(): string {
  const found = lookupBinary();
  if (found !== undefined) return found;
  if (canAptInstall() && !installAttempted) {
    installAttempted = true;
    aptInstall(["nats-server"]);
    const installed = lookupBinary();
    if (installed !== undefined) return installed;
  }
  throw new Error(`nats-server not found on PATH or in /usr/sbin; install it with: ${NATS_INSTALL_COMMAND}`);
}

/** Asks the OS for a free port: bind port 0 on loopback, read it, close. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/** Resolves once the server greets a TCP client with its INFO line (it is serving clients). */
function probe(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: "127.0.0.1", port });
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1_000, () => done(false));
    sock.once("error", () => done(false));
    sock.once("data", (chunk: Buffer) => done(chunk.toString("latin1").startsWith("INFO ")));
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

const running = new Set<ChildProcess>();
// Last line of defence if a test file forgets afterAll or the worker dies mid-test: never
// leave a nats-server behind. `exit` handlers must be synchronous, SIGKILL is.
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

export async function startNatsServer(opts: StartNatsServerOptions = {}): Promise<NatsServerHandle> {
  const jetstream = opts.jetstream ?? true;
  const binary = findNatsServer();
  const storeDir = await mkdtemp(join(tmpdir(), "nats-test-"));
  let port = 0;
  let child: ChildProcess | undefined;
  let stopped = false;

  const launch = async (): Promise<void> => {
    const args = ["-a", "127.0.0.1", "-p", String(port)];
    if (jetstream) args.push("-js", "-sd", storeDir);
    const proc = spawn(binary, args, { stdio: ["ignore", "ignore", "pipe"] });
    running.add(proc);
    proc.once("exit", () => running.delete(proc));
    let stderr = "";
    proc.stderr?.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4_000); // nats-server logs to stderr
    });
    let spawnError: Error | undefined;
    proc.once("error", (err) => {
      spawnError = err;
    });
    child = proc;
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (spawnError !== undefined) throw spawnError;
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`nats-server exited (${proc.exitCode ?? proc.signalCode}) during start:\n${stderr}`);
      }
      if (await probe(port)) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    proc.kill("SIGKILL");
    throw new Error(`nats-server did not accept connections on ${port} within ${READY_TIMEOUT_MS} ms:\n${stderr}`);
  };

  const halt = async (): Promise<void> => {
    const proc = child;
    if (proc === undefined) return;
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), STOP_GRACE_MS);
      await exited(proc);
      clearTimeout(timer);
    }
    child = undefined;
  };

  // The free port can be taken by someone else between our probe and the server's bind:
  // retry on a new port instead of failing the test run.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (err) {
      await halt();
      if (attempt >= 3) {
        await rm(storeDir, { recursive: true, force: true });
        throw err;
      }
    }
  }

  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    async stop() {
      if (stopped) return;
      stopped = true;
      await halt();
      await rm(storeDir, { recursive: true, force: true });
    },
    kill9() {
      child?.kill("SIGKILL");
    },
    async restart() {
      if (stopped) throw new Error("nats-server handle already stopped");
      await halt(); // also reaps a kill9()'d process before its port is reused
      await launch();
    },
  };
}

/**
 * Starts the real node (dist/nodes/node.js, built by `npm test`) as a child process, the way an
 * operator would, and waits until /health answers.
 */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { freePort } from "./ports";

export const NODE_ENTRY = path.resolve(__dirname, "../../dist/nodes/node.js");

export interface NodeProcess {
  url: string;
  port: number;
  child: ChildProcess;
  /** Everything the process printed (pino JSON lines), for assertions and failure reports. */
  output(): string;
  /** Sends a signal and resolves with the exit code (or null + signal). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
  kill9(): Promise<void>;
}

export async function startNodeProcess(env: Record<string, string>, opts: { port?: number } = {}): Promise<NodeProcess> {
  const port = opts.port ?? (await freePort());
  const child = spawn(process.execPath, [NODE_ENTRY], {
    env: { ...process.env, LOG_LEVEL: "info", HOST: "127.0.0.1", PORT: String(port), ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  const url = `http://127.0.0.1:${port}`;

  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`node exited during start-up (${child.exitCode}):\n${output}`);
    try {
      const res = await fetch(`${url}/health`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`node did not become healthy in 20 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  return {
    url,
    port,
    child,
    output: () => output,
    async stop(signal = "SIGTERM", timeoutMs = 15_000) {
      const started = Date.now();
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      const result = await exited;
      clearTimeout(timer);
      return { ...result, ms: Date.now() - started };
    },
    async kill9() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}

export async function postEvents(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
  path = "/v1/events",
): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(`${url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // leave as text
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** Polls `check` until it holds; on a timeout the error carries the end of the node's output. */
export async function untilNode(node: NodeProcess, check: () => Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${node.output().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

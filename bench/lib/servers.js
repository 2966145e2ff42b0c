"use strict";
/**
 * The real servers a run needs. nats-server and clickhouse-server are started by the test
 * harness's own helpers (test/support/*.ts, compiled into bench/.build by `tsc -p bench`), so
 * the bench runs them exactly as the integration tests do. Node processes are
 * `node dist/nodes/node.js` with environment variables, as an operator runs them.
 */
const path = require("node:path");
const fs = require("node:fs");
const os = require("node:os");
const { spawn } = require("node:child_process");
const { findPid } = require("./proc");

const ROOT = path.resolve(__dirname, "../..");
const BUILD = path.resolve(__dirname, "../.build");
const { startNatsServer, freePort } = require(path.join(BUILD, "nats-server.js"));
const { startClickHouse } = require(path.join(BUILD, "clickhouse-server.js"));

async function startNats() {
  const handle = await startNatsServer({ jetstream: true });
  return { ...handle, pid: findPid(handle.storeDir) };
}

async function startClickHouseServer() {
  const handle = await startClickHouse();
  return { ...handle, pid: findPid(handle.dataDir) };
}

/** One ClickHouse statement over HTTP; returns the response text. */
async function chQuery(url, sql, body) {
  const res = await fetch(`${url}/?query=${encodeURIComponent(sql)}`, { method: "POST", body });
  const text = await res.text();
  if (!res.ok) throw new Error(`ClickHouse ${res.status}: ${text.slice(0, 500)}`);
  return text;
}

async function chCount(url, table) {
  return Number((await chQuery(url, `SELECT count() FROM ${table}`)).trim());
}

function waitFor(check, timeoutMs, what, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  return (async () => {
    for (;;) {
      if (await check()) return;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
}

async function httpOk(url) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.text();
    return res.ok;
  } catch {
    return false;
  }
}

/**
 * The node/V8 flags (between `node` and the entry point) of an npm script of `root`'s
 * package.json, so the bench runs the node as users do: `start` (single-process) or
 * `start:cluster` (nodes with NATS_URL). A checkout from before `start:cluster` existed gets
 * `start`'s flags, as its cluster nodes then ran with.
 */
function startFlags(root = ROOT, script = "start") {
  const scripts = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")).scripts;
  const match = /\bnode ((?:--\S+ )*)dist\/nodes\/node\.js/.exec(scripts[script] ?? scripts.start);
  return match ? match[1].split(" ").filter(Boolean) : [];
}

const DATA_DIR_MARK = "<node data dir>";
/** An env value naming a path inside the node's own data dir (made by startNode, on the bench's data filesystem). */
const IN_DATA_DIR = (name) => path.join(DATA_DIR_MARK, name);

/**
 * Starts `node <the npm script's flags> dist/nodes/node.js` (with extra `nodeArgs` such as --cpu-prof) and waits for /ready.
 * The script is `start:cluster` when `env` sets NATS_URL, `start` otherwise, as an operator runs them.
 * `root` is the checkout whose dist/ runs (default this one; another build for before/after runs).
 * Returns { url, port, pid, output(), stop() }.
 */
async function startNode(env, { nodeArgs = [], readyTimeoutMs = 60_000, root = ROOT } = {}) {
  const port = await freePort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ingest-bench-"));
  env = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v).replace(DATA_DIR_MARK, dataDir)]));
  const child = spawn(process.execPath, [...startFlags(root, env.NATS_URL ? "start:cluster" : "start"), ...nodeArgs, path.join(root, "dist/nodes/node.js")], {
    cwd: root,
    env: { ...process.env, HOST: "127.0.0.1", PORT: String(port), DATA_DIR: dataDir, LOG_LEVEL: "warn", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const keep = (chunk) => (output = (output + chunk.toString()).slice(-20_000));
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`node exited during start-up (${child.exitCode}):\n${output}`);
      return httpOk(`${url}/ready`);
    }, readyTimeoutMs, `node ${env.NODE_ID ?? ""} /ready`);
  } catch (error) {
    child.kill("SIGKILL");
    throw new Error(`${error.message}\n${output.slice(-3000)}`);
  }
  return {
    url,
    port,
    pid: child.pid,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
      const result = await exited;
      clearTimeout(timer);
      fs.rmSync(dataDir, { recursive: true, force: true });
      return result;
    },
  };
}

/** The bare uWS baseline server (bench/baseline-uws.js) as its own process. */
async function startBaseline() {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(__dirname, "../baseline-uws.js"), String(port)], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const url = `http://127.0.0.1:${port}`;
  await waitFor(() => httpOk(`${url}/health`), 10_000, "baseline server");
  return {
    url,
    port,
    pid: child.pid,
    async stop() {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

module.exports = { ROOT, IN_DATA_DIR, startNats, startClickHouseServer, chQuery, chCount, waitFor, startNode, startBaseline, freePort };

/**
 * A local cluster for tests: a real nats-server with JetStream and N real node processes, plus
 * an HTTP receiver standing in for the forward target, and an SDK-like client that resends a
 * batch until some node acknowledges it.
 */
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { readSegments } from "../../actors/storage-writer/file-sink";
import { startNatsServer, type NatsServerHandle } from "./nats-server";
import { postEvents, startNodeProcess, type NodeProcess } from "./node-process";

export interface ForwardReceiver {
  url: string;
  events: Array<Record<string, any>>;
  /** When set, answers 503 to every delivery (a dead target). */
  failing: boolean;
  close(): Promise<void>;
}

export async function startForwardReceiver(): Promise<ForwardReceiver> {
  const receiver: ForwardReceiver = {
    url: "",
    events: [],
    failing: false,
    close: async () => undefined,
  };
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      if (receiver.failing) return void res.writeHead(503).end();
      receiver.events.push(...(JSON.parse(body) as { events: Array<Record<string, any>> }).events);
      res.writeHead(200).end("{}");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  receiver.url = `http://127.0.0.1:${port}/forward`;
  receiver.close = () => new Promise((r) => server.close(() => r()));
  return receiver;
}

export interface TestCluster {
  nats: NatsServerHandle;
  root: string;
  nodes: Map<string, NodeProcess>;
  receiver: ForwardReceiver;
  addNode(id: string, env?: Record<string, string>): Promise<NodeProcess>;
  /** Every stored row across every node's file sink. */
  storedRows(): Promise<Array<Record<string, unknown>>>;
  stop(): Promise<void>;
}

export const CLUSTER_KEYS = "cluster-key=tenant-c,other-key=tenant-d";

export async function startCluster(nodeIds: string[], env: Record<string, string> = {}): Promise<TestCluster> {
  const nats = await startNatsServer({ jetstream: true });
  const receiver = await startForwardReceiver();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "ingest-cluster-"));
  const nodes = new Map<string, NodeProcess>();
  const cluster: TestCluster = {
    nats,
    root,
    nodes,
    receiver,
    async addNode(id, extra = {}) {
      const node = await startNodeProcess({
        NATS_URL: nats.url,
        INGEST_API_KEYS: CLUSTER_KEYS,
        NODE_ID: id,
        DATA_DIR: path.join(root, id),
        FORWARD_URL: receiver.url,
        BATCH_MAX_WAIT_MS: "10",
        CONSUMER_ACK_WAIT_MS: "3000",
        HEARTBEAT_INTERVAL_SEC: "1",
        HEARTBEAT_TIMEOUT_SEC: "3",
        STREAM_PARTITIONS: "4",
        LOG_LEVEL: "warn",
        ...env,
        ...extra,
      });
      nodes.set(id, node);
      return node;
    },
    async storedRows() {
      const rows: Array<Record<string, unknown>> = [];
      for (const dir of fs.readdirSync(root)) {
        const full = path.join(root, dir);
        if (fs.statSync(full).isDirectory()) rows.push(...(await readSegments(full)));
      }
      return rows;
    },
    async stop() {
      await Promise.all([...nodes.values()].map((n) => n.kill9()));
      await nats.stop();
      await receiver.close();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
  await Promise.all(nodeIds.map((id) => cluster.addNode(id)));
  return cluster;
}

/** Waits until every node's /ready is 200 and each sees `sessionNodes` session actors. */
export async function waitForCluster(nodes: NodeProcess[], timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const node of nodes) {
    for (;;) {
      const ok = await fetch(`${node.url}/ready`).then((r) => r.ok, () => false);
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`node ${node.url} not ready:\n${node.output().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export interface SessionClientStats {
  acked: Array<{ event_id: string; session_id: string; seq: number }>;
  resends: number;
  /** Longest time from first attempt to acknowledgement of one batch. */
  maxAckMs: number;
  errors: number;
  /** Why attempts failed: `<status> <error code>` or the network error, with counts. */
  failures: Record<string, number>;
}

/**
 * SDK-like senders: one loop per session, each batch resent (to the next live edge) until
 * acknowledged, the next batch only after that. Runs until `until()` says stop.
 */
export async function runSessionClients(opts: {
  sessions: number;
  eventsPerBatch: number;
  edges: () => NodeProcess[];
  until: () => boolean;
  pauseMs?: number;
  apiKey?: string;
  sessionPrefix?: string;
}): Promise<SessionClientStats> {
  const stats: SessionClientStats = { acked: [], resends: 0, maxAckMs: 0, errors: 0, failures: {} };
  const prefix = opts.sessionPrefix ?? "fo";
  await Promise.all(
    Array.from({ length: opts.sessions }, async (_, s) => {
      const session = `${prefix}-${s}`;
      for (let batch = 0; !opts.until(); batch++) {
        const events = Array.from({ length: opts.eventsPerBatch }, (_, i) => {
          const seq = batch * opts.eventsPerBatch + i;
          return { event_id: `${session}-${seq}`, event_name: "tick", session_id: session, seq };
        });
        const started = Date.now();
        for (let attempt = 0; ; attempt++) {
          const edges = opts.edges();
          const edge = edges[(s + attempt) % edges.length]!;
          const failure = await postEvents(edge.url, { events }, { "X-API-Key": opts.apiKey ?? "cluster-key" }).then(
            (r) => (r.status === 202 ? null : `${r.status} ${r.body?.error?.code ?? ""} ${r.body?.error?.message ?? ""}`),
            (error: Error) => `network ${(error.cause as Error | undefined)?.message ?? error.message}`,
          );
          if (failure === null) break;
          stats.failures[failure] = (stats.failures[failure] ?? 0) + 1;
          stats.resends++;
          await new Promise((r) => setTimeout(r, 100));
          if (Date.now() - started > 60_000) throw new Error(`batch of ${session} never acknowledged`);
        }
        stats.maxAckMs = Math.max(stats.maxAckMs, Date.now() - started);
        for (const e of events) stats.acked.push({ event_id: e.event_id, session_id: e.session_id, seq: e.seq });
        if (opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs));
      }
    }),
  );
  return stats;
}

/** For each session, the seqs of first occurrences in arrival order must be increasing. */
export function firstOccurrenceOrderViolations(events: Array<Record<string, any>>): string[] {
  const seen = new Set<string>();
  const lastSeq = new Map<string, number>();
  const violations: string[] = [];
  for (const e of events) {
    if (seen.has(e.event_id)) continue;
    seen.add(e.event_id);
    const last = lastSeq.get(e.session_id);
    if (last !== undefined && e.seq < last) violations.push(`${e.session_id}: ${e.seq} after ${last}`);
    lastSeq.set(e.session_id, e.seq);
  }
  return violations;
}

export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function containsAll(ids: Iterable<string>, present: Set<string>): boolean {
  for (const id of ids) if (!present.has(id)) return false;
  return true;
}

/** Waits until every id is among the rows of the cluster's file sinks. */
export function waitForStored(cluster: TestCluster, ids: Set<string>, timeoutMs: number, what: string): Promise<void> {
  return waitFor(async () => containsAll(ids, new Set((await cluster.storedRows()).map((r) => String(r.event_id)))), timeoutMs, what);
}

/** Waits until every id has reached the forward receiver. */
export function waitForForwarded(cluster: TestCluster, ids: Set<string>, timeoutMs: number, what: string): Promise<void> {
  return waitFor(() => containsAll(ids, new Set(cluster.receiver.events.map((e) => String(e.event_id)))), timeoutMs, what);
}

/**
 * The status service, on every node whatever SERVICES says: `status.node` answers this node's
 * figures (node-status.ts), `status.cluster` asks every available node for theirs, in parallel
 * and with a short timeout, and assembles the page (cluster-status.ts). GET /status on the edge
 * and on worker nodes' ops port calls `status.cluster` on its own node.
 *
 * Every few seconds it samples two counters for the per-second rates and the event loop's delay,
 * so answering costs a metric snapshot, not work on the event path.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { ServiceBroker, ServiceSchema } from "moleculer";
import type { Config } from "../../config/env";
import { METRIC } from "../common/metrics";
import { ServiceRing } from "../common/service-ring";
import { buildClusterStatus, type ClusterStatus, type NodeReport, type RegistryNode } from "./cluster-status";
import { buildNodeStatus, metricTotal, type MetricItem, type MetricLookup, type NodeStatus } from "./node-status";
import { RateWindow } from "./rate-window";
import { statusReply, type StatusReply } from "./status-page";

export const STATUS_SERVICE = "status";
const SAMPLE_MS = 5_000;
const RATE_WINDOW_MS = 60_000;
/** A node that has not answered by then is shown as not reporting; the page must not hang on it. */
const NODE_TIMEOUT_MS = 1_500;
const LOOP_SAMPLE_MS = 10;
/** How long one gathered cluster document answers further requests. */
const REUSE_MS = 1_000;

/** The registry's node list, which Moleculer's typings leave out. */
interface RawNode {
  id: string;
  available: boolean;
  hostname?: string | null;
  services?: Array<{ name: string }>;
}

function registryNodes(broker: ServiceBroker): RegistryNode[] {
  const registry = broker.registry as unknown as { getNodeList(opts: { onlyAvailable: boolean; withServices: boolean }): RawNode[] };
  return registry.getNodeList({ onlyAvailable: false, withServices: true }).map((node) => ({
    id: node.id,
    available: node.available,
    hostname: node.hostname ?? null,
    // `$node` and this service run everywhere; the page lists the product's services.
    services: [...new Set((node.services ?? []).map((s) => s.name))].filter((name) => !name.startsWith("$") && name !== STATUS_SERVICE).sort(),
  }));
}

function metricLookup(broker: ServiceBroker): MetricLookup {
  return (name) => {
    if (!broker.isMetricsEnabled()) return [];
    const metric = broker.metrics.getMetric(name) as unknown as { snapshot(): MetricItem[] } | null;
    return metric ? metric.snapshot() : [];
  };
}

/**
 * Asks every available node for its figures, in parallel, and assembles the cluster's document.
 * `sessionRing`: the ring of session actors, as every edge builds it (cluster mode only).
 */
async function gatherClusterStatus(broker: ServiceBroker, config: Config, sessionRing: ServiceRing | null): Promise<ClusterStatus> {
  const nodes = registryNodes(broker);
  const reports = new Map<string, NodeReport>();
  await Promise.all(
    nodes
      .filter((n) => n.available)
      .map(async (n) => {
        try {
          const status = await broker.call<NodeStatus, object>(`${STATUS_SERVICE}.node`, {}, { nodeID: n.id, timeout: NODE_TIMEOUT_MS, retries: 0 });
          reports.set(n.id, { ok: true, status });
        } catch (error) {
          reports.set(n.id, { ok: false, error: error instanceof Error ? error.message : String(error) });
        }
      }),
  );
  return buildClusterStatus({
    nowMs: Date.now(),
    mode: config.natsUrl ? "cluster" : "single-process",
    reportedBy: broker.nodeID,
    nodes,
    reports,
    ringShares: sessionRing?.shares() ?? new Map(),
  });
}

export function createStatusService(config: Config): ServiceSchema {
  const startedAtMs = Date.now();
  const accepted = new RateWindow(RATE_WINDOW_MS);
  const stored = new RateWindow(RATE_WINDOW_MS);
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_SAMPLE_MS });
  let loopDelayP99Ms: number | null = null;
  let sampler: NodeJS.Timeout | undefined;
  let latest: { at: number; doc: ClusterStatus } | null = null;
  let gathering: Promise<ClusterStatus> | null = null;
  let sessionRing: ServiceRing | null = null;

  return {
    name: STATUS_SERVICE,
    actions: {
      node: {
        handler(): NodeStatus {
          const broker = this.broker;
          return buildNodeStatus({
            nodeID: broker.nodeID,
            services: [...config.services].sort(),
            startedAtMs,
            nowMs: Date.now(),
            memory: process.memoryUsage(),
            eventLoopDelayP99Ms: loopDelayP99Ms,
            perSecond: { accepted: accepted.perSecond(), stored: stored.perSecond() },
            metric: metricLookup(broker),
          });
        },
      },
      cluster: {
        handler(): Promise<ClusterStatus> {
          // One gathering at a time, its result reused for a second: however often the page is
          // asked for (it is as reachable as /metrics), the cluster sees at most one round of
          // status.node calls per node and second.
          const now = Date.now();
          if (latest && now - latest.at < REUSE_MS) return Promise.resolve(latest.doc);
          gathering ??= gatherClusterStatus(this.broker, config, sessionRing)
            .then((doc) => {
              latest = { at: Date.now(), doc };
              return doc;
            })
            .finally(() => {
              gathering = null;
            });
          return gathering;
        },
      },
    },
    started() {
      if (config.natsUrl) sessionRing = new ServiceRing(this.broker, "session");
      const metric = metricLookup(this.broker);
      loopDelay.enable();
      const sample = () => {
        const now = Date.now();
        accepted.record(now, metricTotal(metric, METRIC.eventsAccepted));
        stored.record(now, metricTotal(metric, METRIC.rowsStored));
        // The histogram records whole intervals between its timer's runs: the delay is what
        // exceeds the sampling interval.
        if (loopDelay.count > 0) loopDelayP99Ms = Math.max(0, Math.round((loopDelay.percentile(99) / 1e6 - LOOP_SAMPLE_MS) * 10) / 10);
        loopDelay.reset();
      };
      sample();
      sampler = setInterval(sample, SAMPLE_MS);
      sampler.unref();
    },
    stopped() {
      sessionRing?.close();
      if (sampler) clearInterval(sampler);
      loopDelay.disable();
    },
  };
}

/** GET /status on this node: the cluster's document, gathered by this node's own status service. */
export async function statusPageReply(broker: ServiceBroker, accept: string | undefined): Promise<StatusReply> {
  const doc = await broker.call<ClusterStatus, object>(`${STATUS_SERVICE}.cluster`, {}, { nodeID: broker.nodeID });
  return statusReply(doc, accept);
}

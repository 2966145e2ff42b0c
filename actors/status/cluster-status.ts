/**
 * The cluster's status page as one document: every node the registry knows (answering or not),
 * what each runs and reports, each session node's share of the hash ring, totals, and warnings
 * an operator should act on. Pure: the status service gathers the inputs.
 */
import type { NodeStatus } from "./node-status";

/** A node as the service registry knows it. */
export interface RegistryNode {
  id: string;
  available: boolean;
  hostname: string | null;
  /** Product services (Moleculer's internal ones left out). */
  services: string[];
}

export type NodeReport = { ok: true; status: NodeStatus } | { ok: false; error: string };

export interface ClusterNode extends RegistryNode {
  /** Fraction of the session hash ring this node owns (session nodes only). */
  ringShare: number | null;
  status: NodeStatus | null;
  /** Why there is no status: not available, or its answer failed. */
  error: string | null;
}

export interface ClusterStatus {
  generatedAt: string;
  mode: "cluster" | "single-process";
  /** The node that gathered this document. */
  reportedBy: string;
  nodes: ClusterNode[];
  totals: {
    nodes: number;
    nodesReporting: number;
    acceptedPerSecond: number | null;
    storedPerSecond: number | null;
    storagePendingEvents: number;
    /** Events durable in single-process spools, not yet in ClickHouse. */
    spooledEvents: number;
    /** Summed over consumers; each consumer counted once, however many nodes report it. */
    streamPendingMessages: number;
    forwarderQueuedEvents: number;
    activeSessionMailboxes: number;
    webSocketConnections: number;
  };
  /** Conditions that need an operator, newest state only (empty when all is well). */
  warnings: string[];
}

/** Services without which the cluster cannot take events (the forwarder is optional). */
export const REQUIRED_SERVICES = ["edge", "validator", "rate-limiter", "session", "storage-writer"] as const;

export interface ClusterStatusInput {
  nowMs: number;
  mode: ClusterStatus["mode"];
  reportedBy: string;
  nodes: readonly RegistryNode[];
  reports: ReadonlyMap<string, NodeReport>;
  ringShares: ReadonlyMap<string, number>;
}

export function buildClusterStatus(input: ClusterStatusInput): ClusterStatus {
  const warnings: string[] = [];
  const nodes: ClusterNode[] = [...input.nodes]
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((node) => {
      const report = input.reports.get(node.id);
      let error: string | null = null;
      if (!node.available) error = "not available (missed heartbeats or left)";
      else if (report === undefined) error = "no report";
      else if (!report.ok) error = report.error;
      if (error !== null) warnings.push(`node ${node.id}: ${error}`);
      return {
        ...node,
        ringShare: input.ringShares.get(node.id) ?? null,
        status: report?.ok ? report.status : null,
        error,
      };
    });

  const reporting = nodes.flatMap((n) => (n.status ? [n.status] : []));
  for (const service of REQUIRED_SERVICES) {
    if (!nodes.some((n) => n.available && n.services.includes(service))) {
      warnings.push(`no available node runs ${service}: events cannot be accepted`);
    }
  }
  const byVersion = new Map<string, string[]>();
  for (const status of reporting) byVersion.set(status.version, [...(byVersion.get(status.version) ?? []), status.nodeID]);
  if (byVersion.size > 1) {
    const groups = [...byVersion].map(([version, ids]) => `${version}: ${ids.join(", ")}`).join("; ");
    warnings.push(`nodes run different versions (${groups}); a cluster needs the same version on every node`);
  }
  for (const status of reporting) {
    if (status.forwarder.circuitOpen) warnings.push(`node ${status.nodeID}: the forward target's circuit breaker is open`);
    const spool = status.storage.spool;
    if (spool !== null && spool.failingSeconds > 0) {
      warnings.push(`node ${status.nodeID}: spool inserts into ClickHouse failing for ${spool.failingSeconds} s (${spool.events} events waiting in the spool)`);
    }
  }

  const streamByConsumer = new Map<string, number>();
  for (const status of reporting) {
    for (const [consumer, pending] of Object.entries(status.streamPending)) {
      streamByConsumer.set(consumer, Math.max(streamByConsumer.get(consumer) ?? 0, pending));
    }
  }
  const sum = (pick: (s: NodeStatus) => number) => reporting.reduce((acc, s) => acc + pick(s), 0);
  const sumRate = (pick: (s: NodeStatus) => number | null): number | null => {
    const rates = reporting.map(pick).filter((r): r is number => r !== null);
    return rates.length === 0 ? null : rates.reduce((a, b) => a + b, 0);
  };

  return {
    generatedAt: new Date(input.nowMs).toISOString(),
    mode: input.mode,
    reportedBy: input.reportedBy,
    nodes,
    totals: {
      nodes: nodes.length,
      nodesReporting: reporting.length,
      acceptedPerSecond: sumRate((s) => s.perSecond.accepted),
      storedPerSecond: sumRate((s) => s.perSecond.stored),
      storagePendingEvents: sum((s) => s.storage.pendingEvents),
      spooledEvents: sum((s) => s.storage.spool?.events ?? 0),
      streamPendingMessages: [...streamByConsumer.values()].reduce((a, b) => a + b, 0),
      forwarderQueuedEvents: sum((s) => s.forwarder.queuedEvents),
      activeSessionMailboxes: sum((s) => s.activeSessionMailboxes),
      webSocketConnections: sum((s) => s.webSocketConnections),
    },
    warnings,
  };
}

import { describe, expect, it } from "vitest";
import { METRIC } from "../../actors/common/metrics";
import { buildClusterStatus, type NodeReport, type RegistryNode } from "../../actors/status/cluster-status";
import { buildNodeStatus, type MetricItem, type NodeStatus } from "../../actors/status/node-status";
import { RateWindow } from "../../actors/status/rate-window";
import { escapeHtml, renderStatusHtml, statusReply, wantsHtml } from "../../actors/status/status-page";

describe("RateWindow", () => {
  it("is null until two samples exist, then the rate between the window's baseline and the newest sample", () => {
    const w = new RateWindow(60_000);
    expect(w.perSecond()).toBeNull();
    w.record(0, 100);
    expect(w.perSecond()).toBeNull();
    w.record(5_000, 600);
    expect(w.perSecond()).toBe(100);
    w.record(10_000, 600);
    expect(w.perSecond()).toBe(50);
  });

  it("forgets samples older than the window, keeping one baseline at or before its start", () => {
    const w = new RateWindow(10_000);
    w.record(0, 0);
    w.record(5_000, 1_000_000); // a burst long ago
    w.record(15_000, 1_000_000);
    w.record(20_000, 1_000_100);
    // The window now starts at 15 s: the baseline is the sample there; the burst at 5 s is gone.
    w.record(25_000, 1_000_200);
    expect(w.perSecond()).toBe(20);
  });

  it("is null after a counter reset rather than negative", () => {
    const w = new RateWindow(60_000);
    w.record(0, 500);
    w.record(5_000, 10);
    expect(w.perSecond()).toBeNull();
  });
});

function lookup(values: Record<string, MetricItem[]>) {
  return (name: string) => values[name] ?? [];
}

function nodeStatus(nodeID: string, overrides: Partial<Record<string, MetricItem[]>> = {}, perSecond: NodeStatus["perSecond"] = { accepted: 10, stored: 9 }): NodeStatus {
  return buildNodeStatus({
    nodeID,
    services: ["session"],
    startedAtMs: 1_000,
    nowMs: 61_000,
    memory: { rss: 120 * 1024 * 1024, heapUsed: 40 * 1024 * 1024 },
    eventLoopDelayP99Ms: 3.5,
    perSecond,
    metric: lookup(overrides as Record<string, MetricItem[]>),
  });
}

describe("buildNodeStatus", () => {
  it("sums counters over their labels and reads gauges, the stream's consumers and the commit p99", () => {
    const s = nodeStatus("n1", {
      [METRIC.eventsAccepted]: [{ labels: { tenant: "a" }, value: 7 }, { labels: { tenant: "b" }, value: 5 }],
      [METRIC.eventsRejected]: [{ labels: { reason: "invalid" }, value: 2 }],
      [METRIC.rowsStored]: [{ labels: { sink: "file" }, value: 12 }],
      [METRIC.storagePending]: [{ value: 3 }],
      [METRIC.streamPending]: [{ labels: { consumer: "storage" }, value: 40 }, { labels: { consumer: "forward-0" }, value: 2 }],
      [METRIC.flushLatency]: [{ labels: { sink: "file" }, quantiles: { "0.5": 2, "0.95": 8, "0.99": 11 } }],
      [METRIC.forwardCircuitOpen]: [{ value: 1 }],
    });
    expect(s.events).toEqual({ received: 0, accepted: 12, rejected: 2, duplicates: 0 });
    expect(s.storage).toEqual({ rows: 12, commits: 0, failedCommits: 0, pendingEvents: 3, commitP99Ms: 11, spool: null });
    expect(s.streamPending).toEqual({ storage: 40, "forward-0": 2 });
    expect(s.forwarder.circuitOpen).toBe(true);
    expect(s.uptimeSeconds).toBe(60);
    expect(s.memoryMB).toEqual({ rss: 120, heapUsed: 40 });
    expect(s.startedAt).toBe(new Date(1_000).toISOString());
    // The package's own version, read from package.json.
    expect(s.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("reads a spool's backlog from its gauges", () => {
    const s = nodeStatus("solo", {
      [METRIC.spoolPending]: [{ value: 5_000 }],
      [METRIC.spoolBytes]: [{ value: 1_250_000 }],
      [METRIC.spoolFailing]: [{ value: 0 }],
    });
    expect(s.storage.spool).toEqual({ events: 5_000, bytes: 1_250_000, failingSeconds: 0 });
  });

  it("reports no commit p99 before any commit, and zeros for metrics that are not registered", () => {
    const s = nodeStatus("n1");
    expect(s.storage.commitP99Ms).toBeNull();
    expect(s.events.accepted).toBe(0);
    expect(s.forwarder.circuitOpen).toBe(false);
  });
});

const ALL = ["edge", "forwarder", "rate-limiter", "session", "storage-writer", "validator"];

function registry(...nodes: Array<Partial<RegistryNode> & { id: string }>): RegistryNode[] {
  return nodes.map((n) => ({ available: true, hostname: null, services: ALL, ...n }));
}

describe("buildClusterStatus", () => {
  it("lists nodes in id order with their reports and ring shares, and sums the totals", () => {
    const reports = new Map<string, NodeReport>([
      ["b", { ok: true, status: nodeStatus("b", { [METRIC.streamPending]: [{ labels: { consumer: "storage" }, value: 40 }] }) }],
      ["a", { ok: true, status: nodeStatus("a", { [METRIC.streamPending]: [{ labels: { consumer: "storage" }, value: 25 }] }, { accepted: null, stored: 4 }) }],
    ]);
    const doc = buildClusterStatus({
      nowMs: 0,
      mode: "cluster",
      reportedBy: "a",
      nodes: registry({ id: "b" }, { id: "a" }),
      reports,
      ringShares: new Map([["a", 0.4], ["b", 0.6]]),
    });
    expect(doc.nodes.map((n) => [n.id, n.ringShare, n.error])).toEqual([["a", 0.4, null], ["b", 0.6, null]]);
    expect(doc.warnings).toEqual([]);
    // One shared consumer reported by two nodes is one backlog, not two.
    expect(doc.totals).toMatchObject({ nodes: 2, nodesReporting: 2, acceptedPerSecond: 10, storedPerSecond: 13, streamPendingMessages: 40 });
  });

  it("warns about unavailable or silent nodes, missing services and an open circuit", () => {
    const reports = new Map<string, NodeReport>([
      ["edge-1", { ok: true, status: nodeStatus("edge-1", { [METRIC.forwardCircuitOpen]: [{ value: 1 }] }) }],
      ["w-2", { ok: false, error: "Request timed out" }],
    ]);
    const doc = buildClusterStatus({
      nowMs: 0,
      mode: "cluster",
      reportedBy: "edge-1",
      nodes: registry(
        { id: "edge-1", services: ["edge", "forwarder"] },
        { id: "w-1", available: false, services: ["session", "storage-writer", "validator", "rate-limiter"] },
        { id: "w-2", services: ["session", "storage-writer", "validator"] },
      ),
      reports,
      ringShares: new Map(),
    });
    expect(doc.warnings).toEqual([
      "node w-1: not available (missed heartbeats or left)",
      "node w-2: Request timed out",
      "no available node runs rate-limiter: events cannot be accepted",
      "node edge-1: the forward target's circuit breaker is open",
    ]);
    expect(doc.totals).toMatchObject({ nodes: 3, nodesReporting: 1 });
    expect(doc.nodes.find((n) => n.id === "w-2")).toMatchObject({ status: null, error: "Request timed out" });
  });

  it("warns when the nodes run different versions", () => {
    const older = { ...nodeStatus("w-1"), version: "0.1.0" };
    const newer = { ...nodeStatus("w-2"), version: "0.2.0" };
    const doc = buildClusterStatus({
      nowMs: 0,
      mode: "cluster",
      reportedBy: "w-1",
      nodes: registry({ id: "w-1" }, { id: "w-2" }, { id: "w-3" }),
      reports: new Map<string, NodeReport>([
        ["w-1", { ok: true, status: older }],
        ["w-2", { ok: true, status: newer }],
        ["w-3", { ok: true, status: { ...newer, nodeID: "w-3" } }],
      ]),
      ringShares: new Map(),
    });
    expect(doc.warnings).toEqual(["nodes run different versions (0.1.0: w-1; 0.2.0: w-2, w-3); a cluster needs the same version on every node"]);
  });

  it("has no rate when no node has one yet", () => {
    const doc = buildClusterStatus({
      nowMs: 0,
      mode: "single-process",
      reportedBy: "solo",
      nodes: registry({ id: "solo" }),
      reports: new Map([["solo", { ok: true, status: nodeStatus("solo", {}, { accepted: null, stored: null }) }]]),
      ringShares: new Map(),
    });
    expect(doc.totals.acceptedPerSecond).toBeNull();
    expect(doc.nodes[0]!.ringShare).toBeNull();
  });

  it("sums what spools hold and warns while a spool's inserts fail", () => {
    const spooled = (id: string, events: number, failing: number) =>
      nodeStatus(id, {
        [METRIC.spoolPending]: [{ value: events }],
        [METRIC.spoolBytes]: [{ value: events * 250 }],
        [METRIC.spoolFailing]: [{ value: failing }],
      });
    /** The document of a single-process node that reports `status`. */
    const soloDoc = (status: NodeStatus) =>
      buildClusterStatus({
        nowMs: 0,
        mode: "single-process",
        reportedBy: "solo",
        nodes: registry({ id: "solo" }),
        reports: new Map([["solo", { ok: true, status }]]),
        ringShares: new Map(),
      });
    const doc = soloDoc(spooled("solo", 42_000, 31));
    expect(doc.totals.spooledEvents).toBe(42_000);
    expect(doc.warnings).toEqual(["node solo: spool inserts into ClickHouse failing for 31 s (42000 events waiting in the spool)"]);
    const html = renderStatusHtml(doc);
    expect(html).toContain("spooled 42,000 (10 MB)");
    expect(html).toContain(" · spooled 42,000 · ");
    expect(soloDoc(spooled("solo", 10, 0)).warnings).toEqual([]);
    // Without a spool anywhere the page does not mention one.
    const unspooled = soloDoc(nodeStatus("solo"));
    expect(renderStatusHtml(unspooled)).not.toContain("spooled");
  });
});

describe("status page", () => {
  const doc = buildClusterStatus({
    nowMs: 0,
    mode: "cluster",
    reportedBy: "<script>alert(1)</script>",
    nodes: registry({ id: "n<1>", hostname: "h&st", available: false }),
    reports: new Map(),
    ringShares: new Map(),
  });

  it("answers JSON unless the client asks for HTML", () => {
    expect(wantsHtml(undefined)).toBe(false);
    expect(wantsHtml("*/*")).toBe(false);
    expect(wantsHtml("text/html,application/xhtml+xml;q=0.9")).toBe(true);
    expect(JSON.parse(statusReply(doc, "*/*").body)).toEqual(doc);
    expect(statusReply(doc, "text/html").contentType).toBe("text/html; charset=utf-8");
  });

  it("escapes every text it shows, node ids and warnings included", () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe("&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    const html = renderStatusHtml(doc);
    expect(html).not.toContain("<script>");
    expect(html).not.toContain("n<1>");
    expect(html).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(html).toContain("n&lt;1&gt;");
    expect(html).toContain("h&amp;st");
    expect(html).toContain("node n&lt;1&gt;: not available");
  });
});

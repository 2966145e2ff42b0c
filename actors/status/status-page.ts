/**
 * The status document as an HTTP answer: JSON for tools (`curl`, monitors), a small HTML page
 * that refreshes itself for a browser (its Accept header names text/html). Pure.
 */
import type { ClusterNode, ClusterStatus } from "./cluster-status";

export interface StatusReply {
  status: number;
  contentType: string;
  body: string;
}

export function wantsHtml(accept: string | undefined): boolean {
  return accept !== undefined && accept.toLowerCase().includes("text/html");
}

export function statusReply(doc: ClusterStatus, accept: string | undefined): StatusReply {
  if (wantsHtml(accept)) return { status: 200, contentType: "text/html; charset=utf-8", body: renderStatusHtml(doc) };
  return { status: 200, contentType: "application/json", body: JSON.stringify(doc) };
}

const HTML_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Text made safe for HTML content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

function num(value: number | null | undefined, digits = 0): string {
  if (value === null || value === undefined) return "–";
  return value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

function duration(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86_400)} d`;
}

function nodeRow(node: ClusterNode): string {
  const s = node.status;
  const cells = [
    escapeHtml(node.id) + `<br><small>${escapeHtml([s ? `v${s.version}` : "", node.hostname ?? ""].filter(Boolean).join(" · "))}</small>`,
    node.error === null ? "ok" : `<span class="bad">${escapeHtml(node.error)}</span>`,
    escapeHtml(node.services.join(", ")),
    node.ringShare === null ? "–" : `${num(node.ringShare * 100, 1)}%`,
    s ? duration(s.uptimeSeconds) : "–",
    s ? `${num(s.memoryMB.rss)} MB` : "–",
    s ? `${num(s.eventLoopDelayP99Ms, 1)} ms` : "–",
    s ? num(s.perSecond.accepted) : "–",
    s ? num(s.perSecond.stored) : "–",
    s
      ? `${num(s.storage.pendingEvents)} / ${num(s.storage.commitP99Ms)} ms / ${num(s.storage.failedCommits)}` +
        (s.storage.spool ? `<br><small>spooled ${num(s.storage.spool.events)} (${num(s.storage.spool.bytes / 1_048_576, 1)} MB)</small>` : "")
      : "–",
    s ? `${num(s.forwarder.queuedEvents)}${s.forwarder.circuitOpen ? ' <span class="bad">circuit open</span>' : ""}` : "–",
    s ? num(s.activeSessionMailboxes) : "–",
    s ? num(s.webSocketConnections) : "–",
  ];
  return `<tr>${cells.map((c) => `<td>${c}</td>`).join("")}</tr>`;
}

export function renderStatusHtml(doc: ClusterStatus): string {
  const t = doc.totals;
  const warnings =
    doc.warnings.length === 0
      ? '<p class="good">No warnings.</p>'
      : `<ul class="bad">${doc.warnings.map((w) => `<li>${escapeHtml(w)}</li>`).join("")}</ul>`;
  const headers = [
    "Node",
    "State",
    "Services",
    "Ring share",
    "Up",
    "RSS",
    "Loop delay p99",
    "Accepted/s",
    "Stored/s",
    "Storage: pending / commit p99 / failed",
    "Forwarder queue",
    "Active sessions",
    "WebSockets",
  ];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>ingest-node status</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right;vertical-align:top}
td:nth-child(-n+3),th{text-align:left}.bad{color:#b00020}.good{color:#1b5e20}small{color:#666}
</style></head><body>
<h1>ingest-node status</h1>
<p>${escapeHtml(doc.mode)} · ${t.nodesReporting} of ${t.nodes} node(s) reporting · accepted ${num(t.acceptedPerSecond)} events/s · stored ${num(
    t.storedPerSecond,
  )} events/s (last minute) · storage pending ${num(t.storagePendingEvents)}${
    doc.nodes.some((n) => n.status?.storage.spool) ? ` · spooled ${num(t.spooledEvents)}` : ""
  } · stream backlog ${num(t.streamPendingMessages)} message(s) · forwarder queue ${num(
    t.forwarderQueuedEvents,
  )} · WebSockets ${num(t.webSocketConnections)}</p>
${warnings}
<table><thead><tr>${headers.map((h) => `<th>${h}</th>`).join("")}</tr></thead>
<tbody>${doc.nodes.map(nodeRow).join("\n")}</tbody></table>
<p><small>Reported by ${escapeHtml(doc.reportedBy)} at ${escapeHtml(doc.generatedAt)}; refreshes every 5 s. JSON: the same URL without <code>Accept: text/html</code>.</small></p>
</body></html>
`;
}

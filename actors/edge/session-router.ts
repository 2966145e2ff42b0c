/**
 * Sends each session's events to the session actor that owns the session: one Moleculer call
 * per owning node per request, carrying every session of that request the node owns.
 *
 * Single-process mode: one owner, the local actor. Cluster mode: owners come from a consistent
 * hash ring over the nodes running `session`. If an owner fails the call because it is draining,
 * gone, or unreachable, the router leaves that node out of its ring for a while and sends those
 * sessions to their next owner, once; events are durable-before-ack everywhere and duplicates
 * are absorbed by event_id, so a retry can never lose or double-store an event.
 */
import { Errors, type ServiceBroker } from "moleculer";
import type { SessionBatch, SessionIngestRequest, SessionIngestResult } from "../common/event";
import { ServiceRing } from "../common/service-ring";
import { toWire, type WireSessionIngestRequest } from "../common/session-wire";

export const SESSION_DRAINING = "SESSION_DRAINING";

/** How long a node that failed a call stays out of this edge's ring. */
const EXCLUDE_MS = 5_000;

export interface SessionRouterOptions {
  cluster: boolean;
  callTimeoutMs: number;
}

/** A failure that says "this node cannot serve the call now", not "the call is bad": try the next owner. */
export function isRetryable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const type = (error as { type?: string }).type;
  return (
    type === SESSION_DRAINING ||
    error instanceof Errors.ServiceNotAvailableError ||
    error instanceof Errors.ServiceNotFoundError ||
    error instanceof Errors.RequestTimeoutError ||
    error instanceof Errors.RequestRejectedError ||
    error instanceof Errors.RequestSkippedError
  );
}

export class SessionRouter {
  private readonly ring: ServiceRing | null;

  constructor(
    private readonly broker: ServiceBroker,
    private readonly options: SessionRouterOptions,
  ) {
    this.ring = options.cluster ? new ServiceRing(broker, "session") : null;
  }

  close(): void {
    this.ring?.close();
  }

  /** A node announced it is draining: stop sending it sessions now, not after the heartbeat. */
  nodeDraining(nodeID: string): void {
    this.ring?.exclude(nodeID, 60_000);
  }

  async dispatch(tenantId: string, sessions: SessionBatch[]): Promise<SessionIngestResult> {
    if (!this.ring) return this.call(tenantId, sessions, undefined);
    return this.dispatchByOwner(tenantId, sessions, true);
  }

  private async dispatchByOwner(tenantId: string, sessions: SessionBatch[], retry: boolean): Promise<SessionIngestResult> {
    const ring = this.ring!;
    const byOwner = new Map<string, SessionBatch[]>();
    for (const batch of sessions) {
      const owner = ring.ownerOf(tenantId, batch.session_id);
      if (owner === undefined) throw new Errors.ServiceNotAvailableError({ action: "session.ingest" });
      const list = byOwner.get(owner);
      if (list) list.push(batch);
      else byOwner.set(owner, [batch]);
    }
    const totals: SessionIngestResult = { accepted: 0, duplicates: 0 };
    const failed: SessionBatch[] = [];
    let lastError: unknown;
    await Promise.all(
      [...byOwner].map(async ([owner, batches]) => {
        try {
          const result = await this.call(tenantId, batches, owner);
          totals.accepted += result.accepted;
          totals.duplicates += result.duplicates;
        } catch (error) {
          if (!retry || !isRetryable(error)) throw error;
          ring.exclude(owner, EXCLUDE_MS);
          failed.push(...batches);
          lastError = error;
        }
      }),
    );
    if (failed.length > 0) {
      this.broker.logger.warn({ err: lastError, sessions: failed.length }, "session owner failed; sending to next owner");
      const again = await this.dispatchByOwner(tenantId, failed, false);
      totals.accepted += again.accepted;
      totals.duplicates += again.duplicates;
    }
    return totals;
  }

  private call(tenantId: string, sessions: SessionBatch[], nodeID: string | undefined): Promise<SessionIngestResult> {
    // To another node the events go as stored-batch bodies, which its actor can publish as they
    // are (session-wire.ts); to this node's own actor, as the objects themselves.
    const request: SessionIngestRequest | WireSessionIngestRequest =
      nodeID === undefined || nodeID === this.broker.nodeID
        ? { tenant_id: tenantId, sessions }
        : { tenant_id: tenantId, wire: sessions.map(toWire) };
    return this.broker.call<SessionIngestResult, SessionIngestRequest | WireSessionIngestRequest>("session.ingest", request, {
      nodeID,
      timeout: this.options.callTimeoutMs,
      retries: 0,
    });
  }
}

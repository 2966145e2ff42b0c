/**
 * Sends each session's events to the session actor that owns the session: one Moleculer call
 * per owning node per request, carrying every session of that request the node owns.
 * In single-process mode there is one owner, the local actor.
 */
import type { ServiceBroker } from "moleculer";
import type { SessionBatch, SessionIngestRequest, SessionIngestResult } from "../common/event";

export class SessionRouter {
  constructor(private readonly broker: ServiceBroker) {}

  async dispatch(tenantId: string, sessions: SessionBatch[]): Promise<SessionIngestResult> {
    const request: SessionIngestRequest = { tenant_id: tenantId, sessions };
    return this.broker.call<SessionIngestResult, SessionIngestRequest>("session.ingest", request);
  }
}

/**
 * The session actor's logic, free of Moleculer: one mailbox per (tenant, session), duplicate
 * suppression by event_id within a bounded window, seq gap/duplicate detection, and the rule
 * that a session's next batch starts only after the previous one is durable. That rule is what
 * keeps the stored and forwarded stream of a session in arrival order even when a write fails
 * and the client resends.
 */
import { LRUCache } from "lru-cache";
import type { IngestEvent, SessionIngestRequest, SessionIngestResult } from "../common/event";
import { MailboxRegistry } from "./mailbox";

export interface SessionActorOptions {
  /** Event ids remembered for duplicate detection (0 disables). */
  dedupWindow: number;
  /** Sessions whose last seq is remembered. */
  seqWindow?: number;
  /** Makes events durable; resolves only when they are (fsynced file, JetStream ack, ...). */
  persist: (events: IngestEvent[]) => Promise<void>;
  /** Called, in session order, with each batch once it is durable (the forwarder's feed). */
  onDurable?: (events: IngestEvent[]) => void;
}

export interface SessionIngestStats extends SessionIngestResult {
  seqGaps: number;
  seqDuplicates: number;
}

export class SessionActor {
  private readonly mailboxes = new MailboxRegistry();
  private readonly seen: LRUCache<string, true> | null;
  private readonly lastSeq: LRUCache<string, number>;
  private draining = false;

  constructor(private readonly options: SessionActorOptions) {
    this.seen = options.dedupWindow > 0 ? new LRUCache<string, true>({ max: options.dedupWindow }) : null;
    this.lastSeq = new LRUCache<string, number>({ max: options.seqWindow ?? 100_000 });
  }

  get isDraining(): boolean {
    return this.draining;
  }

  get activeMailboxes(): number {
    return this.mailboxes.active;
  }

  /** Handles every session of one request; resolves when all of them are durable. */
  async ingest(request: SessionIngestRequest): Promise<SessionIngestStats> {
    if (this.draining) throw new Error("session actor is draining");
    const totals: SessionIngestStats = { accepted: 0, duplicates: 0, seqGaps: 0, seqDuplicates: 0 };
    const turns = request.sessions.map((batch) =>
      this.mailboxes.post(`${request.tenant_id}\u0000${batch.session_id}`, () => this.turn(batch.events, totals)),
    );
    await Promise.all(turns);
    return totals;
  }

  /** Stops taking new work and resolves when every queued turn has finished. */
  async drain(): Promise<void> {
    this.draining = true;
    await this.mailboxes.idle();
  }

  private async turn(events: IngestEvent[], totals: SessionIngestStats): Promise<void> {
    const fresh: IngestEvent[] = [];
    const inBatch = new Set<string>();
    for (const event of events) {
      const key = `${event.tenant_id}\u0000${event.event_id}`;
      if (inBatch.has(key) || this.seen?.has(key)) {
        totals.duplicates++;
        continue;
      }
      inBatch.add(key);
      fresh.push(event);
    }
    if (fresh.length === 0) return;
    await this.options.persist(fresh);
    this.trackSeq(fresh, totals);
    // Remember ids only once durable: a failed write must not turn the client's retry into a "duplicate".
    if (this.seen) for (const key of inBatch) this.seen.set(key, true);
    totals.accepted += fresh.length;
    this.options.onDurable?.(fresh);
  }

  private trackSeq(events: IngestEvent[], totals: SessionIngestStats): void {
    for (const event of events) {
      if (event.seq === null) continue;
      const key = `${event.tenant_id}\u0000${event.session_id}`;
      const last = this.lastSeq.get(key);
      if (last !== undefined) {
        if (event.seq <= last) {
          totals.seqDuplicates++;
          continue;
        }
        if (event.seq > last + 1) totals.seqGaps++;
      }
      this.lastSeq.set(key, event.seq);
    }
  }
}

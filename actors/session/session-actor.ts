/**
 * The session actor's logic, free of Moleculer: one mailbox per (tenant, session), duplicate
 * suppression by event_id within a bounded window, seq gap/duplicate detection, and the rule
 * that a session's next batch starts only after the previous one is durable. That rule is what
 * keeps the stored and forwarded stream of a session in arrival order even when a write fails
 * and the client resends.
 */
import { EventIdWindow } from "../common/event-id-window";
import { ScopedLru } from "../common/scoped-lru";
import { hasServerAssignedId, type IngestEvent, type SessionIngestRequest, type SessionIngestResult } from "../common/event";
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
  /** (tenant, event_id) of events made durable, for duplicate suppression. */
  private readonly seen: EventIdWindow | null;
  /** (tenant, session_id) → last seq seen. */
  private readonly lastSeq: ScopedLru<number>;
  private draining = false;

  constructor(private readonly options: SessionActorOptions) {
    this.seen = options.dedupWindow > 0 ? new EventIdWindow(options.dedupWindow) : null;
    this.lastSeq = new ScopedLru<number>(options.seqWindow ?? 100_000);
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

  /** One session's batch (every event has the same tenant and session): dedup, persist, track seq. */
  private async turn(events: IngestEvent[], totals: SessionIngestStats): Promise<void> {
    const fresh = this.withoutDuplicates(events, totals);
    if (fresh.length === 0) return;
    await this.options.persist(fresh);
    this.trackSeq(fresh, totals);
    // Remember ids only once durable: a failed write must not turn the client's retry into a "duplicate".
    if (this.seen) {
      for (const event of fresh) if (!hasServerAssignedId(event)) this.seen.add(event.tenant_id, event.event_id);
    }
    totals.accepted += fresh.length;
    this.options.onDurable?.(fresh);
  }

  /**
   * The events whose id was not seen before (in the window or earlier in this batch). Ids the
   * server assigned in this process cannot repeat, so they skip the window: a lookup in a
   * 250k-entry map per event was most of this actor's cost in the batch benchmark.
   */
  private withoutDuplicates(events: IngestEvent[], totals: SessionIngestStats): IngestEvent[] {
    let fresh: IngestEvent[] | null = null;
    let inBatch: Set<string> | null = null;
    for (let i = 0; i < events.length; i++) {
      const event = events[i]!;
      let duplicate = false;
      if (!hasServerAssignedId(event)) {
        if (events.length > 1) {
          inBatch ??= new Set<string>();
          duplicate = inBatch.has(event.event_id);
          inBatch.add(event.event_id);
        }
        duplicate ||= this.seen?.has(event.tenant_id, event.event_id) === true;
      }
      if (duplicate) {
        totals.duplicates++;
        // Copy lazily: a batch without duplicates (nearly all of them) is passed on as it is.
        fresh ??= events.slice(0, i);
      } else if (fresh !== null) {
        fresh.push(event);
      }
    }
    return fresh ?? events;
  }

  /** Seq gaps and repeats against the session's last seq: one window lookup per batch, not per event. */
  private trackSeq(events: IngestEvent[], totals: SessionIngestStats): void {
    const first = events[0]!;
    const stored = this.lastSeq.get(first.tenant_id, first.session_id);
    let last = stored;
    for (const event of events) {
      if (event.seq === null) continue;
      if (last !== undefined) {
        if (event.seq <= last) {
          totals.seqDuplicates++;
          continue;
        }
        if (event.seq > last + 1) totals.seqGaps++;
      }
      last = event.seq;
    }
    if (last !== stored) this.lastSeq.set(first.tenant_id, first.session_id, last!);
  }
}

/**
 * The session actor's logic, free of Moleculer: one mailbox per (tenant, session), duplicate
 * suppression by event_id within a bounded window, seq gap/duplicate detection, and the rule
 * that a session's next batch starts only after the previous one is durable. That rule is what
 * keeps the stored and forwarded stream of a session in arrival order even when a write fails
 * and the client resends.
 */
import { EventIdWindow, parseUuid } from "../common/event-id-window";
import { ScopedLru } from "../common/scoped-lru";
import { hasServerAssignedId, type IngestEvent, type SessionBatch, type SessionIngestRequest, type SessionIngestResult } from "../common/event";
import { MailboxRegistry } from "./mailbox";

export interface SessionActorOptions {
  /** Event ids remembered for duplicate detection (0 disables). */
  dedupWindow: number;
  /** Sessions whose last seq is remembered. */
  seqWindow?: number;
  /**
   * Makes events durable; resolves only when they are (fsynced file, JetStream ack, ...).
   * `encoded`: the same events as a stored-batch body, when the batch arrived as one and every
   * event was kept (session-wire.ts), for a durable path that can store those bytes as they are.
   */
  persist: (events: IngestEvent[], encoded?: Uint8Array) => Promise<void>;
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
      this.mailboxes.post(`${request.tenant_id}\u0000${batch.session_id}`, () => this.turn(batch, totals)),
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
  private async turn(batch: SessionBatch, totals: SessionIngestStats): Promise<void> {
    const events = batch.events;
    const kept = this.seen ? new KeptIds(events.length) : null;
    const fresh = this.withoutDuplicates(events, totals, kept);
    if (fresh.length === 0) return;
    // The body the batch came in holds every event, so it stands for `fresh` only if none was dropped.
    await this.options.persist(fresh, fresh === events ? batch.encoded : undefined);
    this.trackSeq(fresh, totals);
    // Remember ids only once durable: a failed write must not turn the client's retry into a "duplicate".
    if (this.seen && kept) {
      const tenant = events[0]!.tenant_id;
      for (let k = 0; k < kept.count; k++) this.seen.addParsed(tenant, kept.ids[k]!, kept.kinds[k]!, kept.words, k * 4);
    }
    totals.accepted += fresh.length;
    this.options.onDurable?.(fresh);
  }

  /**
   * The events whose id was not seen before (in the window or earlier in this batch). Ids the
   * server assigned in this process cannot repeat, so they skip the window: a lookup in a
   * 250k-entry map per event was most of this actor's cost in the batch benchmark. Each client
   * id is parsed once into `kept` (when there is a window), for the lookup here and for
   * remembering it after the write; in a small batch the earlier ids are compared as parsed
   * words instead of through a Set of strings.
   */
  private withoutDuplicates(events: IngestEvent[], totals: SessionIngestStats, kept: KeptIds | null): IngestEvent[] {
    let fresh: IngestEvent[] | null = null;
    let inBatch: Set<string> | null = null;
    const useSet = kept === null || events.length > SMALL_BATCH;
    for (let i = 0; i < events.length; i++) {
      const event = events[i]!;
      let duplicate = false;
      if (!hasServerAssignedId(event)) {
        const id = event.event_id;
        if (useSet && events.length > 1) {
          inBatch ??= new Set<string>();
          duplicate = inBatch.has(id);
          inBatch.add(id);
        }
        if (kept !== null) {
          const at = kept.count * 4;
          const kind = kept.parse(id);
          if (!useSet) duplicate = kept.holds(id, kind, at);
          duplicate ||= this.seen!.hasParsed(event.tenant_id, id, kind, kept.words, at);
          if (!duplicate) kept.push(id, kind);
        }
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

/** Batches up to this size find repeats within themselves by comparing parsed ids, not with a Set. */
const SMALL_BATCH = 64;
const EMPTY_KINDS = new Int8Array(0);
const EMPTY_WORDS = new Int32Array(0);

/**
 * The client ids a batch keeps, in order, each parsed once by `parseUuid` (its kind: -1 for an id
 * that is not a UUID, else the letter case; its four words at `4 × position`). Every id of one
 * turn belongs to the same tenant, so the tenant is not stored.
 */
class KeptIds {
  readonly ids: string[] = [];
  /** Allocated by the first `parse`: a batch of server-assigned ids (HTTP clients that send none) needs neither. */
  kinds: Int8Array = EMPTY_KINDS;
  words: Int32Array = EMPTY_WORDS;
  count = 0;

  constructor(private readonly capacity: number) {}

  /** Parses `id` into the next free position's words; returns its kind. */
  parse(id: string): number {
    if (this.words === EMPTY_WORDS) {
      this.kinds = new Int8Array(this.capacity);
      this.words = new Int32Array(this.capacity * 4);
    }
    return parseUuid(id, this.words, this.count * 4);
  }

  /** Records the id whose parse (kind `kind`) was written at the next free position. */
  push(id: string, kind: number): void {
    this.ids.push(id);
    this.kinds[this.count] = kind;
    this.count++;
  }

  /** Whether an id kept earlier equals `id` (kind `kind`, words parsed at `at`). */
  holds(id: string, kind: number, at: number): boolean {
    const words = this.words;
    for (let k = 0; k < this.count; k++) {
      if (this.kinds[k] !== kind) continue;
      if (kind === -1) {
        if (this.ids[k] === id) return true;
        continue;
      }
      const base = k * 4;
      if (words[base] === words[at] && words[base + 1] === words[at + 1] && words[base + 2] === words[at + 2] && words[base + 3] === words[at + 3]) {
        return true;
      }
    }
    return false;
  }
}

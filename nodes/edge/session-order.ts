/**
 * Per-session order for pipelined batches on one WebSocket stream.
 *
 * A stream may have many batches in flight, and the steps before the session mailbox
 * (rate-limit lease, validation) can finish them out of order: without help, batch n+1 of a
 * session could reach its mailbox, and storage, before batch n. So batches that share a session
 * run one after another (in arrival order), while batches of disjoint sessions still overlap.
 *
 * And when batch n fails in a way the client will retry (rate limited, unavailable, refused),
 * later batches of the same sessions must not get ahead of its resend: `SessionBarrier`
 * remembers "session blocked until seq n comes back" and refuses later seqs until it does.
 */

/**
 * The keys that order raw (not yet validated) events: the same effective session key the
 * validator derives (`session_id`/`sessionId`, else `user:<user_id>`). An event with neither
 * is its own session and needs no ordering. An ill-typed id only costs a needless wait.
 */
export function orderingKeys(events: readonly unknown[]): string[] {
  const keys = new Set<string>();
  for (const event of events) {
    if (typeof event !== "object" || event === null) continue;
    const raw = event as Record<string, unknown>;
    const session = raw.session_id ?? raw.sessionId;
    if (typeof session === "string" || typeof session === "number") {
      keys.add(String(session));
      continue;
    }
    const user = raw.user_id ?? raw.userId;
    if (typeof user === "string" || typeof user === "number") keys.add(`user:${String(user)}`);
  }
  return [...keys];
}

/** Chains tasks by key: a task starts once every earlier task sharing one of its keys has settled. */
export class SessionChains<T> {
  private readonly tails = new Map<string, Promise<T>>();

  /**
   * `task` receives the outcomes of the tasks it waited for. It must not reject (fold failures
   * into T): a rejection would be handed to every later task of the same keys.
   */
  run(keys: readonly string[], task: (previous: T[]) => Promise<T>): Promise<T> {
    const previous = new Set<Promise<T>>();
    for (const key of keys) {
      const tail = this.tails.get(key);
      if (tail) previous.add(tail);
    }
    const mine: Promise<T> = previous.size === 0 ? task([]) : Promise.all(previous).then(task);
    for (const key of keys) this.tails.set(key, mine);
    const forget = () => {
      for (const key of keys) if (this.tails.get(key) === mine) this.tails.delete(key);
    };
    mine.then(forget, forget);
    return mine;
  }

  /** Keys with a task queued or running (bounded by the stream's in-flight cap). */
  get size(): number {
    return this.tails.size;
  }
}

export interface Block {
  /** The refused batch the client must resend before later batches of this session. */
  seq: number;
  code: string;
  retryAfterMs?: number;
}

export class SessionBarrier {
  private readonly blocked = new Map<string, Block>();

  /** Marks `keys` blocked until `block.seq` is seen again (keeps the lowest seq per key). */
  block(keys: readonly string[], block: Block): void {
    for (const key of keys) {
      const current = this.blocked.get(key);
      if (!current || block.seq < current.seq) this.blocked.set(key, block);
    }
  }

  /**
   * The block that refuses a batch `seq` touching `keys`, or null when it may go. A batch whose
   * seq is at or below a key's block is the resend (or older): it goes, and unblocks the keys
   * it is the resend for.
   */
  check(keys: readonly string[], seq: number): Block | null {
    for (const key of keys) {
      const block = this.blocked.get(key);
      if (block && seq > block.seq) return block;
    }
    for (const key of keys) if (this.blocked.get(key)?.seq === seq) this.blocked.delete(key);
    return null;
  }

  get size(): number {
    return this.blocked.size;
  }
}

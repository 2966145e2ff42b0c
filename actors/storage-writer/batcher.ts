/**
 * Collects items into batches that close at `maxItems` or `maxWaitMs` after the batch's first
 * item, whichever comes first, and commits closed batches in order. `add` resolves when the
 * batch holding those items has been committed, and rejects if that commit failed, so a caller
 * acknowledges only what is durable.
 *
 * Group commit: batches that closed while a commit was running are joined into one commit (up
 * to `maxItems`, a single oversized add still whole) when it is their turn, instead of one
 * commit each. A commit has a fixed cost (a ClickHouse part, an fdatasync) on top of its
 * per-item cost; under load the queue would otherwise grow by one small commit per
 * `maxWaitMs`. Joined, each commit takes everything that arrived during the previous one, so
 * the batch size follows the load and a short `maxWaitMs` stays affordable. A failed joined
 * commit rejects every add() it carried. With `maxConcurrentCommits` > 1 (a sink whose writes
 * may overlap, such as ClickHouse inserts: each is its own part) up to that many commits run at
 * once, started in closing order; joining happens only while every slot is busy. Callers that
 * need an order between their items wait for one add() before the next (the session mailbox does).
 *
 * `minIntervalMs` spaces commit starts at least that far apart, whatever the slots allow: it caps
 * the commit rate (ClickHouse parts per second) without the linger's delay under load. A linger
 * of 0 with a minimum interval commits a batch as soon as a slot is free and the interval has
 * passed, so under load batches wait for nothing but a slot, and a trickle of events still makes
 * no more than 1000 / minIntervalMs commits per second.
 */
export interface BatcherOptions<T> {
  maxItems: number;
  maxWaitMs: number;
  commit: (items: T[]) => Promise<void>;
  /** Called after each commit attempt (for metrics). */
  onCommitted?: (info: { items: number; durationMs: number; error?: unknown }) => void;
  /** Commits that may run at once (default 1). */
  maxConcurrentCommits?: number;
  /** Least time between the starts of two commits, ms (default 0: no spacing). */
  minIntervalMs?: number;
  /** Clock for the spacing, ms (tests). Default `performance.now`. */
  now?: () => number;
}

interface OpenBatch<T> {
  items: T[];
  waiters: Array<{ resolve: () => void; reject: (err: unknown) => void }>;
  timer: NodeJS.Timeout | null;
}

export class Batcher<T> {
  private open: OpenBatch<T> | null = null;
  private pendingItems = 0;
  /** Closed batches waiting for a free commit slot. */
  private queued: OpenBatch<T>[] = [];
  private running = 0;
  private idleWaiters: Array<() => void> = [];
  private lastStartAt = -Infinity;
  /** Set while queued batches wait for `minIntervalMs` to pass. */
  private spacingTimer: NodeJS.Timeout | null = null;

  constructor(private readonly options: BatcherOptions<T>) {}

  /** Items added but not yet committed (open batch plus batches waiting to commit). */
  get pending(): number {
    return this.pendingItems;
  }

  add(items: readonly T[]): Promise<void> {
    if (items.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      let batch = this.open ?? this.openBatch();
      // A call's items stay together in one batch, so one call is acknowledged by one commit.
      if (batch.items.length > 0 && batch.items.length + items.length > this.options.maxItems) {
        this.close();
        batch = this.openBatch();
      }
      for (const item of items) batch.items.push(item);
      this.pendingItems += items.length;
      batch.waiters.push({ resolve, reject });
      if (batch.items.length >= this.options.maxItems) this.close();
    });
  }

  /** Closes the open batch now and resolves when everything added so far is committed. */
  async flush(): Promise<void> {
    this.close();
    if (this.running === 0 && this.queued.length === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private openBatch(): OpenBatch<T> {
    const batch: OpenBatch<T> = { items: [], waiters: [], timer: null };
    batch.timer = setTimeout(() => {
      if (this.open === batch) this.close();
    }, this.options.maxWaitMs);
    this.open = batch;
    return batch;
  }

  private close(): void {
    const batch = this.open;
    if (batch === null) return;
    this.open = null;
    if (batch.timer) clearTimeout(batch.timer);
    this.queued.push(batch);
    this.startCommits();
  }

  private now(): number {
    return this.options.now ? this.options.now() : performance.now();
  }

  /** Fills the free commit slots with the queued batches, joined up to maxItems. */
  private startCommits(): void {
    const slots = Math.max(1, this.options.maxConcurrentCommits ?? 1);
    const minInterval = this.options.minIntervalMs ?? 0;
    while (this.running < slots && this.queued.length > 0) {
      if (minInterval > 0) {
        const now = this.now();
        const wait = this.lastStartAt + minInterval - now;
        if (wait > 0) {
          // Batches closing meanwhile queue up and join this commit when the timer fires.
          this.spacingTimer ??= setTimeout(() => {
            this.spacingTimer = null;
            this.startCommits();
          }, Math.ceil(wait));
          return;
        }
        this.lastStartAt = now;
      }
      const first = this.queued.shift()!;
      let joined = first;
      while (this.queued.length > 0 && joined.items.length + this.queued[0]!.items.length <= this.options.maxItems) {
        const next = this.queued.shift()!;
        if (joined === first) joined = { items: first.items.slice(), waiters: first.waiters.slice(), timer: null };
        for (const item of next.items) joined.items.push(item);
        for (const waiter of next.waiters) joined.waiters.push(waiter);
      }
      this.running++;
      // commit() never rejects: failures go to the batch's waiters.
      void this.commit(joined).then(() => {
        this.running--;
        this.startCommits();
        if (this.running === 0 && this.queued.length === 0 && this.idleWaiters.length > 0) {
          const waiters = this.idleWaiters;
          this.idleWaiters = [];
          for (const resolve of waiters) resolve();
        }
      });
    }
  }

  private async commit(batch: OpenBatch<T>): Promise<void> {
    const started = performance.now();
    let failure: { error: unknown } | null = null;
    try {
      await this.options.commit(batch.items);
    } catch (error) {
      failure = { error };
    }
    this.pendingItems -= batch.items.length;
    // A metrics hook that throws must neither fail a committed batch nor stall the commit chain.
    try {
      this.options.onCommitted?.({ items: batch.items.length, durationMs: performance.now() - started, ...(failure ?? {}) });
    } catch {
      // observability only
    }
    if (failure) for (const waiter of batch.waiters) waiter.reject(failure.error);
    else for (const waiter of batch.waiters) waiter.resolve();
  }
}

/**
 * Collects items into batches that close at `maxItems` or `maxWaitMs` after the batch's first
 * item, whichever comes first, and commits closed batches one at a time, in order. `add`
 * resolves when the batch holding those items has been committed, and rejects if that commit
 * failed, so a caller acknowledges only what is durable.
 */
export interface BatcherOptions<T> {
  maxItems: number;
  maxWaitMs: number;
  commit: (items: T[]) => Promise<void>;
  /** Called after each commit attempt (for metrics). */
  onCommitted?: (info: { items: number; durationMs: number; error?: unknown }) => void;
}

interface OpenBatch<T> {
  items: T[];
  waiters: Array<{ resolve: () => void; reject: (err: unknown) => void }>;
  timer: NodeJS.Timeout | null;
}

export class Batcher<T> {
  private open: OpenBatch<T> | null = null;
  private committing: Promise<void> = Promise.resolve();
  private pendingItems = 0;

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
    await this.committing;
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
    this.committing = this.committing.then(() => this.commit(batch));
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

/**
 * The forwarder's delivery loop, free of Moleculer: a bounded FIFO of durable events (already in
 * per-session order) delivered downstream in batches, one batch at a time so order holds, with
 * capped exponential backoff and jitter between failed attempts. A dead target never blocks
 * ingestion: when the queue is full the oldest events are dropped, counted and reported through
 * `onDrop`, never silently.
 */
export interface ForwardQueueOptions<T> {
  deliver: (items: T[]) => Promise<void>;
  maxBatch: number;
  maxQueued: number;
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  /** Attempts per batch before it is dropped (Infinity = keep trying while there is room). */
  maxAttempts?: number;
  onDelivered?: (count: number) => void;
  onFailure?: (error: unknown, attempt: number) => void;
  onDrop?: (count: number, reason: "queue_full" | "attempts_exhausted") => void;
  random?: () => number;
}

export class ForwardQueue<T> {
  private queue: T[] = [];
  private head = 0;
  private inFlightEnd = 0;
  private running = false;
  private stopped = false;
  private wake: (() => void) | null = null;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly options: ForwardQueueOptions<T>) {}

  get size(): number {
    return this.queue.length - this.head;
  }

  push(items: readonly T[]): void {
    if (this.stopped) {
      this.options.onDrop?.(items.length, "queue_full");
      return;
    }
    for (const item of items) this.queue.push(item);
    const overflow = this.size - this.options.maxQueued;
    if (overflow > 0) {
      // Drop the oldest events that are not already in flight (those are being delivered).
      const dropFrom = Math.max(this.head, this.inFlightEnd);
      const dropped = this.queue.splice(dropFrom, overflow).length;
      if (dropped > 0) this.options.onDrop?.(dropped, "queue_full");
    }
    if (!this.running) void this.run();
    this.wake?.();
  }

  /** Resolves when the queue is empty (or the queue was stopped). */
  idle(): Promise<void> {
    if (this.size === 0 && !this.running) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops delivering; what is still queued (not the batch in flight) is reported through onDrop. */
  stop(): void {
    this.stopped = true;
    // The in-flight batch is reported by run(): delivered if its attempt succeeds, dropped if not.
    const left = this.queue.length - Math.max(this.head, this.inFlightEnd);
    this.queue = [];
    this.head = 0;
    this.inFlightEnd = 0;
    if (left > 0) this.options.onDrop?.(left, "queue_full");
    this.wake?.();
  }

  private async run(): Promise<void> {
    this.running = true;
    const base = this.options.baseBackoffMs ?? 100;
    const cap = this.options.maxBackoffMs ?? 30_000;
    const random = this.options.random ?? Math.random;
    try {
      while (!this.stopped && this.size > 0) {
        const end = Math.min(this.queue.length, this.head + this.options.maxBatch);
        const batch = this.queue.slice(this.head, end);
        this.inFlightEnd = end;
        let attempt = 0;
        for (;;) {
          try {
            await this.options.deliver(batch);
            this.options.onDelivered?.(batch.length);
            break;
          } catch (error) {
            attempt++;
            this.options.onFailure?.(error, attempt);
            if (this.stopped) {
              this.options.onDrop?.(batch.length, "queue_full");
              return;
            }
            if (attempt >= (this.options.maxAttempts ?? Infinity)) {
              this.options.onDrop?.(batch.length, "attempts_exhausted");
              break;
            }
            // Full jitter: retries from many nodes do not arrive in lockstep.
            await this.sleep(random() * Math.min(cap, base * 2 ** (attempt - 1)));
            if (this.stopped) {
              this.options.onDrop?.(batch.length, "queue_full");
              return;
            }
          }
        }
        if (this.stopped) return;
        this.head = end;
        this.inFlightEnd = 0;
        this.compact();
      }
    } finally {
      this.running = false;
      if (this.size === 0 || this.stopped) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        waiters.forEach((w) => w());
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        if (this.stopped) done();
      };
    });
  }

  private compact(): void {
    if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }
}

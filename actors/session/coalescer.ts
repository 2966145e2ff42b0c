/**
 * Joins the items handed over in one event-loop turn into a single downstream call: many
 * session mailboxes finish their turns in the same tick, and they should cost one storage call
 * (or one JetStream publish), not one each. Order of `add` calls is the order in the batch.
 */
export class Coalescer<T> {
  private items: T[] = [];
  private weight = 0;
  private waiters: Array<{ resolve: () => void; reject: (err: unknown) => void }> = [];
  private scheduled = false;

  /**
   * `maxWeight`: a call is sent at once when its items weigh this much (`weigh`: 1 per item
   * unless given, e.g. the events in a piece of a batch).
   */
  constructor(
    private readonly send: (items: T[]) => Promise<void>,
    private readonly maxWeight: number,
    private readonly weigh?: (item: T) => number,
  ) {}

  add(items: readonly T[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      for (const item of items) {
        this.items.push(item);
        this.weight += this.weigh ? this.weigh(item) : 1;
      }
      this.waiters.push({ resolve, reject });
      if (this.weight >= this.maxWeight) this.drain();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.drain());
      }
    });
  }

  private drain(): void {
    this.scheduled = false;
    if (this.waiters.length === 0) return;
    const items = this.items;
    const waiters = this.waiters;
    this.items = [];
    this.weight = 0;
    this.waiters = [];
    this.send(items).then(
      () => waiters.forEach((w) => w.resolve()),
      (error: unknown) => waiters.forEach((w) => w.reject(error)),
    );
  }
}

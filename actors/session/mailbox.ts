/**
 * One mailbox per key: work items for the same key run one at a time, in the order they were
 * posted; different keys run concurrently. A mailbox exists only while it has work, so idle
 * sessions cost nothing.
 */
export class MailboxRegistry {
  private readonly tails = new Map<string, Promise<unknown>>();

  /** Number of keys with queued or running work. */
  get active(): number {
    return this.tails.size;
  }

  /**
   * Runs `turn` after every earlier turn of `key` has settled (fulfilled or rejected: one
   * failed turn must not wedge the session). Resolves or rejects with the turn's own result.
   */
  post<T>(key: string, turn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key);
    const result = previous === undefined ? turn() : previous.then(turn, turn);
    // The tail swallows the outcome so the chain never rejects; callers see it through `result`.
    const tail = result.then(noop, noop);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** Resolves once every turn posted so far has settled. */
  async idle(): Promise<void> {
    while (this.tails.size > 0) {
      await Promise.all([...this.tails.values()]);
    }
  }
}

function noop(): void {}

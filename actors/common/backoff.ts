/** Capped exponential backoff with full jitter: retries from many workers spread out instead of arriving together. */
export function backoffDelay(attempt: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  return Math.floor(random() * Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1)));
}

/** A sleep that `wake()` ends early (used to stop retry loops promptly on shutdown). */
export class Sleeper {
  private timers = new Set<() => void>();

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.timers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.timers.add(done);
    });
  }

  wakeAll(): void {
    for (const done of [...this.timers]) done();
  }
}

/**
 * A per-second rate over the last `windowMs` from samples of an ever-growing counter, for the
 * status page ("events/s over the last minute"). Counters are read every few seconds instead of
 * counting each event a second time on the hot path.
 */
export class RateWindow {
  private readonly samples: Array<{ at: number; total: number }> = [];

  constructor(private readonly windowMs: number) {}

  record(at: number, total: number): void {
    this.samples.push({ at, total });
    // Keep one sample at or before the window's start as the baseline, drop older ones.
    while (this.samples.length > 2 && this.samples[1]!.at <= at - this.windowMs) this.samples.shift();
  }

  /** Per second between the baseline and the newest sample; null before two samples or after a counter reset. */
  perSecond(): number | null {
    if (this.samples.length < 2) return null;
    const first = this.samples[0]!;
    const last = this.samples[this.samples.length - 1]!;
    const seconds = (last.at - first.at) / 1000;
    const delta = last.total - first.total;
    if (seconds <= 0 || delta < 0) return null;
    return delta / seconds;
  }
}

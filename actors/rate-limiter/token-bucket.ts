/**
 * A token bucket: `ratePerSec` tokens refill continuously up to `burst`. Pure: the caller passes
 * the clock, so tests and the service agree on time without timers.
 */
export interface BucketLimits {
  ratePerSec: number;
  burst: number;
}

export interface TakeResult {
  granted: number;
  /** When nothing (or less than asked) was granted: ms until `wanted` tokens would be there. */
  retryAfterMs: number;
}

export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private limits: BucketLimits,
    now: number,
  ) {
    this.tokens = limits.burst;
    this.updatedAt = now;
  }

  setLimits(limits: BucketLimits): void {
    this.limits = limits;
    this.tokens = Math.min(this.tokens, limits.burst);
  }

  /** Takes `limits` when they differ from the bucket's (reloaded settings), keeping at most the new burst. */
  adoptLimits(limits: BucketLimits): void {
    if (limits.ratePerSec !== this.limits.ratePerSec || limits.burst !== this.limits.burst) this.setLimits(limits);
  }

  available(now: number): number {
    this.refill(now);
    return this.tokens;
  }

  /**
   * Takes between `min` and `wanted` tokens: all of `wanted` when there, else whatever is there
   * if that is at least `min`, else nothing. Leasing edges ask for a chunk (`wanted`) but can
   * live with just what the current request needs (`min`).
   */
  take(now: number, wanted: number, min = wanted): TakeResult {
    this.refill(now);
    const floor = Math.min(min, wanted);
    if (this.tokens >= wanted) {
      this.tokens -= wanted;
      return { granted: wanted, retryAfterMs: 0 };
    }
    const whole = Math.floor(this.tokens);
    if (whole >= floor && whole > 0) {
      this.tokens -= whole;
      return { granted: whole, retryAfterMs: 0 };
    }
    // A request larger than the burst can never pass; say so with the time to a full bucket.
    const needed = Math.min(floor, this.limits.burst) - this.tokens;
    return { granted: 0, retryAfterMs: Math.max(1, Math.ceil((needed / this.limits.ratePerSec) * 1000)) };
  }

  /** Gives back tokens a lease did not use (capped at the burst). */
  refund(now: number, tokens: number): void {
    this.refill(now);
    this.tokens = Math.min(this.limits.burst, this.tokens + tokens);
  }

  private refill(now: number): void {
    const elapsed = now - this.updatedAt;
    if (elapsed > 0) {
      this.tokens = Math.min(this.limits.burst, this.tokens + (elapsed / 1000) * this.limits.ratePerSec);
      this.updatedAt = now;
    }
  }
}

/**
 * A circuit breaker for the forward target. Closed: calls go through. After `failureThreshold`
 * consecutive failures it opens: calls fail at once without touching the target, so a dead
 * target costs nothing. After `cooldownMs` it lets one probe through (half-open): success closes
 * it, failure opens it again for another cooldown. Pure: the caller passes the clock.
 */
export type CircuitState = "closed" | "open" | "half-open";

export class CircuitOpenError extends Error {
  constructor(readonly retryInMs: number) {
    super(`forward target circuit is open; next probe in ${retryInMs} ms`);
    this.name = "CircuitOpenError";
  }
}

export interface CircuitBreakerOptions {
  failureThreshold: number;
  cooldownMs: number;
  now?: () => number;
  onStateChange?: (state: CircuitState) => void;
}

export class CircuitBreaker {
  private failures = 0;
  private openedAt = 0;
  private current: CircuitState = "closed";
  private probing = false;
  private readonly now: () => number;

  constructor(private readonly options: CircuitBreakerOptions) {
    this.now = options.now ?? Date.now;
  }

  get state(): CircuitState {
    if (this.current === "open" && this.now() - this.openedAt >= this.options.cooldownMs) return "half-open";
    return this.current;
  }

  /** Runs `call` if the circuit allows it; otherwise throws CircuitOpenError without calling. */
  async run<T>(call: () => Promise<T>): Promise<T> {
    const state = this.state;
    if (state === "open" || (state === "half-open" && this.probing)) {
      throw new CircuitOpenError(Math.max(0, this.options.cooldownMs - (this.now() - this.openedAt)));
    }
    const probe = state === "half-open";
    if (probe) {
      this.probing = true;
      this.transition("half-open");
    }
    try {
      const result = await call();
      this.failures = 0;
      this.transition("closed");
      return result;
    } catch (error) {
      this.failures++;
      if (probe || this.failures >= this.options.failureThreshold) {
        this.openedAt = this.now();
        this.transition("open");
      }
      throw error;
    } finally {
      if (probe) this.probing = false;
    }
  }

  private transition(next: CircuitState): void {
    if (this.current === next) return;
    this.current = next;
    this.options.onStateChange?.(next);
  }
}

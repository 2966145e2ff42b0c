/**
 * Edge-side token leases. Each key's bucket lives in exactly one rate-limiter, so N edges do not
 * multiply the limit; to avoid a call per request, an edge leases a chunk of tokens and spends
 * it locally. Leases expire quickly so tokens an edge does not use return to the pool's rate.
 */
export interface LeaseGrant {
  granted: number;
  retryAfterMs: number;
}

export type AcquireLease = (key: string, wanted: number, min: number) => Promise<LeaseGrant>;

export interface LeaseOptions {
  /** Tokens to ask for beyond what the request needs. */
  chunk: (key: string) => number;
  /** A lease is spent or void after this long. */
  ttlMs: number;
  now?: () => number;
}

interface Lease {
  tokens: number;
  expiresAt: number;
}

/** How long a refusal is remembered locally (bounded so a refilled bucket is not ignored for long). */
const DENIAL_CACHE_MS = 50;
/** Times a request waits for another's lease before it asks for its own. */
const MAX_WAIT_ROUNDS = 3;

export type TakeOutcome = { ok: true } | { ok: false; retryAfterMs: number };

export class LeaseCache {
  private readonly leases = new Map<string, Lease>();
  private readonly deniedUntil = new Map<string, { until: number; retryAt: number }>();
  private readonly inFlight = new Map<string, Promise<void>>();
  /** Tokens that requests waiting on a key's in-flight lease will need. */
  private readonly waiting = new Map<string, number>();
  private readonly now: () => number;

  constructor(
    private readonly acquire: AcquireLease,
    private readonly options: LeaseOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /**
   * Spends `count` tokens of `key`. At most one lease request per key is in flight: concurrent
   * requests that find the lease empty wait for that one and then spend from what it brought,
   * instead of each leasing a chunk (which would drain the bucket many times over).
   */
  async take(key: string, count: number): Promise<TakeOutcome> {
    for (let round = 0; ; round++) {
      const now = this.now();
      const lease = this.liveLease(key, now);
      if (lease && lease.tokens >= count) {
        lease.tokens -= count;
        return { ok: true };
      }
      // A key that was just refused is refused locally for a moment: under overload a refused
      // client must not cost a limiter call per request.
      const denied = this.deniedUntil.get(key);
      if (denied !== undefined) {
        if (denied.until > now) return { ok: false, retryAfterMs: Math.max(1, denied.retryAt - now) };
        this.deniedUntil.delete(key);
      }
      const inFlight = this.inFlight.get(key);
      if (inFlight && round < MAX_WAIT_ROUNDS) {
        // Say what we are waiting for, so the next lease request asks for it too: one lease per
        // round trip then serves every waiting request, however long the round trip is.
        this.waiting.set(key, (this.waiting.get(key) ?? 0) + count);
        await inFlight;
        const left = (this.waiting.get(key) ?? count) - count;
        if (left > 0) this.waiting.set(key, left);
        else this.waiting.delete(key);
        continue;
      }
      const need = count - (lease?.tokens ?? 0);
      const wanted = need + (this.waiting.get(key) ?? 0) + this.options.chunk(key);
      const request = this.acquire(key, wanted, need).then((grant) => {
        if (grant.granted > 0) {
          const at = this.now();
          const current = this.liveLease(key, at);
          this.leases.set(key, { tokens: (current?.tokens ?? 0) + grant.granted, expiresAt: at + this.options.ttlMs });
        }
        return grant;
      });
      const settled = request.then(
        () => undefined,
        () => undefined,
      );
      this.inFlight.set(key, settled);
      void settled.then(() => {
        if (this.inFlight.get(key) === settled) this.inFlight.delete(key);
      });
      const grant = await request;
      if (grant.granted < need) {
        const retryAfterMs = Math.max(1, grant.retryAfterMs);
        const at = this.now();
        this.deniedUntil.set(key, { until: at + Math.min(retryAfterMs, DENIAL_CACHE_MS), retryAt: at + retryAfterMs });
        return { ok: false, retryAfterMs };
      }
      // The grant is in the lease now; the next round spends from it.
    }
  }

  private liveLease(key: string, now: number): Lease | undefined {
    const lease = this.leases.get(key);
    if (lease && lease.expiresAt <= now) {
      this.leases.delete(key);
      return undefined;
    }
    return lease;
  }

  /** Drops leases that expired (called periodically so idle keys do not pile up). */
  sweep(): void {
    const now = this.now();
    for (const [key, lease] of this.leases) if (lease.expiresAt <= now) this.leases.delete(key);
    for (const [key, denied] of this.deniedUntil) if (denied.until <= now) this.deniedUntil.delete(key);
  }
}

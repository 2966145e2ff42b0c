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

export type TakeOutcome = { ok: true } | { ok: false; retryAfterMs: number };

export class LeaseCache {
  private readonly leases = new Map<string, Lease>();
  private readonly deniedUntil = new Map<string, { until: number; retryAt: number }>();
  private readonly now: () => number;

  constructor(
    private readonly acquire: AcquireLease,
    private readonly options: LeaseOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  async take(key: string, count: number): Promise<TakeOutcome> {
    const now = this.now();
    let lease = this.leases.get(key);
    if (lease && lease.expiresAt <= now) {
      this.leases.delete(key);
      lease = undefined;
    }
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
    const have = lease?.tokens ?? 0;
    const need = count - have;
    const grant = await this.acquire(key, need + this.options.chunk(key), need);
    if (grant.granted < need) {
      const retryAfterMs = Math.max(1, grant.retryAfterMs);
      const at = this.now();
      this.deniedUntil.set(key, { until: at + Math.min(retryAfterMs, DENIAL_CACHE_MS), retryAt: at + retryAfterMs });
      return { ok: false, retryAfterMs };
    }
    // Re-read: other requests may have changed the lease while we waited.
    const current = this.leases.get(key);
    const leftover = (current && current.expiresAt > this.now() ? current.tokens : 0) + grant.granted - count;
    this.leases.set(key, { tokens: leftover, expiresAt: this.now() + this.options.ttlMs });
    return { ok: true };
  }

  /** Drops leases that expired (called periodically so idle keys do not pile up). */
  sweep(): void {
    const now = this.now();
    for (const [key, lease] of this.leases) if (lease.expiresAt <= now) this.leases.delete(key);
    for (const [key, denied] of this.deniedUntil) if (denied.until <= now) this.deniedUntil.delete(key);
  }
}

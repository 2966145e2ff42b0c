/**
 * The per-user rate limit (seed 002's "per-user limiting"): one token bucket per user of a
 * tenant, so one runaway client (an app stuck in a loop) is slowed down without spending the
 * tenant's key bucket that every other user shares. An event counts for its `user_id`, else its
 * `session_id` (the stand-in for an anonymous device); one with neither is not limited.
 *
 * Runs on the edge before validation, on the raw events, so a flood costs no validation; and per
 * edge node, from its own buckets (a user whose requests reach N edges may send up to N times the
 * rate: the limit is a guard against floods, not a quota). Buckets live in a bounded LRU: an
 * active user is always recent, and a forgotten one comes back with a full bucket.
 */
import { TokenBucket, type BucketLimits } from "../../actors/rate-limiter/token-bucket";
import { ScopedLru } from "../../actors/common/scoped-lru";
import { idText } from "../../actors/validator/normalize";

/** An event over its user's limit. */
export interface ThrottledEvent {
  /** Its index in the request. */
  index: number;
  /** When that user's bucket holds the events of the request it could not take. */
  retryAfterMs: number;
}

/** Buckets one edge keeps at most (about 100 bytes each). */
export const MAX_TRACKED_USERS = 100_000;

export class UserLimiter {
  private readonly buckets: ScopedLru<TokenBucket>;
  /** Per tenant: the scope of its user ids and the scope of its session ids (apart, so a user and a session of one name never share a bucket). */
  private readonly scopes = new Map<string, readonly [string, string]>();

  constructor(maxTracked = MAX_TRACKED_USERS) {
    this.buckets = new ScopedLru<TokenBucket>(maxTracked);
  }

  /**
   * Takes each user's events of one request from its bucket, in request order: a user's first
   * events pass while tokens last, the rest are over the limit. Returns those, by index.
   */
  throttle(tenant: string, limits: BucketLimits, events: readonly unknown[], now: number): ThrottledEvent[] {
    // Each sender's indices, in order; most requests come from one sender.
    const byUser = new Map<string, number[]>();
    const bySession = new Map<string, number[]>();
    for (let index = 0; index < events.length; index++) {
      const event = events[index];
      if (typeof event !== "object" || event === null || Array.isArray(event)) continue;
      const raw = event as Record<string, unknown>;
      const user = idText(raw, "user_id");
      if (user !== null) {
        append(byUser, user, index);
        continue;
      }
      const session = idText(raw, "session_id");
      if (session !== null) append(bySession, session, index);
    }
    const [userScope, sessionScope] = this.scopesOf(tenant);
    const throttled: ThrottledEvent[] = [];
    this.take(userScope, byUser, limits, now, throttled);
    this.take(sessionScope, bySession, limits, now, throttled);
    return throttled.sort((a, b) => a.index - b.index);
  }

  /** Buckets held now. */
  get tracked(): number {
    return this.buckets.size;
  }

  private take(scope: string, senders: Map<string, number[]>, limits: BucketLimits, now: number, throttled: ThrottledEvent[]): void {
    for (const [id, indices] of senders) {
      let bucket = this.buckets.get(scope, id);
      if (bucket === undefined) {
        bucket = new TokenBucket(limits, now);
        this.buckets.set(scope, id, bucket);
      } else {
        bucket.adoptLimits(limits); // the tenant's settings may have been reloaded (SIGHUP)
      }
      const granted = bucket.take(now, indices.length, 1).granted;
      if (granted === indices.length) continue;
      const missing = Math.min(indices.length - granted, limits.burst);
      const retryAfterMs = Math.max(1, Math.ceil((missing / limits.ratePerSec) * 1000));
      for (let i = granted; i < indices.length; i++) throttled.push({ index: indices[i]!, retryAfterMs });
    }
  }

  private scopesOf(tenant: string): readonly [string, string] {
    let scopes = this.scopes.get(tenant);
    if (!scopes) {
      scopes = [`${tenant}\u0000user`, `${tenant}\u0000session`];
      this.scopes.set(tenant, scopes);
    }
    return scopes;
  }
}

function append(senders: Map<string, number[]>, id: string, index: number): void {
  const indices = senders.get(id);
  if (indices) indices.push(index);
  else senders.set(id, [index]);
}

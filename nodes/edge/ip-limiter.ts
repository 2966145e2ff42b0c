/**
 * A token bucket per client address for requests that carry no valid API key. It exists to
 * slow down key guessing: within the budget a caller learns "401 unauthorized", beyond it only
 * "429, retry after n s". Local to each edge on purpose: a guesser spread over N edges gets N
 * budgets, which is still orders of magnitude too slow to guess a key, and a cluster call per
 * unauthenticated request would hand an attacker a cheap way to load the rate-limiters.
 *
 * IPv6 clients are bucketed by /64: one host usually owns a whole /64 and could otherwise
 * rotate addresses inside it for a fresh bucket each time.
 */
import { LRUCache } from "lru-cache";
import { TokenBucket, type BucketLimits } from "../../actors/rate-limiter/token-bucket";
import { expandIpv6 } from "./client-address";

export interface IpLimiterOptions extends BucketLimits {
  /** Most addresses tracked; the least recently seen are forgotten first (they come back full). */
  maxClients?: number;
  now?: () => number;
}

export type IpTakeOutcome = { ok: true } | { ok: false; retryAfterMs: number };

export class IpLimiter {
  private readonly buckets: LRUCache<string, TokenBucket>;
  private readonly limits: BucketLimits;
  private readonly now: () => number;

  constructor(options: IpLimiterOptions) {
    this.limits = { ratePerSec: options.ratePerSec, burst: options.burst };
    this.now = options.now ?? Date.now;
    this.buckets = new LRUCache({ max: options.maxClients ?? 100_000 });
  }

  /** Spends one token of `address`'s bucket. */
  take(address: string): IpTakeOutcome {
    const key = clientKey(address);
    const now = this.now();
    let bucket = this.buckets.get(key);
    if (!bucket) {
      bucket = new TokenBucket(this.limits, now);
      this.buckets.set(key, bucket);
    }
    const result = bucket.take(now, 1);
    return result.granted === 1 ? { ok: true } : { ok: false, retryAfterMs: result.retryAfterMs };
  }

  get size(): number {
    return this.buckets.size;
  }
}

/**
 * The bucket key of an address: IPv4 as is (also when written IPv4-mapped, `::ffff:10.0.0.1`),
 * IPv6 as its first four groups, expanded so that every spelling of one /64 is the same key.
 */
export function clientKey(address: string): string {
  const text = address.trim().toLowerCase();
  if (!text.includes(":")) return text;
  const groups = expandIpv6(text);
  if (groups === null) return text;
  // A dual-stack socket sees IPv4 clients as ::ffff:a.b.c.d (uWS may print it in hex groups).
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `${groups[6]! >> 8}.${groups[6]! & 0xff}.${groups[7]! >> 8}.${groups[7]! & 0xff}`;
  }
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(":")}::/64`;
}

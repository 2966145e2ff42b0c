/**
 * The rate-limiter service: owns token buckets and grants leases of tokens to edges.
 * Buckets of keys not seen for a while are evicted (an evicted bucket comes back full, which
 * is what an idle key would have refilled to anyway).
 */
import type { Context, ServiceSchema } from "moleculer";
import { LRUCache } from "lru-cache";
import type { Config } from "../../config/env";
import { TokenBucket, type BucketLimits, type TakeResult } from "./token-bucket";

export interface LeaseParams {
  key: string;
  wanted: number;
  min: number;
}

export function createRateLimiterService(config: Config): ServiceSchema {
  const limits: BucketLimits = { ratePerSec: config.rateLimitEventsPerSec, burst: config.rateLimitBurst };
  // A bucket left alone for burst/rate seconds is full again, so forgetting it changes nothing.
  const idleMs = Math.max(1000, Math.ceil((limits.burst / limits.ratePerSec) * 1000));
  const buckets = new LRUCache<string, TokenBucket>({ max: 1_000_000, ttl: idleMs, updateAgeOnGet: true });

  return {
    name: "rate-limiter",
    actions: {
      lease: {
        handler(ctx: Context<LeaseParams>): TakeResult {
          const { key, wanted, min } = ctx.params;
          const now = Date.now();
          let bucket = buckets.get(key);
          if (!bucket) {
            bucket = new TokenBucket(limits, now);
            buckets.set(key, bucket);
          }
          return bucket.take(now, wanted, min);
        },
      },
    },
  };
}

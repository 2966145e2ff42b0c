/**
 * The rate-limiter service: owns token buckets and grants leases of tokens to edges.
 * Each lease request carries the limits of the key's tenant (the edge resolved them from the
 * tenant table); a bucket adopts new limits when they change (a config roll-out), keeping at
 * most the new burst. Buckets of keys not seen for a while are evicted (an evicted bucket
 * comes back full, which is what an idle key would have refilled to anyway).
 */
import type { Context, ServiceSchema } from "moleculer";
import { LRUCache } from "lru-cache";
import type { Config } from "../../config/env";
import { TokenBucket, type BucketLimits, type TakeResult } from "./token-bucket";

export interface LeaseParams {
  key: string;
  wanted: number;
  min: number;
  /** The key's limits; absent: the defaults from RATE_LIMIT_EVENTS_PER_SEC / RATE_LIMIT_BURST. */
  ratePerSec?: number;
  burst?: number;
}

export function createRateLimiterService(config: Config): ServiceSchema {
  const defaults: BucketLimits = { ratePerSec: config.rateLimitEventsPerSec, burst: config.rateLimitBurst };
  const buckets = new LRUCache<string, TokenBucket>({ max: 1_000_000, updateAgeOnGet: true });

  return {
    name: "rate-limiter",
    actions: {
      lease: {
        handler(ctx: Context<LeaseParams>): TakeResult {
          const { key, wanted, min } = ctx.params;
          const ratePerSec = ctx.params.ratePerSec ?? defaults.ratePerSec;
          const burst = ctx.params.burst ?? defaults.burst;
          const now = Date.now();
          const limits: BucketLimits = { ratePerSec, burst };
          let bucket = buckets.get(key);
          if (!bucket) bucket = new TokenBucket(limits, now);
          else bucket.adoptLimits(limits);
          // A bucket left alone for burst/rate seconds is full again, so forgetting it changes nothing.
          buckets.set(key, bucket, { ttl: Math.max(1000, Math.ceil((burst / ratePerSec) * 1000)) });
          return bucket.take(now, wanted, min);
        },
      },
    },
  };
}

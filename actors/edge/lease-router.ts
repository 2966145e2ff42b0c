/**
 * Sends an edge's token-lease requests to the rate-limiter that owns the key's bucket.
 *
 * Cluster mode: owners come from a consistent-hash ring over the nodes running `rate-limiter`
 * (the same ring every edge computes), so each key's bucket lives on exactly one node and N
 * edges share one limit instead of multiplying it. If the owner fails the call (gone, draining,
 * unreachable), it is left out of this edge's ring for a while and the lease is asked of the
 * next owner, once. That owner starts the key with a full bucket: for a few seconds after a
 * rate-limiter dies a key may get up to one extra burst, never more.
 *
 * Single-process mode: the local rate-limiter.
 */
import { Errors, type ServiceBroker } from "moleculer";
import type { BucketLimits } from "../rate-limiter/token-bucket";
import type { LeaseParams } from "../rate-limiter/rate-limiter.service";
import type { LeaseGrant } from "../../nodes/edge/rate-lease";
import { ServiceRing } from "../common/service-ring";
import { isRetryable } from "./session-router";

/** How long a rate-limiter that failed a call stays out of this edge's ring. */
const EXCLUDE_MS = 5_000;

export interface LeaseRouterOptions {
  cluster: boolean;
  callTimeoutMs: number;
}

export class LeaseRouter {
  private readonly ring: ServiceRing | null;

  constructor(
    private readonly broker: ServiceBroker,
    private readonly options: LeaseRouterOptions,
  ) {
    this.ring = options.cluster ? new ServiceRing(broker, "rate-limiter") : null;
  }

  close(): void {
    this.ring?.close();
  }

  /** The node whose rate-limiter owns `key` (undefined in single-process mode or with none up). */
  ownerOf(key: string): string | undefined {
    return this.ring?.owner(key);
  }

  async acquire(key: string, wanted: number, min: number, limits: BucketLimits): Promise<LeaseGrant> {
    const params: LeaseParams = { key, wanted, min, ratePerSec: limits.ratePerSec, burst: limits.burst };
    if (!this.ring) return this.call(params, undefined);
    const owner = this.ring.owner(key);
    if (owner === undefined) throw new Errors.ServiceNotAvailableError({ action: "rate-limiter.lease" });
    try {
      return await this.call(params, owner);
    } catch (error) {
      if (!isRetryable(error)) throw error;
      this.ring.exclude(owner, EXCLUDE_MS);
      const next = this.ring.owner(key);
      if (next === undefined || next === owner) throw error;
      this.broker.logger.warn({ err: error, owner, next }, "rate-limiter owner failed; leasing from the next owner");
      return this.call(params, next);
    }
  }

  private call(params: LeaseParams, nodeID: string | undefined): Promise<LeaseGrant> {
    return this.broker.call<LeaseGrant, LeaseParams>("rate-limiter.lease", params, {
      nodeID,
      timeout: this.options.callTimeoutMs,
      retries: 0,
    });
  }
}

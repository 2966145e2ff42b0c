/**
 * The validator service: one call validates a whole request's events. Thin wrapper around
 * validateBatch; the checks it runs (limits, schema packs, privacy policy) are built once at
 * start-up from the configuration (event-checks.ts).
 */
import type { Context, ServiceSchema } from "moleculer";
import type { Config } from "../../config/env";
import { METRIC } from "../common/metrics";
import { eventChecksFromConfig } from "./event-checks";
import { validateBatch, type BatchValidation, type EventCheck } from "./validate-batch";

export interface ValidateParams {
  tenantId: string;
  receivedAt: number;
  idempotencyKey?: string;
  /** See NormalizeContext.clockOffsetMs. */
  clockOffsetMs?: number;
  events: unknown[];
}

/** `checks` replaces the configured checks (tests); by default they come from `config`. */
export function createValidatorService(config: Config, checks?: EventCheck[]): ServiceSchema {
  let countPii: (tenant: string, kind: string, n: number) => void = () => undefined;
  const eventChecks = checks ?? eventChecksFromConfig(config, (tenant, kind, n) => countPii(tenant, kind, n));
  return {
    name: "validator",
    created() {
      const metrics = this.broker.metrics;
      countPii = (tenant, kind, n) => metrics.increment(METRIC.piiDetections, { kind, tenant }, n);
    },
    actions: {
      validate: {
        handler(ctx: Context<ValidateParams>): BatchValidation {
          const { tenantId, receivedAt, idempotencyKey, clockOffsetMs, events } = ctx.params;
          return validateBatch(events, { tenantId, receivedAt, idempotencyKey, clockOffsetMs }, eventChecks);
        },
      },
    },
  };
}

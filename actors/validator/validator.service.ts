/**
 * The validator service: one call validates a whole request's events. Thin wrapper around
 * validateBatch; the checks it runs (limits, schema packs, privacy policy) are built at
 * start-up from the configuration (event-checks.ts), and again when SIGHUP reloads the tenant
 * settings (a pack that no longer compiles keeps the checks in use).
 */
import type { Context, ServiceSchema } from "moleculer";
import type { Config } from "../../config/env";
import type { TenantTable } from "../../config/tenants";
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
  const onPii = (tenant: string, kind: string, n: number) => countPii(tenant, kind, n);
  let eventChecks = checks ?? eventChecksFromConfig(config, onPii);
  return {
    name: "validator",
    events: {
      /** SIGHUP (nodes/node.ts): the tenant settings read again; schema packs and privacy policies follow. */
      "tenants.reload"(ctx: { params: TenantTable }) {
        if (checks) return; // fixed by a test
        try {
          eventChecks = eventChecksFromConfig({ ...config, tenants: ctx.params }, onPii);
          this.logger.info({ tenants: ctx.params.byTenant.size }, "validator checks rebuilt from the reloaded tenant settings");
        } catch (error) {
          this.logger.error({ err: error }, "validator checks not rebuilt: the checks in use stay");
        }
      },
    },
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

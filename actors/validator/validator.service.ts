/**
 * The validator service: one call validates a whole request's events. Thin wrapper around
 * validateBatch; the checks it runs are built once at start-up.
 */
import type { Context, ServiceSchema } from "moleculer";
import type { Config } from "../../config/env";
import { validateBatch, type BatchValidation, type EventCheck } from "./validate-batch";

export interface ValidateParams {
  tenantId: string;
  receivedAt: number;
  idempotencyKey?: string;
  events: unknown[];
}

export function createValidatorService(_config: Config, checks: EventCheck[] = []): ServiceSchema {
  return {
    name: "validator",
    actions: {
      validate: {
        handler(ctx: Context<ValidateParams>): BatchValidation {
          const { tenantId, receivedAt, idempotencyKey, events } = ctx.params;
          return validateBatch(events, { tenantId, receivedAt, idempotencyKey }, checks);
        },
      },
    },
  };
}

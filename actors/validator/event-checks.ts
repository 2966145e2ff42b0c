/**
 * The checks the validator runs on every normalised event, built once at start-up from the
 * configuration, cheapest first:
 *
 *   1. `limits`: event size, string length, properties keys, a timestamp ahead of the clock (event-limits.ts);
 *   2. `schema`: the tenant's JSON Schema packs (schema-registry.ts);
 *   3. `pii`: the tenant's privacy policy (pii.ts): redact rewrites the event, drop rejects it,
 *      allow keeps it; detections are reported by kind in every case.
 *
 * Schemas see the event as the client sent it (after normalisation), so a redacted value can
 * never turn a valid event invalid or the reverse; redaction is the last step before storage.
 */
import type { Config } from "../../config/env";
import { tenantSchemaPacks, tenantSettings } from "../../config/tenants";
import type { IngestEvent } from "../common/event";
import { checkEventLimits, type EventLimits } from "./event-limits";
import { applyPiiPolicy, type PiiKind, type PiiPolicy } from "./pii";
import { loadSchemaRegistry, type SchemaRegistry } from "./schema-registry";
import type { EventCheck } from "./validate-batch";

export interface EventCheckSettings {
  limits: EventLimits;
  /** null: no schema validation at all. */
  schemas: SchemaRegistry | null;
  piiPolicyOf(tenant: string): PiiPolicy;
  /** Called once per event in which something was found, per kind. */
  onPiiDetected?(tenant: string, kind: PiiKind, count: number): void;
}

export function buildEventChecks(settings: EventCheckSettings): EventCheck[] {
  const { limits, schemas, piiPolicyOf, onPiiDetected } = settings;
  const checks: EventCheck[] = [];

  checks.push((event: IngestEvent) => {
    const errors = checkEventLimits(event, limits);
    return errors.length === 0 ? { event } : { errors, reason: "limits" };
  });

  if (schemas !== null) {
    checks.push((event: IngestEvent) => {
      const errors = schemas.validate(event);
      // The registry's empty array is shared and frozen: copy before it travels.
      return errors.length === 0 ? { event } : { errors: [...errors], reason: "schema" };
    });
  }

  checks.push((event: IngestEvent) => {
    const result = applyPiiPolicy(event, piiPolicyOf(event.tenant_id));
    if (onPiiDetected) {
      for (const kind in result.detections) onPiiDetected(event.tenant_id, kind as PiiKind, result.detections[kind as PiiKind]!);
    }
    if (result.dropReason !== undefined) return { errors: [result.dropReason], reason: "pii" };
    return { event: result.event };
  });

  return checks;
}

/**
 * The checks for this node's configuration. Compiles every schema pack any tenant uses now, so
 * a broken schema stops start-up instead of failing requests.
 */
export function eventChecksFromConfig(
  config: Config,
  onPiiDetected?: (tenant: string, kind: PiiKind, count: number) => void,
): EventCheck[] {
  const tenantPacks = tenantSchemaPacks(config.tenants);
  const anyPacks = config.tenants.defaults.schemaPacks.length > 0 || Object.keys(tenantPacks).length > 0;
  const schemas = anyPacks
    ? loadSchemaRegistry({ schemasDir: config.schemasDir, defaultPacks: [...config.tenants.defaults.schemaPacks], tenantPacks })
    : null;
  return buildEventChecks({
    limits: {
      maxEventBytes: config.maxEventBytes,
      maxStringLength: config.maxStringLength,
      maxPropertiesKeys: config.maxPropertiesKeys,
      maxFutureMs: config.maxFutureTimestampSec * 1000,
    },
    schemas,
    piiPolicyOf: (tenant) => tenantSettings(config.tenants, tenant).piiPolicy,
    onPiiDetected,
  });
}

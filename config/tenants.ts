/**
 * Per-tenant settings: rate limits, privacy policy, silent mode and schema packs. Every tenant
 * gets the defaults from the environment (RATE_LIMIT_EVENTS_PER_SEC, RATE_LIMIT_BURST,
 * RATE_LIMIT_USER_EVENTS_PER_SEC, RATE_LIMIT_USER_BURST, PII_POLICY, SILENT_MODE, SCHEMA_PACKS);
 * TENANTS_FILE overrides them field by field:
 *
 *   {"tenants": {
 *     "acme":   {"rate_per_sec": 2000, "burst": 4000, "pii_policy": "drop", "schema_packs": ["core", "learning"]},
 *     "school": {"user_rate_per_sec": 20},
 *     "legacy": {"silent": true}
 *   }}
 *
 * Read and validated (ajv) at start-up, and again on SIGHUP (nodes/node.ts; a file that fails
 * then leaves the settings in use in place); a problem names TENANTS_FILE and the JSON path.
 * Every node of a cluster must be given the same file (and the same SIGHUP): the rate-limiter
 * that owns a key's bucket applies the limits the calling edge sends, and validators apply
 * their own copy of the policy.
 */
import fs from "node:fs";
import path from "node:path";
import { ConfigError } from "./config-error";
import { checkJson, compileFileSchema, readJsonFile } from "./json-file";
import { TENANT_PATTERN } from "./keys-file";

export const TENANTS_FILE_VARIABLE = "TENANTS_FILE";

export const PII_POLICIES = ["redact", "drop", "allow"] as const;
export type PiiPolicyName = (typeof PII_POLICIES)[number];

/** Same rule as the schema registry's pack names (actors/validator/schema-registry.ts). */
const PACK_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_-]*$";

export interface TenantSettings {
  /** Token bucket refill rate, events per second, per API key of the tenant. */
  ratePerSec: number;
  /** Token bucket size, events. */
  burst: number;
  /** Events per second one user (else one session) of the tenant may send, per edge node; 0: no such limit. */
  userRatePerSec: number;
  /** That bucket's size; null: twice `userRatePerSec`. */
  userBurst: number | null;
  piiPolicy: PiiPolicyName;
  /** Seed-000 compatibility: every answer is 200 {"success":true,"processed":n}. */
  silent: boolean;
  /** Schema packs under SCHEMAS_DIR, in order; they replace the default packs. */
  schemaPacks: readonly string[];
}

export interface TenantTable {
  /** TENANTS_FILE, read again by `reloadTenantTable`; null: every tenant has the defaults. */
  file: string | null;
  defaults: TenantSettings;
  /** Tenants named in TENANTS_FILE, with their overrides applied to the defaults. */
  byTenant: ReadonlyMap<string, TenantSettings>;
}

const validateTenantsFile = compileFileSchema({
  type: "object",
  required: ["tenants"],
  additionalProperties: false,
  properties: {
    tenants: {
      type: "object",
      propertyNames: { pattern: TENANT_PATTERN },
      additionalProperties: {
        type: "object",
        additionalProperties: false,
        properties: {
          rate_per_sec: { type: "number", exclusiveMinimum: 0, maximum: 1_000_000_000 },
          burst: { type: "integer", minimum: 1, maximum: 1_000_000_000 },
          user_rate_per_sec: { type: "number", minimum: 0, maximum: 1_000_000_000 },
          user_burst: { type: "integer", minimum: 1, maximum: 1_000_000_000 },
          pii_policy: { enum: [...PII_POLICIES] },
          silent: { type: "boolean" },
          schema_packs: { type: "array", uniqueItems: true, items: { type: "string", pattern: PACK_PATTERN } },
        },
      },
    },
  },
});

interface TenantFileEntry {
  rate_per_sec?: number;
  burst?: number;
  user_rate_per_sec?: number;
  user_burst?: number;
  pii_policy?: PiiPolicyName;
  silent?: boolean;
  schema_packs?: string[];
}

/** Validates the parsed content of a tenants file and applies it over `defaults`. */
export function parseTenantsFile(data: unknown, file: string, defaults: TenantSettings): Map<string, TenantSettings> {
  checkJson(TENANTS_FILE_VARIABLE, file, validateTenantsFile, data);
  const tenants = (data as { tenants: Record<string, TenantFileEntry> }).tenants;
  const byTenant = new Map<string, TenantSettings>();
  for (const [tenant, entry] of Object.entries(tenants)) {
    byTenant.set(tenant, {
      ratePerSec: entry.rate_per_sec ?? defaults.ratePerSec,
      burst: entry.burst ?? defaults.burst,
      userRatePerSec: entry.user_rate_per_sec ?? defaults.userRatePerSec,
      userBurst: entry.user_burst ?? defaults.userBurst,
      piiPolicy: entry.pii_policy ?? defaults.piiPolicy,
      silent: entry.silent ?? defaults.silent,
      schemaPacks: entry.schema_packs ?? defaults.schemaPacks,
    });
  }
  return byTenant;
}

/**
 * The tenant table: defaults, plus TENANTS_FILE when given. Every schema pack named anywhere
 * must exist under `schemasDir`, so a typo stops start-up here rather than in the validator.
 */
export function loadTenantTable(file: string | null, defaults: TenantSettings, schemasDir: string): TenantTable {
  assertPacksExist("SCHEMA_PACKS", schemasDir, defaults.schemaPacks, "");
  const byTenant = file === null ? new Map<string, TenantSettings>() : parseTenantsFile(readJsonFile(TENANTS_FILE_VARIABLE, file), file, defaults);
  for (const [tenant, settings] of byTenant) {
    if (settings.schemaPacks !== defaults.schemaPacks) {
      assertPacksExist(TENANTS_FILE_VARIABLE, schemasDir, settings.schemaPacks, `${file}: $.tenants.${tenant}.schema_packs`);
    }
  }
  return { file, defaults, byTenant };
}

/** The table read again from its file (SIGHUP), with the same defaults; throws ConfigError as at start-up. */
export function reloadTenantTable(table: TenantTable, schemasDir: string): TenantTable {
  return loadTenantTable(table.file, table.defaults, schemasDir);
}

export function tenantSettings(table: TenantTable, tenant: string): TenantSettings {
  return table.byTenant.get(tenant) ?? table.defaults;
}

/** A tenant's per-user bucket, or null when it has no per-user limit. */
export function userLimits(settings: TenantSettings): { ratePerSec: number; burst: number } | null {
  if (settings.userRatePerSec <= 0) return null;
  return { ratePerSec: settings.userRatePerSec, burst: settings.userBurst ?? Math.max(1, Math.ceil(2 * settings.userRatePerSec)) };
}

/** Tenants whose packs differ from the defaults: the schema registry's `tenantPacks`. */
export function tenantSchemaPacks(table: TenantTable): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((p, i) => p === b[i]);
  for (const [tenant, settings] of table.byTenant) {
    if (!same(settings.schemaPacks, table.defaults.schemaPacks)) out[tenant] = [...settings.schemaPacks];
  }
  return out;
}

/** SCHEMA_PACKS: a comma list of pack names (may be empty: `none`). */
export function parseSchemaPacks(value: string): string[] {
  if (value.trim() === "none") return [];
  const packs = value.split(",").map((p) => p.trim()).filter(Boolean);
  const pattern = new RegExp(PACK_PATTERN);
  for (const pack of packs) {
    if (!pattern.test(pack)) throw new ConfigError("SCHEMA_PACKS", `invalid pack name "${pack}"`);
  }
  if (new Set(packs).size !== packs.length) throw new ConfigError("SCHEMA_PACKS", "names a pack twice");
  return packs;
}

/**
 * The schema packs shipped with the node: config/schemas next to this file when run from the
 * sources, or the repository's config/schemas when run from dist/config (tsc copies no JSON).
 */
export function defaultSchemasDir(): string {
  const candidates = [path.join(__dirname, "schemas"), path.join(__dirname, "..", "..", "config", "schemas")];
  return candidates.find((dir) => fs.existsSync(dir)) ?? candidates[0]!;
}

function assertPacksExist(variable: string, schemasDir: string, packs: readonly string[], where: string): void {
  for (const pack of packs) {
    const dir = path.join(schemasDir, pack);
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
      const prefix = where === "" ? "" : `${where}: `;
      throw new ConfigError(variable, `${prefix}schema pack "${pack}" not found (no folder ${dir}; SCHEMAS_DIR is ${schemasDir})`);
    }
  }
}

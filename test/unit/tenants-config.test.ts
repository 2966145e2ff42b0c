import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../config/env";
import { configErrorOf, configFileDir } from "../support/config-files";
import {
  loadTenantTable,
  parseSchemaPacks,
  parseTenantsFile,
  tenantSchemaPacks,
  tenantSettings,
  userLimits,
  type TenantSettings,
} from "../../config/tenants";

const SCHEMAS_DIR = path.resolve(__dirname, "../../config/schemas");
const DEFAULTS: TenantSettings = { ratePerSec: 100, burst: 200, userRatePerSec: 0, userBurst: null, piiPolicy: "redact", silent: false, schemaPacks: ["core", "learning"] };

const { writeFile } = configFileDir("tenants-");
const errorOf = configErrorOf;

describe("parseTenantsFile", () => {
  it("applies each tenant's fields over the defaults, field by field", () => {
    const table = parseTenantsFile(
      {
        tenants: {
          acme: { rate_per_sec: 2000, burst: 50, pii_policy: "drop", schema_packs: ["core"] },
          legacy: { silent: true },
          "tenant.with:odd-chars_1": {},
          slow: { rate_per_sec: 0.5 },
        },
      },
      "/t.json",
      DEFAULTS,
    );
    expect(table.get("acme")).toEqual({ ...DEFAULTS, ratePerSec: 2000, burst: 50, piiPolicy: "drop", schemaPacks: ["core"] });
    expect(table.get("legacy")).toEqual({ ...DEFAULTS, silent: true });
    expect(table.get("tenant.with:odd-chars_1")).toEqual(DEFAULTS);
    expect(table.get("slow")!.ratePerSec).toBe(0.5);
    expect(table.size).toBe(4);
  });

  it("gives a tenant a per-user limit of its own, its burst twice its rate unless set", () => {
    const withUserLimit = { ...DEFAULTS, userRatePerSec: 50, userBurst: null };
    const table = parseTenantsFile(
      { tenants: { school: { user_rate_per_sec: 20 }, kiosk: { user_rate_per_sec: 2.5, user_burst: 3 }, free: { user_rate_per_sec: 0 }, plain: {} } },
      "/t.json",
      withUserLimit,
    );
    expect(userLimits(table.get("school")!)).toEqual({ ratePerSec: 20, burst: 40 });
    expect(userLimits(table.get("kiosk")!)).toEqual({ ratePerSec: 2.5, burst: 3 });
    expect(userLimits(table.get("free")!)).toBeNull();
    expect(userLimits(table.get("plain")!)).toEqual({ ratePerSec: 50, burst: 100 });
    expect(userLimits(DEFAULTS)).toBeNull();
  });

  it.each<[string, unknown, string]>([
    ["not an object", "x", "$ must be object"],
    ["no tenants", {}, "$.tenants is required"],
    ["a typo at the top", { tenants: {}, default: {} }, '$: unknown field "default"'],
    ["zero rate", { tenants: { acme: { rate_per_sec: 0 } } }, "$.tenants.acme.rate_per_sec must be > 0"],
    ["string rate", { tenants: { acme: { rate_per_sec: "10" } } }, "$.tenants.acme.rate_per_sec must be number"],
    ["fractional burst", { tenants: { acme: { burst: 1.5 } } }, "$.tenants.acme.burst must be integer"],
    ["zero burst", { tenants: { acme: { burst: 0 } } }, "$.tenants.acme.burst must be >= 1"],
    ["negative user rate", { tenants: { acme: { user_rate_per_sec: -1 } } }, "$.tenants.acme.user_rate_per_sec must be >= 0"],
    ["zero user burst", { tenants: { acme: { user_burst: 0 } } }, "$.tenants.acme.user_burst must be >= 1"],
    ["unknown policy", { tenants: { acme: { pii_policy: "nuke" } } }, '$.tenants.acme.pii_policy must be one of: "redact", "drop", "allow"'],
    ["silent as a string", { tenants: { acme: { silent: "yes" } } }, "$.tenants.acme.silent must be boolean"],
    ["bad pack name", { tenants: { acme: { schema_packs: ["../etc"] } } }, '$.tenants.acme.schema_packs[0] must match pattern "^[A-Za-z0-9][A-Za-z0-9_-]*$"'],
    ["a pack twice", { tenants: { acme: { schema_packs: ["core", "core"] } } }, "$.tenants.acme.schema_packs must NOT have duplicate items"],
    ["misspelt field", { tenants: { acme: { rate: 5 } } }, '$.tenants.acme: unknown field "rate"'],
    ["bad tenant name", { tenants: { "a b": {} } }, '$.tenants: invalid name "a b"'],
  ])("%s → names TENANTS_FILE and %s", (_name, data, problem) => {
    const error = errorOf(() => parseTenantsFile(data, "/t.json", DEFAULTS));
    expect(error.variable).toBe("TENANTS_FILE");
    expect(error.message.startsWith(`TENANTS_FILE: /t.json: ${problem}`)).toBe(true);
  });

  it("lists every problem of a file at once", () => {
    const error = errorOf(() => parseTenantsFile({ tenants: { a: { burst: 0 }, b: { silent: 1 } } }, "/t.json", DEFAULTS));
    expect(error.message).toBe("TENANTS_FILE: /t.json: $.tenants.a.burst must be >= 1; $.tenants.b.silent must be boolean");
  });
});

describe("loadTenantTable", () => {
  it("no file: only the defaults; every tenant gets them", () => {
    const table = loadTenantTable(null, DEFAULTS, SCHEMAS_DIR);
    expect(table.byTenant.size).toBe(0);
    expect(tenantSettings(table, "anyone")).toBe(DEFAULTS);
  });

  it("a schema pack that does not exist stops start-up, naming where it was asked for", () => {
    const file = writeFile("packs.json", { tenants: { acme: { schema_packs: ["core", "nosuchpack"] } } });
    const error = errorOf(() => loadTenantTable(file, DEFAULTS, SCHEMAS_DIR));
    expect(error.variable).toBe("TENANTS_FILE");
    expect(error.message).toContain("$.tenants.acme.schema_packs");
    expect(error.message).toContain('schema pack "nosuchpack" not found');
    const envError = errorOf(() => loadTenantTable(null, { ...DEFAULTS, schemaPacks: ["missing"] }, SCHEMAS_DIR));
    expect(envError.variable).toBe("SCHEMA_PACKS");
  });

  it("tenantSchemaPacks lists only tenants whose packs differ from the defaults", () => {
    const file = writeFile("mixed.json", {
      tenants: { same: { schema_packs: ["core", "learning"] }, core: { schema_packs: ["core"] }, none: { schema_packs: [] }, other: { silent: true } },
    });
    const table = loadTenantTable(file, DEFAULTS, SCHEMAS_DIR);
    expect(tenantSchemaPacks(table)).toEqual({ core: ["core"], none: [] });
  });
});

describe("parseSchemaPacks", () => {
  it.each([
    ["core,learning", ["core", "learning"]],
    [" core , learning ,", ["core", "learning"]],
    ["none", []],
  ])("%j → %j", (value, expected) => {
    expect(parseSchemaPacks(value)).toEqual(expected);
  });

  it.each(["core,core", "../x", "a b"])("%j throws naming SCHEMA_PACKS", (value) => {
    expect(errorOf(() => parseSchemaPacks(value)).variable).toBe("SCHEMA_PACKS");
  });
});

describe("tenant settings in loadConfig", () => {
  it("defaults come from the environment", () => {
    const config = loadConfig({
      RATE_LIMIT_EVENTS_PER_SEC: "50",
      RATE_LIMIT_BURST: "75",
      RATE_LIMIT_USER_EVENTS_PER_SEC: "5",
      RATE_LIMIT_USER_BURST: "8",
      PII_POLICY: "drop",
      SILENT_MODE: "true",
      SCHEMA_PACKS: "core",
    });
    expect(config.tenants.defaults).toEqual({ ratePerSec: 50, burst: 75, userRatePerSec: 5, userBurst: 8, piiPolicy: "drop", silent: true, schemaPacks: ["core"] });
  });

  it("with nothing set: the honest defaults (redact, not silent, core + learning)", () => {
    const config = loadConfig({});
    expect(config.tenants.defaults).toEqual({
      ratePerSec: 100_000,
      burst: 200_000,
      userRatePerSec: 0,
      userBurst: null,
      piiPolicy: "redact",
      silent: false,
      schemaPacks: ["core", "learning"],
    });
    expect(config.schemasDir).toBe(SCHEMAS_DIR);
  });

  it("TENANTS_FILE overrides per tenant on top of the env defaults", () => {
    const file = writeFile("tenants.json", { tenants: { acme: { burst: 10, silent: true } } });
    const config = loadConfig({ TENANTS_FILE: file, RATE_LIMIT_EVENTS_PER_SEC: "7" });
    expect(tenantSettings(config.tenants, "acme")).toEqual({
      ratePerSec: 7,
      burst: 10,
      userRatePerSec: 0,
      userBurst: null,
      piiPolicy: "redact",
      silent: true,
      schemaPacks: ["core", "learning"],
    });
    expect(tenantSettings(config.tenants, "other").silent).toBe(false);
  });

  it.each<[Record<string, string>, string, string]>([
    [{ PII_POLICY: "shred" }, "PII_POLICY", 'PII_POLICY: must be one of redact, drop, allow, got "shred"'],
    [{ SILENT_MODE: "maybe" }, "SILENT_MODE", 'SILENT_MODE: must be true or false, got "maybe"'],
    [{ SCHEMA_PACKS: "core,nope" }, "SCHEMA_PACKS", 'SCHEMA_PACKS: schema pack "nope" not found'],
    [{ SCHEMAS_DIR: "/nonexistent-dir" }, "SCHEMA_PACKS", 'SCHEMA_PACKS: schema pack "core" not found'],
    [{ TENANTS_FILE: "/nonexistent/tenants.json" }, "TENANTS_FILE", "TENANTS_FILE: cannot read /nonexistent/tenants.json"],
  ])("%j → ConfigError naming %s", (env, variable, start) => {
    const error = errorOf(() => loadConfig(env));
    expect(error.variable).toBe(variable);
    expect(error.message.startsWith(start)).toBe(true);
  });

  it("a tenants file with a bad value stops loadConfig with the JSON path", () => {
    const file = writeFile("bad.json", { tenants: { acme: { rate_per_sec: -1 } } });
    expect(errorOf(() => loadConfig({ TENANTS_FILE: file })).message).toBe(`TENANTS_FILE: ${file}: $.tenants.acme.rate_per_sec must be > 0`);
  });

  it.each([
    ["MAX_EVENT_BYTES", "255"],
    ["MAX_JSON_DEPTH", "3"],
    ["MAX_STRING_LENGTH", "0"],
    ["MAX_PROPERTIES_KEYS", "0"],
    ["BODY_TIMEOUT_MS", "99"],
    ["UNAUTH_RATE_PER_SEC", "0"],
    ["UNAUTH_BURST", "0"],
  ])("%s=%s is out of range", (name, value) => {
    expect(errorOf(() => loadConfig({ [name]: value })).variable).toBe(name);
  });

  it("limits parse", () => {
    const config = loadConfig({
      MAX_EVENT_BYTES: "1024",
      MAX_JSON_DEPTH: "8",
      MAX_STRING_LENGTH: "64",
      MAX_PROPERTIES_KEYS: "5",
      BODY_TIMEOUT_MS: "1500",
      UNAUTH_RATE_PER_SEC: "3",
      UNAUTH_BURST: "4",
    });
    expect(config).toMatchObject({
      maxEventBytes: 1024,
      maxJsonDepth: 8,
      maxStringLength: 64,
      maxPropertiesKeys: 5,
      bodyTimeoutMs: 1500,
      unauthRatePerSec: 3,
      unauthBurst: 4,
    });
  });
});

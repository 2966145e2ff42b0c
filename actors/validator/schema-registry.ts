/**
 * JSON-Schema validation of normalised events (pure logic, no I/O after load).
 *
 * Schemas live in "packs": one folder per pack under `schemasDir`, holding `*.json` files. Each
 * schema validates the whole {@link IngestEvent} and says which events it applies to with one
 * top-level keyword:
 *
 *   - `"x-event-names": ["attempt", "attempt_event"]` — events whose `event_name` is listed;
 *   - `"x-applies-to": "*"` — every event.
 *
 * `loadSchemaRegistry` reads and compiles every schema of every pack it needs exactly once. The
 * hot path (`validate`) is two Map look-ups (tenant, then event name) and a loop over compiled
 * validators; on success it allocates nothing and returns one shared, frozen empty array.
 *
 * Tenant packs (`tenantPacks[tenant]`) REPLACE the default packs for that tenant; they are not
 * merged. A tenant that wants the core rules too lists "core" itself.
 *
 * One rule cannot be written in JSON Schema (ajv can't compare two fields with an offset): the
 * event time may be at most 24h after `received_at`. The registry checks it in code for every
 * event, whatever its packs, and reports it as a schema-style message on `timestamp`.
 *
 * See config/schemas/README.md for the packs and the conventions their schemas follow.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import Ajv, { type ErrorObject, type ValidateFunction } from "ajv";
import type { IngestEvent } from "../common/event";

export interface SchemaRegistryOptions {
  /** Folder holding one sub-folder per pack, e.g. config/schemas. */
  schemasDir: string;
  /** Packs applied to every tenant that has no entry in `tenantPacks`, in this order. */
  defaultPacks: string[];
  /** Per-tenant pack lists; an entry REPLACES `defaultPacks` for that tenant. */
  tenantPacks?: Record<string, string[]>;
}

export interface SchemaRegistry {
  /**
   * Validates one event against the packs of its tenant. Returns one readable message per
   * problem; an empty array means valid. The empty array is shared and frozen: don't mutate it.
   */
  validate(event: IngestEvent): string[];
  /** Names of every pack loaded (defaults and tenant packs), sorted. */
  packs(): string[];
}

/** How far past `received_at` an event's `timestamp` may lie. */
export const MAX_FUTURE_SKEW_MS = 24 * 60 * 60 * 1000;

/** Keyword: the event names a schema applies to. */
export const EVENT_NAMES_KEYWORD = "x-event-names";
/** Keyword: `"*"` — the schema applies to every event. */
export const APPLIES_TO_KEYWORD = "x-applies-to";

const NO_ERRORS: string[] = Object.freeze([] as string[]) as string[];
const PACK_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

/** The validators one tenant's pack list yields. */
interface PackSet {
  /** Validators for events whose name no schema lists: the `x-applies-to: "*"` ones. */
  any: ValidateFunction[];
  /** Per event name: the `*` validators followed by that name's validators. */
  byName: Map<string, ValidateFunction[]>;
}

interface CompiledSchema {
  file: string;
  validate: ValidateFunction;
  /** null = every event. */
  eventNames: string[] | null;
}

export function loadSchemaRegistry(opts: SchemaRegistryOptions): SchemaRegistry {
  const ajv = createAjv();
  const packCache = new Map<string, CompiledSchema[]>();
  const loadPack = (name: string): CompiledSchema[] => {
    let pack = packCache.get(name);
    if (pack === undefined) {
      pack = compilePack(ajv, opts.schemasDir, name);
      packCache.set(name, pack);
    }
    return pack;
  };

  const defaultSet = buildPackSet(opts.defaultPacks.map(loadPack));
  const tenantSets = new Map<string, PackSet>();
  for (const [tenant, packs] of Object.entries(opts.tenantPacks ?? {})) {
    tenantSets.set(tenant, buildPackSet(packs.map(loadPack)));
  }
  const packNames = [...packCache.keys()].sort();

  return {
    validate(event: IngestEvent): string[] {
      const set = (tenantSets.size === 0 ? undefined : tenantSets.get(event.tenant_id)) ?? defaultSet;
      const validators = set.byName.get(event.event_name) ?? set.any;
      let errors: string[] | null = null;
      for (let i = 0; i < validators.length; i++) {
        const v = validators[i]!;
        if (!v(event)) errors = addAll(errors, formatAjvErrors(v.errors, event));
      }
      const ts = event.timestamp;
      const received = event.received_at;
      if (typeof ts === "number" && typeof received === "number" && ts > received + MAX_FUTURE_SKEW_MS) {
        errors = addAll(errors, [
          `timestamp must be <= ${received + MAX_FUTURE_SKEW_MS} (received_at + 24h)`,
        ]);
      }
      return errors ?? NO_ERRORS;
    },
    packs(): string[] {
      return packNames.slice();
    },
  };
}

/** Appends messages not already present (two packs may report the same problem). */
function addAll(into: string[] | null, messages: string[]): string[] {
  const out = into ?? [];
  for (const m of messages) if (!out.includes(m)) out.push(m);
  return out;
}

function buildPackSet(packs: CompiledSchema[][]): PackSet {
  const any: ValidateFunction[] = [];
  const named = new Map<string, ValidateFunction[]>();
  for (const pack of packs) {
    for (const schema of pack) {
      if (schema.eventNames === null) {
        if (!any.includes(schema.validate)) any.push(schema.validate);
        continue;
      }
      for (const name of schema.eventNames) {
        let list = named.get(name);
        if (list === undefined) named.set(name, (list = []));
        if (!list.includes(schema.validate)) list.push(schema.validate);
      }
    }
  }
  // One look-up on the hot path: each name's list already starts with the `*` validators.
  const byName = new Map<string, ValidateFunction[]>();
  for (const [name, list] of named) byName.set(name, [...any, ...list]);
  return { any, byName };
}

function compilePack(ajv: Ajv, schemasDir: string, pack: string): CompiledSchema[] {
  if (!PACK_NAME.test(pack)) throw new Error(`invalid schema pack name ${JSON.stringify(pack)}`);
  const dir = path.join(schemasDir, pack);
  let files: string[];
  try {
    if (!fs.statSync(dir).isDirectory()) throw new Error("not a directory");
    files = fs.readdirSync(dir).filter((f) => f.endsWith(".json")).sort();
  } catch (err) {
    throw new Error(`schema pack "${pack}" not found: ${dir} (${(err as Error).message})`);
  }
  if (files.length === 0) throw new Error(`schema pack "${pack}" has no *.json schemas: ${dir}`);

  return files.map((f) => {
    const file = path.join(dir, f);
    let schema: unknown;
    try {
      schema = JSON.parse(fs.readFileSync(file, "utf8"));
    } catch (err) {
      throw new Error(`invalid schema ${file}: ${(err as Error).message}`);
    }
    if (schema === null || typeof schema !== "object" || Array.isArray(schema)) {
      throw new Error(`invalid schema ${file}: a schema must be a JSON object`);
    }
    const s = schema as Record<string, unknown>;
    const names = s[EVENT_NAMES_KEYWORD];
    const appliesTo = s[APPLIES_TO_KEYWORD];
    if ((names === undefined) === (appliesTo === undefined)) {
      throw new Error(
        `invalid schema ${file}: declare exactly one of "${EVENT_NAMES_KEYWORD}" or "${APPLIES_TO_KEYWORD}"`,
      );
    }
    let validate: ValidateFunction;
    try {
      validate = ajv.compile(s);
    } catch (err) {
      throw new Error(`invalid schema ${file}: ${(err as Error).message}`);
    }
    // The keywords' meta-schemas (checked by compile) guarantee these shapes.
    return { file, validate, eventNames: names === undefined ? null : (names as string[]) };
  });
}

function createAjv(): Ajv {
  const ajv = new Ajv({
    allErrors: true,
    strict: true,
    allowUnionTypes: true, // "type": ["integer", "null"] for nullable fields
    $data: true, // cross-field limits, e.g. correct_count <= items_attempted
  });
  ajv.addKeyword({
    keyword: EVENT_NAMES_KEYWORD,
    metaSchema: {
      type: "array",
      items: { type: "string", minLength: 1 },
      minItems: 1,
      uniqueItems: true,
    },
  });
  ajv.addKeyword({ keyword: APPLIES_TO_KEYWORD, metaSchema: { const: "*" } });
  ajv.addFormat("uuid", UUID);
  ajv.addFormat("date-time", { type: "string", validate: isDateTime });
  return ajv;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$/;
const DAYS = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** RFC 3339 date-time ("2024-01-01T00:00:00Z", "2024-01-01T01:00:00.5+01:00"). */
export function isDateTime(s: string): boolean {
  const m = DATE_TIME.exec(s);
  if (m === null) return false;
  const year = +m[1]!;
  const month = +m[2]!;
  const day = +m[3]!;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (month < 1 || month > 12 || day < 1) return false;
  if (day > (month === 2 && leap ? 29 : DAYS[month]!)) return false;
  // Seconds may be 60 (leap second).
  if (+m[4]! > 23 || +m[5]! > 59 || +m[6]! > 60) return false;
  if (m[7] !== undefined && (+m[7] > 23 || +m[8]! > 59)) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Error formatting
// ---------------------------------------------------------------------------------------------

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const INDEX = /^(0|[1-9][0-9]*)$/;

const FORMAT_NAMES: Record<string, string> = {
  uuid: "a uuid",
  "date-time": "an RFC 3339 date-time",
  date: "a date (YYYY-MM-DD)",
  time: "a time",
  email: "an email address",
  uri: "a URI",
};

/**
 * Turns ajv errors into one readable message per problem, e.g. `properties.quality must be <= 5`,
 * `event_name is required`, `properties.topics_practiced[0] must be a string`.
 *
 * `data` (the validated value) is optional; when given, a path segment made of digits is shown
 * as an array index (`[0]`) only if the value there really is an array, and a wrong-typed `null`
 * is reported as "is required" (a normalised event writes "absent" as null). Without `data`,
 * digit segments are taken as array indices.
 *
 * Conventions: null and "" are left out of `enum` lists (they stand for "absent"; schemas list
 * them to allow an absent value), and "null" is left out of type lists, so a nullable integer
 * reads "must be an integer".
 */
export function formatAjvErrors(
  errors: readonly ErrorObject[] | null | undefined,
  data?: unknown,
): string[] {
  if (!errors || errors.length === 0) return [];
  const out: string[] = [];
  for (const e of errors) {
    const msg = formatAjvError(e, data);
    if (msg !== null && !out.includes(msg)) out.push(msg);
  }
  return out;
}

function formatAjvError(e: ErrorObject, data: unknown): string | null {
  const { segments, value, found } = resolve(e.instancePath, data);
  const at = (extra?: string): string => {
    const all = extra === undefined ? segments : [...segments, { key: extra, index: false }];
    return all.length === 0 ? "event" : renderPath(all);
  };
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case "required":
      return `${at(String(p.missingProperty))} is required`;
    case "dependentRequired":
    case "dependencies":
      return `${at(String(p.missingProperty))} is required when ${at(String(p.property))} is present`;
    case "additionalProperties":
      return `${at(String(p.additionalProperty))} is not allowed`;
    case "unevaluatedProperties":
      return `${at(String(p.unevaluatedProperty))} is not allowed`;
    case "propertyNames":
      return `${at()} has an invalid property name ${JSON.stringify(p.propertyName)}`;
    case "type": {
      if (found && value === null) return `${at()} is required`;
      return `${at()} must be ${describeTypes(String(p.type))}`;
    }
    case "enum":
      return `${at()} must be one of: ${describeValues(p.allowedValues)}`;
    case "const":
      return `${at()} must be ${JSON.stringify(p.allowedValue)}`;
    case "minimum":
    case "maximum":
    case "exclusiveMinimum":
    case "exclusiveMaximum":
      // A `$data` limit that points at a non-number (e.g. items_attempted: "x"): the other
      // field reports its own error; this comparison is meaningless.
      if (typeof p.limit !== "number") return null;
      return `${at()} must be ${String(p.comparison)} ${String(p.limit)}`;
    case "multipleOf":
      return `${at()} must be a multiple of ${String(p.multipleOf)}`;
    case "minLength": {
      const n = Number(p.limit);
      if (n === 1) return `${at()} must not be empty`;
      return `${at()} must be at least ${n} ${n === 1 ? "character" : "characters"} long`;
    }
    case "maxLength": {
      const n = Number(p.limit);
      return `${at()} must be at most ${n} ${n === 1 ? "character" : "characters"} long`;
    }
    case "format":
      return `${at()} must be ${FORMAT_NAMES[String(p.format)] ?? `a valid ${String(p.format)}`}`;
    case "pattern":
      return `${at()} must match pattern ${String(p.pattern)}`;
    case "minItems": {
      const n = Number(p.limit);
      return `${at()} must have at least ${n} ${n === 1 ? "item" : "items"}`;
    }
    case "maxItems": {
      const n = Number(p.limit);
      return `${at()} must have at most ${n} ${n === 1 ? "item" : "items"}`;
    }
    case "uniqueItems":
      return `${at()} must not contain duplicate items (items ${String(p.j)} and ${String(p.i)} are identical)`;
    case "minProperties": {
      const n = Number(p.limit);
      return `${at()} must have at least ${n} ${n === 1 ? "property" : "properties"}`;
    }
    case "maxProperties": {
      const n = Number(p.limit);
      return `${at()} must have at most ${n} ${n === 1 ? "property" : "properties"}`;
    }
    case "contains":
      return `${at()} must contain at least one valid item`;
    case "if":
      // The failing branch reports its own errors; this one only says "the branch failed".
      return null;
    default:
      return `${at()} ${e.message ?? `is invalid (${e.keyword})`}`;
  }
}

interface Segment {
  key: string;
  index: boolean;
}

/** Splits a JSON Pointer and walks `data` along it (when given). */
function resolve(
  pointer: string,
  data: unknown,
): { segments: Segment[]; value: unknown; found: boolean } {
  const segments: Segment[] = [];
  let value: unknown = data;
  let found = data !== undefined;
  if (pointer === "") return { segments, value, found };
  for (const raw of pointer.slice(1).split("/")) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    let index: boolean;
    if (found && value !== null && typeof value === "object") {
      index = Array.isArray(value) && INDEX.test(key);
      if (Object.prototype.hasOwnProperty.call(value, key)) {
        value = (value as Record<string, unknown>)[key];
      } else {
        found = false;
        value = undefined;
      }
    } else {
      index = INDEX.test(key);
      found = false;
      value = undefined;
    }
    segments.push({ key, index });
  }
  return { segments, value, found };
}

function renderPath(segments: Segment[]): string {
  let s = "";
  for (const seg of segments) {
    if (seg.index) s += `[${seg.key}]`;
    else if (IDENT.test(seg.key)) s += s === "" ? seg.key : `.${seg.key}`;
    else s += `[${JSON.stringify(seg.key)}]`;
  }
  return s;
}

const TYPE_NAMES: Record<string, string> = {
  integer: "an integer",
  number: "a number",
  string: "a string",
  boolean: "a boolean",
  object: "an object",
  array: "an array",
  null: "null",
};

function describeTypes(types: string): string {
  const list = types.split(",").map((t) => t.trim()).filter((t) => t !== "");
  const shown = list.length > 1 ? list.filter((t) => t !== "null") : list;
  return shown.map((t) => TYPE_NAMES[t] ?? t).join(" or ");
}

function describeValues(values: unknown): string {
  if (!Array.isArray(values)) return describeValue(values);
  const shown = values.filter((v) => v !== null && v !== "");
  return (shown.length > 0 ? shown : values).map(describeValue).join(", ");
}

function describeValue(v: unknown): string {
  return typeof v === "string" ? v : JSON.stringify(v);
}

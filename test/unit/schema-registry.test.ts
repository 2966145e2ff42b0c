import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import Ajv from "ajv";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import type { IngestEvent } from "../../actors/common/event";
import {
  MAX_FUTURE_SKEW_MS,
  formatAjvErrors,
  isDateTime,
  loadSchemaRegistry,
  type SchemaRegistry,
} from "../../actors/validator/schema-registry";
import { seed002AttemptFields } from "../support/seed-requests";

const SCHEMAS = path.join(__dirname, "../../config/schemas");
const T0 = Date.UTC(2024, 0, 1); // 2024-01-01T00:00:00Z

const registry = loadSchemaRegistry({ schemasDir: SCHEMAS, defaultPacks: ["core", "learning"] });

function event(over: Partial<IngestEvent> = {}): IngestEvent {
  return {
    tenant_id: "tenant-a",
    event_id: "evt-1",
    event_name: "product_view",
    session_id: "sess-1",
    seq: 0,
    user_id: "user_12345",
    channel: "web",
    timestamp: T0,
    received_at: T0 + 1000,
    properties: { campaign_id: "summer_sale_2024", tags: ["electronics", "featured"] },
    ...over,
  };
}

/** An event with fields removed or set to values the type forbids. */
function raw(over: Record<string, unknown>, drop: string[] = []): IngestEvent {
  const e: Record<string, unknown> = { ...event(), ...over };
  for (const k of drop) delete e[k];
  return e as unknown as IngestEvent;
}

// --- Seed 002 examples, with real UUIDs in place of the "uuid" placeholders. ---
const USER = "5f0c7a3e-2b1d-4c8e-9f6a-1d2e3f4a5b6c";
const SESSION = "0b8e2c4d-6f1a-4b3c-8d5e-7f9a1b2c3d4e";

function attempt(props: Record<string, unknown> = {}, over: Partial<IngestEvent> = {}): IngestEvent {
  return event({
    event_name: "attempt",
    session_id: SESSION,
    user_id: USER,
    properties: {
      ...seed002AttemptFields({ item_id: "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", client_attempt_id: "9c8b7a6d-5e4f-4321-9876-abcdefabcdef" }),
      ...props,
    },
    ...over,
  });
}

function session(props: Record<string, unknown> = {}, over: Partial<IngestEvent> = {}): IngestEvent {
  return event({
    event_name: "session",
    session_id: SESSION,
    user_id: USER,
    properties: {
      start_time: "2024-01-01T00:00:00Z",
      end_time: "2024-01-01T00:30:00Z",
      items_attempted: 20,
      correct_count: 16,
      total_time_ms: 1800000,
      session_type: "practice",
      topics_practiced: ["traffic_signs", "right_of_way"],
      average_difficulty: 0.65,
      ...props,
    },
    ...over,
  });
}

function placement(props: Record<string, unknown> = {}, over: Partial<IngestEvent> = {}): IngestEvent {
  return event({
    event_name: "placement",
    user_id: USER,
    properties: {
      placement_id: "3d4e5f6a-7b8c-4d9e-8f0a-1b2c3d4e5f6a",
      items_administered: 15,
      overall_accuracy: 0.73,
      was_completed: true,
      end_reason: "completed_normally",
      results: {
        ability_estimates: { traffic_signs: 0.4, right_of_way: -0.2 },
        recommendations: { focus: ["right_of_way"] },
      },
      ...props,
    },
    ...over,
  });
}

// --- Temporary schema folders for loader and formatter tests. ---
const tmpDirs: string[] = [];
afterAll(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

/** Writes packs: { pack: { "file.json": schema-or-raw-text } } into a fresh folder. */
function schemasDir(packs: Record<string, Record<string, unknown>>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "schema-registry-"));
  tmpDirs.push(dir);
  for (const [pack, files] of Object.entries(packs)) {
    fs.mkdirSync(path.join(dir, pack));
    for (const [file, content] of Object.entries(files)) {
      const text = typeof content === "string" ? content : JSON.stringify(content);
      fs.writeFileSync(path.join(dir, pack, file), text);
    }
  }
  return dir;
}

describe("core pack", () => {
  it("accepts a valid generic event", () => {
    expect(registry.validate(event())).toEqual([]);
  });

  it("accepts the nullable fields as null, and an empty channel", () => {
    expect(registry.validate(event({ seq: null, user_id: null, channel: null }))).toEqual([]);
    expect(registry.validate(event({ channel: "" }))).toEqual([]);
    expect(registry.validate(raw({}, ["seq", "user_id", "channel"]))).toEqual([]);
  });

  it.each(["web", "mobile", "api", "email", "push"])("accepts channel %s", (channel) => {
    expect(registry.validate(event({ channel }))).toEqual([]);
  });

  it("returns one shared frozen empty array on success (no allocation)", () => {
    const a = registry.validate(event());
    const b = registry.validate(event({ event_name: "other" }));
    expect(a).toBe(b);
    expect(Object.isFrozen(a)).toBe(true);
  });

  it.each<[string, IngestEvent, string[]]>([
    ["missing event_name", raw({}, ["event_name"]), ["event_name is required"]],
    ["empty event_name", event({ event_name: "" }), ["event_name must not be empty"]],
    ["long event_name", event({ event_name: "e".repeat(201) }), ["event_name must be at most 200 characters long"]],
    ["event_name not a string", raw({ event_name: 42 }), ["event_name must be a string"]],
    ["null event_name", raw({ event_name: null }), ["event_name is required"]],
    ["long session_id", event({ session_id: "s".repeat(257) }), ["session_id must be at most 256 characters long"]],
    ["empty session_id", event({ session_id: "" }), ["session_id must not be empty"]],
    ["long user_id", event({ user_id: "u".repeat(257) }), ["user_id must be at most 256 characters long"]],
    ["user_id not a string", raw({ user_id: 7 }), ["user_id must be a string"]],
    ["fractional seq", event({ seq: 1.5 }), ["seq must be an integer"]],
    ["string seq", raw({ seq: "1" }), ["seq must be an integer"]],
    ["negative seq", event({ seq: -1 }), ["seq must be >= 0"]],
    ["unknown channel", event({ channel: "fax" }), ["channel must be one of: web, mobile, api, email, push"]],
    ["channel in other case", event({ channel: "WEB" }), ["channel must be one of: web, mobile, api, email, push"]],
    ["channel not a string", raw({ channel: 3 }), ["channel must be one of: web, mobile, api, email, push"]],
    ["fractional timestamp", event({ timestamp: T0 + 0.5 }), ["timestamp must be an integer"]],
    ["timestamp in seconds", event({ timestamp: T0 / 1000 }), ["timestamp must be >= 946684800000"]],
    ["timestamp before 2000", event({ timestamp: Date.UTC(1999, 11, 31) }), ["timestamp must be >= 946684800000"]],
    ["missing timestamp", raw({}, ["timestamp"]), ["timestamp is required"]],
    ["properties an array", raw({ properties: [] }), ["properties must be an object"]],
    ["properties a string", raw({ properties: "x" }), ["properties must be an object"]],
    ["missing properties", raw({}, ["properties"]), ["properties is required"]],
    ["missing tenant_id", raw({}, ["tenant_id"]), ["tenant_id is required"]],
  ])("rejects %s", (_name, e, expected) => {
    expect(registry.validate(e)).toEqual(expected);
  });

  it("accepts event_name and session_id at their length limits", () => {
    expect(registry.validate(event({ event_name: "e".repeat(200), session_id: "s".repeat(256) }))).toEqual([]);
  });

  it("accepts timestamps up to exactly 24h after received_at, rejects later ones", () => {
    const received_at = T0;
    expect(registry.validate(event({ received_at, timestamp: received_at + MAX_FUTURE_SKEW_MS }))).toEqual([]);
    expect(registry.validate(event({ received_at, timestamp: received_at - 30 * 86_400_000 }))).toEqual([]);
    expect(registry.validate(event({ received_at, timestamp: received_at + MAX_FUTURE_SKEW_MS + 1 }))).toEqual([
      `timestamp must be <= ${received_at + MAX_FUTURE_SKEW_MS} (received_at + 24h)`,
    ]);
  });

  it("reports every problem at once, one message each", () => {
    const e = raw({ seq: -2, channel: "sms", event_name: "", properties: null }, ["session_id"]);
    expect(registry.validate(e)).toEqual([
      "session_id is required",
      "event_name must not be empty",
      "seq must be >= 0",
      "channel must be one of: web, mobile, api, email, push",
      "properties is required",
    ]);
  });
});

describe("learning pack: attempt", () => {
  it("accepts the seed example", () => {
    expect(registry.validate(attempt())).toEqual([]);
  });

  it("accepts the alias attempt_event", () => {
    expect(registry.validate(attempt({}, { event_name: "attempt_event" }))).toEqual([]);
    expect(registry.validate(attempt({ quality: 9 }, { event_name: "attempt_event" }))).toEqual([
      "properties.quality must be <= 5",
    ]);
  });

  it("accepts omitted or null optional fields", () => {
    const e = attempt({ quality: null, confidence: null, device_type: null, app_version: null });
    delete e.properties.selected;
    delete e.properties.hints_used;
    expect(registry.validate(e)).toEqual([]);
  });

  it.each<[string, IngestEvent, string[]]>([
    ["quality above 5", attempt({ quality: 6 }), ["properties.quality must be <= 5"]],
    ["negative quality", attempt({ quality: -1 }), ["properties.quality must be >= 0"]],
    ["fractional quality", attempt({ quality: 2.5 }), ["properties.quality must be an integer"]],
    ["confidence 0", attempt({ confidence: 0 }), ["properties.confidence must be >= 1"]],
    ["confidence 6", attempt({ confidence: 6 }), ["properties.confidence must be <= 5"]],
    ["item_id not a uuid", attempt({ item_id: "item-42" }), ["properties.item_id must be a uuid"]],
    ["client_attempt_id not a uuid", attempt({ client_attempt_id: "uuid" }), ["properties.client_attempt_id must be a uuid"]],
    ["item_id a number", attempt({ item_id: 42 }), ["properties.item_id must be a string"]],
    ["correct a string", attempt({ correct: "yes" }), ["properties.correct must be a boolean"]],
    ["correct null", attempt({ correct: null }), ["properties.correct is required"]],
    ["negative time_taken_ms", attempt({ time_taken_ms: -5 }), ["properties.time_taken_ms must be >= 0"]],
    ["fractional hints_used", attempt({ hints_used: 1.5 }), ["properties.hints_used must be an integer"]],
    ["unknown device_type", attempt({ device_type: "tv" }), ["properties.device_type must be one of: mobile, tablet, desktop, web"]],
    ["empty app_version", attempt({ app_version: "" }), ["properties.app_version must not be empty"]],
    ["null user_id", attempt({}, { user_id: null }), ["user_id is required"]],
    ["empty user_id", attempt({}, { user_id: "" }), ["user_id must not be empty"]],
  ])("rejects %s", (_name, e, expected) => {
    expect(registry.validate(e)).toEqual(expected);
  });

  it("reports each missing required field", () => {
    expect(registry.validate(event({ event_name: "attempt", user_id: USER, properties: {} }))).toEqual([
      "properties.item_id is required",
      "properties.client_attempt_id is required",
      "properties.correct is required",
      "properties.time_taken_ms is required",
    ]);
  });

  it("reports core and learning problems together", () => {
    expect(registry.validate(attempt({ quality: 7 }, { channel: "fax", user_id: null }))).toEqual([
      "channel must be one of: web, mobile, api, email, push",
      "user_id is required",
      "properties.quality must be <= 5",
    ]);
  });

  it("accepts exactly the quality values 0..5 (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: -1000, max: 1000 }), (quality) => {
        const errors = registry.validate(attempt({ quality }));
        if (quality >= 0 && quality <= 5) return errors.length === 0;
        return errors.length === 1 && errors[0] === (quality < 0 ? "properties.quality must be >= 0" : "properties.quality must be <= 5");
      }),
    );
  });
});

describe("learning pack: session", () => {
  it("accepts the seed example and the alias session_event", () => {
    expect(registry.validate(session())).toEqual([]);
    expect(registry.validate(session({}, { event_name: "session_event" }))).toEqual([]);
  });

  it("accepts date-times with offsets and fractions", () => {
    expect(
      registry.validate(session({ start_time: "2024-01-01T01:00:00.123+01:00", end_time: "2024-02-29T23:59:59.5z" })),
    ).toEqual([]);
  });

  it.each<[string, IngestEvent, string[]]>([
    ["unknown session_type", session({ session_type: "homework" }), ["properties.session_type must be one of: practice, exam, review, placement"]],
    ["start_time not a date-time", session({ start_time: "yesterday" }), ["properties.start_time must be an RFC 3339 date-time"]],
    ["end_time an impossible date", session({ end_time: "2023-02-29T00:00:00Z" }), ["properties.end_time must be an RFC 3339 date-time"]],
    ["end_time without zone", session({ end_time: "2024-01-01T00:30:00" }), ["properties.end_time must be an RFC 3339 date-time"]],
    ["start_time as epoch ms", session({ start_time: T0 }), ["properties.start_time must be a string"]],
    ["correct_count above items_attempted", session({ correct_count: 21 }), ["properties.correct_count must be <= 20"]],
    ["negative items_attempted", session({ items_attempted: -1, correct_count: 0 }), ["properties.items_attempted must be >= 0", "properties.correct_count must be <= -1"]],
    ["items_attempted a string", session({ items_attempted: "20" }), ["properties.items_attempted must be an integer"]],
    ["average_difficulty above 1", session({ average_difficulty: 1.5 }), ["properties.average_difficulty must be <= 1"]],
    ["negative total_time_ms", session({ total_time_ms: -1 }), ["properties.total_time_ms must be >= 0"]],
    ["topics_practiced with a number", session({ topics_practiced: ["traffic_signs", 3] }), ["properties.topics_practiced[1] must be a string"]],
    ["topics_practiced with an empty topic", session({ topics_practiced: [""] }), ["properties.topics_practiced[0] must not be empty"]],
    ["topics_practiced a string", session({ topics_practiced: "traffic_signs" }), ["properties.topics_practiced must be an array"]],
    ["too many topics", session({ topics_practiced: Array.from({ length: 101 }, (_, i) => `t${i}`) }), ["properties.topics_practiced must have at most 100 items"]],
  ])("rejects %s", (_name, e, expected) => {
    expect(registry.validate(e)).toEqual(expected);
  });

  it("reports missing required fields", () => {
    const e = session();
    delete e.properties.start_time;
    delete e.properties.session_type;
    expect(registry.validate(e)).toEqual(["properties.start_time is required", "properties.session_type is required"]);
  });
});

describe("learning pack: placement", () => {
  it("accepts the seed example and the alias placement_event", () => {
    expect(registry.validate(placement())).toEqual([]);
    expect(registry.validate(placement({}, { event_name: "placement_event" }))).toEqual([]);
  });

  it("accepts a placement without end_reason and results", () => {
    const e = placement();
    delete e.properties.end_reason;
    delete e.properties.results;
    expect(registry.validate(e)).toEqual([]);
  });

  it.each<[string, IngestEvent, string[]]>([
    ["placement_id not a uuid", placement({ placement_id: "p-1" }), ["properties.placement_id must be a uuid"]],
    ["overall_accuracy above 1", placement({ overall_accuracy: 1.2 }), ["properties.overall_accuracy must be <= 1"]],
    ["overall_accuracy as percent string", placement({ overall_accuracy: "73%" }), ["properties.overall_accuracy must be a number"]],
    ["was_completed a string", placement({ was_completed: "true" }), ["properties.was_completed must be a boolean"]],
    ["results a string", placement({ results: "done" }), ["properties.results must be an object"]],
    ["ability_estimates an array", placement({ results: { ability_estimates: [] } }), ["properties.results.ability_estimates must be an object"]],
    ["negative items_administered", placement({ items_administered: -3 }), ["properties.items_administered must be >= 0"]],
    ["null user_id", placement({}, { user_id: null }), ["user_id is required"]],
  ])("rejects %s", (_name, e, expected) => {
    expect(registry.validate(e)).toEqual(expected);
  });

  it("reports missing required fields", () => {
    expect(registry.validate(event({ event_name: "placement", user_id: USER, properties: { end_reason: "timeout" } }))).toEqual([
      "properties.placement_id is required",
      "properties.items_administered is required",
      "properties.overall_accuracy is required",
      "properties.was_completed is required",
    ]);
  });
});

describe("pack selection", () => {
  it("applies only the core pack to unknown event names", () => {
    expect(registry.validate(event({ event_name: "Attempt", user_id: null, properties: { quality: 99 } }))).toEqual([]);
    expect(registry.validate(event({ event_name: "page_view", channel: "fax" }))).toEqual([
      "channel must be one of: web, mobile, api, email, push",
    ]);
  });

  it("applies only the default packs listed", () => {
    const coreOnly = loadSchemaRegistry({ schemasDir: SCHEMAS, defaultPacks: ["core"] });
    expect(coreOnly.packs()).toEqual(["core"]);
    expect(coreOnly.validate(attempt({ quality: 99 }))).toEqual([]);
  });

  it("lets tenant packs replace the default packs", () => {
    const r: SchemaRegistry = loadSchemaRegistry({
      schemasDir: SCHEMAS,
      defaultPacks: ["core"],
      tenantPacks: { learn: ["core", "learning"], "learning-only": ["learning"] },
    });
    expect(r.packs()).toEqual(["core", "learning"]);
    const bad = attempt({ quality: 6 }, { channel: "fax" });
    expect(r.validate(bad)).toEqual(["channel must be one of: web, mobile, api, email, push"]);
    expect(r.validate({ ...bad, tenant_id: "learn" })).toEqual([
      "channel must be one of: web, mobile, api, email, push",
      "properties.quality must be <= 5",
    ]);
    // No "core" for this tenant: only the learning rules (and the code-level time check).
    expect(r.validate({ ...bad, tenant_id: "learning-only" })).toEqual(["properties.quality must be <= 5"]);
    expect(r.validate(event({ tenant_id: "learning-only", channel: "fax" }))).toEqual([]);
    expect(r.validate(event({ tenant_id: "learning-only", timestamp: T0 + 2 * MAX_FUTURE_SKEW_MS }))).toHaveLength(1);
  });

  it("throws for a missing pack, naming it", () => {
    expect(() => loadSchemaRegistry({ schemasDir: SCHEMAS, defaultPacks: ["core", "nope"] })).toThrow(
      /schema pack "nope" not found: .*nope/,
    );
    expect(() => loadSchemaRegistry({ schemasDir: SCHEMAS, defaultPacks: ["core"], tenantPacks: { t: ["missing"] } })).toThrow(
      /"missing" not found/,
    );
  });

  it("refuses pack names that would leave the schemas folder", () => {
    expect(() => loadSchemaRegistry({ schemasDir: SCHEMAS, defaultPacks: ["../schemas/core"] })).toThrow(/invalid schema pack name/);
  });

  it("throws for an empty pack", () => {
    const dir = schemasDir({ empty: { "notes.txt": "not a schema" } });
    expect(() => loadSchemaRegistry({ schemasDir: dir, defaultPacks: ["empty"] })).toThrow(/has no \*\.json schemas/);
  });

  it.each<[string, unknown, RegExp]>([
    ["malformed JSON", "{ not json", /Unexpected|JSON/],
    ["a non-object schema", [1, 2], /must be a JSON object/],
    ["neither x-event-names nor x-applies-to", { type: "object" }, /declare exactly one of/],
    ["both x-event-names and x-applies-to", { "x-event-names": ["a"], "x-applies-to": "*" }, /declare exactly one of/],
    ["x-event-names not an array", { "x-event-names": "attempt" }, /x-event-names/],
    ["x-applies-to other than *", { "x-applies-to": "all" }, /x-applies-to/],
    ["an unknown keyword (strict mode)", { "x-applies-to": "*", "maximun": 3 }, /unknown keyword/],
    ["an unknown format", { "x-applies-to": "*", type: "string", format: "ipv9" }, /unknown format/],
    ["an invalid type", { "x-applies-to": "*", type: "strnig" }, /type/],
  ])("throws naming the file for %s", (_name, schema, message) => {
    const dir = schemasDir({ good: { "a.json": { "x-applies-to": "*" } }, bad: { "ok.json": { "x-applies-to": "*" }, "broken.json": schema } });
    let error: Error | undefined;
    try {
      loadSchemaRegistry({ schemasDir: dir, defaultPacks: ["good"], tenantPacks: { t: ["bad"] } });
    } catch (err) {
      error = err as Error;
    }
    expect(error).toBeInstanceOf(Error);
    expect(error!.message).toContain(path.join(dir, "bad", "broken.json"));
    expect(error!.message).toMatch(message);
  });

  it("loads a pack used by several tenants once", () => {
    const r = loadSchemaRegistry({ schemasDir: SCHEMAS, defaultPacks: ["core"], tenantPacks: { a: ["core"], b: ["core", "learning"] } });
    expect(r.packs()).toEqual(["core", "learning"]);
  });
});

describe("error messages", () => {
  const dir = schemasDir({
    shop: {
      "order.json": {
        "x-event-names": ["order"],
        type: "object",
        properties: {
          properties: {
            type: "object",
            additionalProperties: false,
            required: ["kind", "lines", "address"],
            properties: {
              kind: { const: "order" },
              code: { type: "string", pattern: "^[A-Z]{3}$" },
              total: { type: "number", exclusiveMinimum: 0, exclusiveMaximum: 1000, multipleOf: 0.5 },
              lines: {
                type: "array",
                minItems: 1,
                maxItems: 2,
                items: {
                  type: "object",
                  required: ["sku", "qty"],
                  properties: { sku: { type: "string", minLength: 3 }, qty: { type: "integer", minimum: 1 } },
                },
              },
              address: {
                type: "object",
                properties: { geo: { type: "object", properties: { lat: { type: "number", maximum: 90 } } } },
              },
              "gift-note": { type: "string", maxLength: 1 },
              tags: { type: "array", uniqueItems: true },
              attrs: { type: "object", additionalProperties: { type: "integer" } },
            },
          },
        },
      },
    },
  });
  const shop = loadSchemaRegistry({ schemasDir: dir, defaultPacks: ["shop"] });
  const order = (properties: Record<string, unknown>): IngestEvent =>
    event({ event_name: "order", properties: { kind: "order", lines: [{ sku: "abc", qty: 1 }], address: {}, ...properties } });

  it("accepts a valid custom event", () => {
    expect(shop.validate(order({ code: "ABC", total: 10.5, "gift-note": "x", tags: ["a", "b"] }))).toEqual([]);
  });

  it.each<[string, Record<string, unknown>, string[]]>([
    ["nested object paths", { address: { geo: { lat: 91 } } }, ["properties.address.geo.lat must be <= 90"]],
    ["array items", { lines: [{ sku: "abc", qty: 1 }, { sku: "x", qty: 0 }] }, ["properties.lines[1].sku must be at least 3 characters long", "properties.lines[1].qty must be >= 1"]],
    ["required inside array items", { lines: [{ qty: 2 }] }, ["properties.lines[0].sku is required"]],
    ["minItems", { lines: [] }, ["properties.lines must have at least 1 item"]],
    ["maxItems", { lines: [{ sku: "abc", qty: 1 }, { sku: "abd", qty: 1 }, { sku: "abe", qty: 1 }] }, ["properties.lines must have at most 2 items"]],
    ["additionalProperties", { coupon: "X" }, ["properties.coupon is not allowed"]],
    ["const", { kind: "refund" }, ['properties.kind must be "order"']],
    ["pattern", { code: "abc" }, ["properties.code must match pattern ^[A-Z]{3}$"]],
    ["exclusiveMinimum", { total: 0 }, ["properties.total must be > 0"]],
    ["exclusiveMaximum", { total: 1000 }, ["properties.total must be < 1000"]],
    ["multipleOf", { total: 10.25 }, ["properties.total must be a multiple of 0.5"]],
    ["keys that are not identifiers", { "gift-note": "xy" }, ['properties["gift-note"] must be at most 1 character long']],
    ["uniqueItems", { tags: ["a", "a"] }, ["properties.tags must not contain duplicate items (items 0 and 1 are identical)"]],
    ["numeric object keys are not indices", { attrs: { "7": "x" } }, ['properties.attrs["7"] must be an integer']],
  ])("formats %s", (_name, props, expected) => {
    expect(shop.validate(order(props))).toEqual(expected);
  });

  it("formats a wrong root", () => {
    const ajv = new Ajv({ allErrors: true });
    const v = ajv.compile({ type: "object" });
    v(5);
    expect(formatAjvErrors(v.errors, 5)).toEqual(["event must be an object"]);
  });

  it("formats ajv errors without the data (digit segments as indices)", () => {
    expect(
      formatAjvErrors([
        { keyword: "type", instancePath: "/properties/list/0/a~1b", schemaPath: "#", params: { type: "integer,null" } },
        { keyword: "required", instancePath: "/properties", schemaPath: "#", params: { missingProperty: "x" } },
        { keyword: "enum", instancePath: "/k", schemaPath: "#", params: { allowedValues: [1, "a", true] } },
        { keyword: "format", instancePath: "/d", schemaPath: "#", params: { format: "date-time" } },
        { keyword: "minLength", instancePath: "/s", schemaPath: "#", params: { limit: 3 } },
        { keyword: "maxLength", instancePath: "/s", schemaPath: "#", params: { limit: 10 } },
        { keyword: "anyOf", instancePath: "/z", schemaPath: "#", params: {}, message: "must match a schema in anyOf" },
      ]),
    ).toEqual([
      'properties.list[0]["a/b"] must be an integer',
      "properties.x is required",
      "k must be one of: 1, a, true",
      "d must be an RFC 3339 date-time",
      "s must be at least 3 characters long",
      "s must be at most 10 characters long",
      "z must match a schema in anyOf",
    ]);
    expect(formatAjvErrors(null)).toEqual([]);
    expect(formatAjvErrors([])).toEqual([]);
  });

  it("checks RFC 3339 date-times", () => {
    for (const ok of ["2024-01-01T00:00:00Z", "2024-02-29T12:00:00.000+05:30", "2000-12-31t23:59:60z"]) expect(isDateTime(ok)).toBe(true);
    for (const bad of ["2024-01-01", "2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01T00:00:00+25:00", "2024-01-01 00:00:00Z"])
      expect(isDateTime(bad)).toBe(false);
  });
});

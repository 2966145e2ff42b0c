import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../config/env";
import { buildEventChecks, eventChecksFromConfig } from "../../actors/validator/event-checks";
import type { PiiKind, PiiPolicy } from "../../actors/validator/pii";
import { loadSchemaRegistry } from "../../actors/validator/schema-registry";
import { validateBatch } from "../../actors/validator/validate-batch";

const SCHEMAS_DIR = path.resolve(__dirname, "../../config/schemas");
const registry = loadSchemaRegistry({ schemasDir: SCHEMAS_DIR, defaultPacks: ["core", "learning"] });
const RECEIVED = Date.parse("2024-03-01T12:00:00Z");

function setup(policies: Record<string, PiiPolicy> = {}) {
  const detections: Array<[string, PiiKind, number]> = [];
  const checks = buildEventChecks({
    limits: { maxEventBytes: 4096, maxStringLength: 200, maxPropertiesKeys: 20 },
    schemas: registry,
    piiPolicyOf: (tenant) => policies[tenant] ?? "redact",
    onPiiDetected: (tenant, kind, n) => detections.push([tenant, kind, n]),
  });
  const run = (tenantId: string, events: unknown[]) => validateBatch(events, { tenantId, receivedAt: RECEIVED }, checks);
  return { run, detections };
}

const attempt = (properties: Record<string, unknown>) => ({
  event_name: "attempt",
  session_id: "s-1",
  user_id: "learner-1",
  properties: {
    item_id: "0b6f3c1e-6c1a-4f7e-9d7b-2f1c3a9e8d01",
    client_attempt_id: "9a1d3c52-0d8e-4b55-8f7a-0c9b1e2d3f40",
    correct: true,
    time_taken_ms: 4200,
    ...properties,
  },
});

describe("buildEventChecks in validateBatch", () => {
  it("accepts clean events untouched and counts nothing", () => {
    const { run, detections } = setup();
    const raw = [attempt({ quality: 4 }), { event_name: "page_view", session_id: "s-1", channel: "web", properties: { path: "/a" } }];
    const result = run("t", raw);
    expect(result.rejected).toEqual([]);
    expect(result.reasons).toEqual({});
    expect(result.accepted.map((e) => e.properties)).toEqual([raw[0]!.properties, { path: "/a" }]);
    expect(detections).toEqual([]);
  });

  it("rejects by index with the reason of the first failing check: limits, schema, pii", () => {
    const { run } = setup({ t: "drop" });
    const result = run("t", [
      { event_name: "ok", session_id: "s" },
      { event_name: "big", session_id: "s", properties: { note: "x".repeat(201) } },
      attempt({ quality: 9 }),
      { event_name: "x", session_id: "s", channel: "fax" },
      { event_name: "contact", session_id: "s", properties: { from: "jane.doe@example.com" } },
      { session_id: "s" },
    ]);
    expect(result.accepted.map((e) => e.event_name)).toEqual(["ok"]);
    expect(result.rejected).toEqual([
      { index: 1, errors: ["properties.note must be at most 200 characters long (is 201)"] },
      { index: 2, errors: ["properties.quality must be <= 5"] },
      { index: 3, errors: ["channel must be one of: web, mobile, api, email, push"] },
      { index: 4, errors: ["properties.from contains an email address (pii policy: drop)"] },
      { index: 5, errors: ["event_name is required"] },
    ]);
    expect(result.reasons).toEqual({ limits: 1, schema: 2, pii: 1, invalid: 1 });
  });

  it("limits run before the schema: an oversize typed event reports its size, not its fields", () => {
    const { run } = setup();
    const result = run("t", [attempt({ quality: 9, blob: "y".repeat(300) })]);
    expect(result.rejected).toEqual([{ index: 0, errors: ["properties.blob must be at most 200 characters long (is 300)"] }]);
    expect(result.reasons).toEqual({ limits: 1 });
  });

  it("reports every schema problem of one event, readable and field-level", () => {
    const { run } = setup();
    const result = run("t", [attempt({ quality: 6, confidence: 0, correct: "yes", item_id: "nope" })]);
    expect(result.rejected[0]!.errors).toEqual(
      expect.arrayContaining([
        "properties.quality must be <= 5",
        "properties.confidence must be >= 1",
        "properties.correct must be a boolean",
        "properties.item_id must be a uuid",
      ]),
    );
  });

  it("redact (the default) stores tokens in place of the personal data and counts it by kind", () => {
    const { run, detections } = setup();
    const result = run("t", [
      { event_name: "signup", session_id: "s", properties: { email: "jane.doe@example.com", card: "4111 1111 1111 1111", order: "4111 1111 1111 1112" } },
    ]);
    expect(result.rejected).toEqual([]);
    expect(result.accepted[0]!.properties).toEqual({ email: "[redacted:email]", card: "[redacted:card]", order: "4111 1111 1111 1112" });
    expect(detections).toEqual([
      ["t", "email", 1],
      ["t", "card", 1],
    ]);
  });

  it("allow keeps the event as sent but still counts the detections", () => {
    const { run, detections } = setup({ open: "allow" });
    const result = run("open", [{ event_name: "x", session_id: "s", properties: { ip: "203.0.113.7" } }]);
    expect(result.accepted[0]!.properties).toEqual({ ip: "203.0.113.7" });
    expect(detections).toEqual([["open", "ip", 1]]);
  });

  it("the schema sees the event before redaction: a valid typed event with PII is stored redacted", () => {
    const { run } = setup();
    const result = run("t", [attempt({ selected: "answer from jane.doe@example.com" })]);
    expect(result.rejected).toEqual([]);
    expect(result.accepted[0]!.properties.selected).toBe("answer from [redacted:email]");
  });

  it("policies are per tenant", () => {
    const { run } = setup({ strict: "drop", open: "allow" });
    const event = { event_name: "x", session_id: "s", properties: { phone: "call 415-555-2671" } };
    expect(run("strict", [event]).reasons).toEqual({ pii: 1 });
    expect(run("open", [event]).accepted[0]!.properties).toEqual({ phone: "call 415-555-2671" });
    expect(run("other", [event]).accepted[0]!.properties).toEqual({ phone: "call [redacted:phone]" });
  });
});

describe("eventChecksFromConfig", () => {
  it("SCHEMA_PACKS=none: no schema check (an out-of-enum channel passes), limits and PII still apply", () => {
    const config = loadConfig({ SCHEMA_PACKS: "none", MAX_STRING_LENGTH: "10" });
    const checks = eventChecksFromConfig(config);
    const result = validateBatch(
      [
        { event_name: "x", session_id: "s", channel: "fax" },
        { event_name: "x", session_id: "s", properties: { a: "01234567890" } },
        { event_name: "x", session_id: "s", properties: { a: "a@b.co" } },
      ],
      { tenantId: "t", receivedAt: RECEIVED },
      checks,
    );
    expect(result.accepted.map((e) => e.properties)).toEqual([{}, { a: "[redacted:email]" }]);
    expect(result.reasons).toEqual({ limits: 1 });
  });

  it("the default packs check the core enum and the learning events", () => {
    const checks = eventChecksFromConfig(loadConfig({}));
    const result = validateBatch([{ event_name: "x", session_id: "s", channel: "fax" }, attempt({ quality: 6 })], { tenantId: "t", receivedAt: RECEIVED }, checks);
    expect(result.rejected).toEqual([
      { index: 0, errors: ["channel must be one of: web, mobile, api, email, push"] },
      { index: 1, errors: ["properties.quality must be <= 5"] },
    ]);
  });
});

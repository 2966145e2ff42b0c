/**
 * Property-based: random bytes, random JSON and random almost-events, posted to the real node
 * (a child process, file sink). Whatever arrives, the node never crashes (it still answers
 * /health), never answers 5xx to client garbage, always answers with the JSON error model or an
 * ingest answer, and stores only events that pass validation: every stored row, read back and
 * validated again with the node's own checks, is accepted unchanged (already redacted, within
 * limits, schema-valid), and exactly as many rows were stored as the answers acknowledged.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../config/env";
import type { IngestEvent } from "../../actors/common/event";
import { eventChecksFromConfig } from "../../actors/validator/event-checks";
import { readSegments } from "../../actors/storage-writer/file-sink";
import { startNodeProcess, type NodeProcess } from "../support/node-process";

const ENV = {
  INGEST_API_KEYS: "fuzz-key=tenant-fuzz",
  MAX_BODY_BYTES: "65536",
  MAX_EVENTS_PER_BATCH: "50",
  MAX_EVENT_BYTES: "4096",
  MAX_STRING_LENGTH: "300",
  MAX_PROPERTIES_KEYS: "40",
  MAX_JSON_DEPTH: "8",
  BATCH_MAX_WAIT_MS: "2",
};

const PII_SAMPLES = ["jane.doe@example.com", "4111 1111 1111 1111", "415-555-2671", "203.0.113.9", "2001:db8::1", "123-45-6789", "Bearer abcdefghijklmnop1234"];

/** Strings a real client might send, with personal data and odd characters mixed in. */
const text = fc.oneof(
  { arbitrary: fc.string({ maxLength: 20 }), weight: 6 },
  { arbitrary: fc.constantFrom(...PII_SAMPLES), weight: 2 },
  { arbitrary: fc.tuple(fc.string({ maxLength: 8 }), fc.constantFrom(...PII_SAMPLES)).map(([a, b]) => `${a} ${b}`), weight: 2 },
  { arbitrary: fc.string({ unit: "grapheme", maxLength: 10 }), weight: 2 },
  { arbitrary: fc.constantFrom("", "__proto__", "constructor", "prototype", "x".repeat(301)), weight: 1 },
);

const scalar = fc.oneof(text, fc.integer(), fc.double(), fc.boolean(), fc.constant(null));
const value = fc.letrec((tie) => ({
  any: fc.oneof({ depthSize: "small", withCrossShrink: true }, scalar, tie("array"), tie("object")),
  array: fc.array(tie("any"), { maxLength: 4 }),
  object: fc.dictionary(text, tie("any"), { maxKeys: 5 }),
})).any;

/** Mostly plausible events: known fields with right and wrong types, extra fields. */
const almostEvent = fc.record(
  {
    event_name: fc.oneof(fc.constantFrom("page_view", "attempt", "session", "placement", "click"), text, fc.integer()),
    event_id: fc.oneof(fc.uuid(), text),
    session_id: fc.oneof(fc.constantFrom("s-1", "s-2"), text, fc.integer()),
    seq: fc.oneof(fc.nat(1000), fc.integer(), text),
    user_id: fc.oneof(fc.constant("u-1"), text),
    channel: fc.oneof(fc.constantFrom("web", "mobile", "fax", ""), text),
    timestamp: fc.oneof(fc.constant("2024-01-15T10:30:45Z"), fc.integer({ min: 0, max: 2_000_000_000_000 }), text),
    properties: fc.oneof(fc.dictionary(text, value, { maxKeys: 6 }), value),
    extra: value,
  },
  { requiredKeys: [] },
);

/** Events that are valid apart from what their random properties hold. */
const plausibleEvent = fc.record(
  {
    event_name: fc.constantFrom("page_view", "click", "signup", "checkout"),
    event_id: fc.uuid(),
    session_id: fc.constantFrom("s-1", "s-2", "s-3"),
    seq: fc.nat(10_000),
    user_id: fc.constantFrom("u-1", "u-2"),
    channel: fc.constantFrom("web", "mobile", "api", "email", "push"),
    timestamp: fc.integer({ min: 1_600_000_000_000, max: 1_700_000_000_000 }),
    properties: fc.dictionary(text, value, { maxKeys: 6 }),
  },
  { requiredKeys: ["event_name"] },
);

const someEvents = fc.array(fc.oneof(plausibleEvent, plausibleEvent, almostEvent), { maxLength: 8 });

interface Body {
  bytes: Buffer;
  gzip: boolean;
  contentType: string;
}

const body: fc.Arbitrary<Body> = fc.oneof(
  fc.uint8Array({ maxLength: 2000 }).map((b) => ({ bytes: Buffer.from(b), gzip: false, contentType: "application/json" })),
  fc.uint8Array({ maxLength: 500 }).map((b) => ({ bytes: Buffer.from(b), gzip: true, contentType: "application/json" })),
  fc.jsonValue({ maxDepth: 6 }).map((v) => ({ bytes: Buffer.from(JSON.stringify(v) ?? "null"), gzip: false, contentType: "application/json" })),
  someEvents.map((events) => ({ bytes: Buffer.from(JSON.stringify({ events })), gzip: false, contentType: "application/json" })),
  someEvents.map((events) => ({ bytes: zlib.gzipSync(JSON.stringify({ batch: events })), gzip: true, contentType: "text/plain" })),
  fc.oneof(plausibleEvent, almostEvent).map((e) => ({ bytes: Buffer.from(JSON.stringify(e)), gzip: false, contentType: "application/json; charset=utf-8" })),
  // Valid JSON cut at a random point.
  fc.tuple(fc.array(almostEvent, { minLength: 1, maxLength: 4 }), fc.nat()).map(([events, cut]) => {
    const full = JSON.stringify({ events });
    return { bytes: Buffer.from(full.slice(0, cut % full.length)), gzip: false, contentType: "application/json" };
  }),
);

describe("fuzz: random input never crashes the node or stores anything invalid", () => {
  let root: string;
  let dataDir: string;
  let node: NodeProcess;

  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "ingest-fuzz-"));
    dataDir = path.join(root, "data");
    node = await startNodeProcess({ ...ENV, DATA_DIR: dataDir, NODE_ID: "it-fuzz", LOG_LEVEL: "warn" });
  });

  afterAll(async () => {
    await node?.stop("SIGKILL");
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("300 random requests: no 5xx, always the JSON answer model, only valid events stored", async () => {
    let acknowledged = 0;
    const statuses = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        const headers: Record<string, string> = { "content-type": b.contentType, "x-api-key": "fuzz-key" };
        if (b.gzip) headers["content-encoding"] = "gzip";
        const res = await fetch(`${node.url}/v1/events`, { method: "POST", headers, body: b.bytes });
        const answer = (await res.json()) as Record<string, any>;
        const kind = res.status === 202 ? "202" : `${res.status} ${answer.error?.code}`;
        statuses.set(kind, (statuses.get(kind) ?? 0) + 1);
        expect(res.status).toBeLessThan(500);
        if (res.status === 202) {
          expect(answer).toEqual({ accepted: expect.any(Number), duplicates: expect.any(Number), rejected: expect.any(Array) });
          acknowledged += answer.accepted;
        } else {
          expect([400, 413, 415]).toContain(res.status);
          expect(answer.error).toEqual({ code: expect.any(String), message: expect.any(String) });
        }
      }),
      // A failure prints its seed; FUZZ_SEED=<seed> replays it.
      { numRuns: 300, endOnFailure: true, ...(process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED) } : {}) },
    );

    // Still alive and healthy.
    expect((await fetch(`${node.url}/health`)).status).toBe(200);
    expect(node.child.exitCode).toBeNull();
    // Some of each kind of answer, so the run exercised both paths.
    expect(statuses.get("202") ?? 0).toBeGreaterThan(0);
    expect(statuses.get("400 invalid_json") ?? 0).toBeGreaterThan(0);

    // Only valid events were stored, and exactly those acknowledged.
    const rows = await readSegments(dataDir);
    expect(acknowledged).toBeGreaterThan(0);
    expect(rows.length).toBe(acknowledged);
    console.info(`fuzz: answers by status ${JSON.stringify(Object.fromEntries(statuses))}, ${rows.length} events stored`);
    const checks = eventChecksFromConfig(loadConfig({ ...ENV, DATA_DIR: dataDir }));
    for (const row of rows) {
      expect(row.tenant_id).toBe("tenant-fuzz");
      const event = {
        ...row,
        timestamp: Date.parse(String(row.timestamp)),
        received_at: Date.parse(String(row.received_at)),
      } as unknown as IngestEvent;
      for (const check of checks) {
        const outcome = check(event);
        expect(outcome, JSON.stringify(row)).toEqual({ event });
      }
    }
  });
});

/**
 * Everything a hostile or careless client can send, over real HTTP to the real node (a child
 * process, file sink): each row of the table is one request with its expected status and error
 * code, and each row proves that nothing from it was stored (no segment line carries the row's
 * unique marker). Then the edge protections end to end: schema errors in rejected[].errors,
 * privacy policies, tenant isolation, per-key and per-IP rate limits, silent mode.
 */
import { createHash, randomUUID } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readSegments } from "../../actors/storage-writer/file-sink";
import { startNodeProcess, type NodeProcess } from "../support/node-process";

const sha = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  body: any;
}

async function send(url: string, init: { method?: string; path?: string; headers?: Record<string, string>; body?: string | Buffer }): Promise<Reply> {
  const res = await fetch(`${url}${init.path ?? "/v1/events"}`, { method: init.method ?? "POST", headers: init.headers, body: init.body });
  const text = await res.text();
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  return { status: res.status, headers: res.headers, text, body };
}

/**
 * Raw HTTP over a socket, for what fetch will not do: a body that never finishes, a declared
 * length that lies. Resolves with the status line's code and the body once the server answers.
 */
function rawRequest(port: number, head: string, bodyPart: string, waitMs: number): Promise<{ status: number; body: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = net.connect(port, "127.0.0.1", () => socket.write(head + bodyPart));
    let data = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${waitMs} ms; got: ${data}`));
    }, waitMs);
    socket.on("data", (chunk) => {
      data += chunk.toString();
      const split = data.indexOf("\r\n\r\n");
      if (split === -1) return;
      const length = /content-length:\s*(\d+)/i.exec(data.slice(0, split));
      const body = data.slice(split + 4);
      if (length && body.length < Number(length[1])) return;
      clearTimeout(timer);
      socket.destroy();
      resolve({ status: Number(data.slice(9, 12)), body, ms: Date.now() - started });
    });
    socket.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

function metricValue(text: string, name: string, labels: Record<string, string>): number {
  let total = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    const matches = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
    if (matches) total += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return total;
}

const KEYS = [
  "key-a=tenant-a",
  "key-b=tenant-b",
  "key-drop=tenant-drop",
  "key-allow=tenant-allow",
  "key-silent=tenant-silent",
  "key-tiny=tenant-tiny",
  "key-core=tenant-core",
].join(",");

const TENANTS = {
  tenants: {
    "tenant-drop": { pii_policy: "drop" },
    "tenant-allow": { pii_policy: "allow" },
    "tenant-silent": { silent: true, rate_per_sec: 1, burst: 5 },
    "tenant-tiny": { rate_per_sec: 1, burst: 5 },
    "tenant-core": { schema_packs: ["core"] },
  },
};

const JSON_HEADERS = { "content-type": "application/json", "x-api-key": "key-a" };

const ATTEMPT = {
  event_name: "attempt",
  session_id: "learn-1",
  user_id: "learner-1",
  properties: {
    item_id: "0b6f3c1e-6c1a-4f7e-9d7b-2f1c3a9e8d01",
    client_attempt_id: "9a1d3c52-0d8e-4b55-8f7a-0c9b1e2d3f40",
    correct: true,
    time_taken_ms: 4200,
  },
};

interface Row {
  name: string;
  method?: string;
  headers: Record<string, string>;
  /** Builds the body around the row's marker. */
  body: (marker: string) => string | Buffer;
  status: number;
  code: string;
  /** Expected rejected[].errors of a request whose every event was rejected. */
  errors?: string[][];
  /** Raw-socket rows: the request head, the part of the body sent, how long to wait. */
  raw?: { head: (length: number) => string; waitMs: number };
}

const event = (marker: string, extra: Record<string, unknown> = {}) => ({ event_name: marker, session_id: `sess-${marker}`, ...extra });
const batch = (...events: unknown[]) => JSON.stringify({ events });

function nested(depth: number, leaf: unknown): unknown {
  let value = leaf;
  for (let i = 0; i < depth; i++) value = { d: value };
  return value;
}

const ROWS: Row[] = [
  // Auth: the body is never read, whatever it holds.
  { name: "no API key", headers: { "content-type": "application/json" }, body: (m) => batch(event(m)), status: 401, code: "unauthorized" },
  { name: "unknown API key", headers: { ...JSON_HEADERS, "x-api-key": "key-zzz" }, body: (m) => batch(event(m)), status: 401, code: "unauthorized" },
  { name: "key in other case", headers: { ...JSON_HEADERS, "x-api-key": "KEY-A" }, body: (m) => batch(event(m)), status: 401, code: "unauthorized" },
  { name: "key with a suffix", headers: { ...JSON_HEADERS, "x-api-key": "key-a-" }, body: (m) => batch(event(m)), status: 401, code: "unauthorized" },
  { name: "Authorization: Basic", headers: { "content-type": "application/json", authorization: `Basic ${Buffer.from("key-a:").toString("base64")}` }, body: (m) => batch(event(m)), status: 401, code: "unauthorized" },
  { name: "Authorization: Bearer without a key", headers: { "content-type": "application/json", authorization: "Bearer" }, body: (m) => batch(event(m)), status: 401, code: "unauthorized" },
  { name: "Authorization: Token scheme", headers: { "content-type": "application/json", authorization: "Token key-a" }, body: (m) => batch(event(m)), status: 401, code: "unauthorized" },
  { name: "Authorization: Bearer wrong key", headers: { "content-type": "application/json", authorization: "Bearer key-b2" }, body: (m) => batch(event(m)), status: 401, code: "unauthorized" },
  { name: "the digest of a hashed key instead of the key", headers: { ...JSON_HEADERS, "x-api-key": sha("hashed-key") }, body: (m) => batch(event(m)), status: 401, code: "unauthorized" },
  // Content type and encoding.
  { name: "Content-Type: application/xml", headers: { ...JSON_HEADERS, "content-type": "application/xml" }, body: (m) => batch(event(m)), status: 415, code: "unsupported_media_type" },
  { name: "Content-Type: multipart/form-data", headers: { ...JSON_HEADERS, "content-type": "multipart/form-data; boundary=x" }, body: (m) => batch(event(m)), status: 415, code: "unsupported_media_type" },
  { name: "Content-Type: application/x-www-form-urlencoded", headers: { ...JSON_HEADERS, "content-type": "application/x-www-form-urlencoded" }, body: (m) => `events=${m}`, status: 415, code: "unsupported_media_type" },
  { name: "Content-Encoding: br", headers: { ...JSON_HEADERS, "content-encoding": "br" }, body: (m) => batch(event(m)), status: 415, code: "unsupported_encoding" },
  { name: "Content-Encoding: deflate", headers: { ...JSON_HEADERS, "content-encoding": "deflate" }, body: (m) => zlib.deflateSync(batch(event(m))), status: 415, code: "unsupported_encoding" },
  { name: "gzip declared, plain body", headers: { ...JSON_HEADERS, "content-encoding": "gzip" }, body: (m) => batch(event(m)), status: 400, code: "invalid_body" },
  { name: "truncated gzip", headers: { ...JSON_HEADERS, "content-encoding": "gzip" }, body: (m) => zlib.gzipSync(batch(event(m))).subarray(0, 30), status: 400, code: "invalid_body" },
  { name: "gzip body, no Content-Encoding", headers: JSON_HEADERS, body: (m) => zlib.gzipSync(batch(event(m))), status: 400, code: "invalid_json" },
  // Size limits.
  {
    name: "gzip bomb (20 MB of JSON in ~20 KB)",
    headers: { ...JSON_HEADERS, "content-encoding": "gzip" },
    body: (m) => zlib.gzipSync(`{"events":[{"event_name":"${m}","session_id":"b","properties":{"pad":"${"a".repeat(20 * 1024 * 1024)}"}}]}`, { level: 9 }),
    status: 413,
    code: "payload_too_large",
  },
  {
    name: "body over MAX_BODY_BYTES",
    headers: JSON_HEADERS,
    body: (m) => batch(event(m, { properties: { pad: "x".repeat(600 * 1024) } })),
    status: 413,
    code: "payload_too_large",
  },
  {
    name: "1001 events (MAX_EVENTS_PER_BATCH 1000)",
    headers: JSON_HEADERS,
    body: (m) => batch(...Array.from({ length: 1001 }, (_, i) => event(m, { seq: i }))),
    status: 413,
    code: "too_many_events",
  },
  {
    name: "event over MAX_EVENT_BYTES (40 KB in short strings)",
    headers: JSON_HEADERS,
    body: (m) => batch(event(m, { properties: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`p${i}`, "x".repeat(4000)])) })),
    status: 400,
    code: "invalid_events",
    errors: [["event must be at most 32768 bytes as JSON (is 40"]],
  },
  {
    name: "string over MAX_STRING_LENGTH",
    headers: JSON_HEADERS,
    body: (m) => batch(event(m, { properties: { note: "n".repeat(9000) } })),
    status: 400,
    code: "invalid_events",
    errors: [["properties.note must be at most 8192 characters long (is 9000)"]],
  },
  {
    name: "501 properties keys, spread over nested objects",
    headers: JSON_HEADERS,
    body: (m) =>
      batch(event(m, { properties: { a: Object.fromEntries(Array.from({ length: 250 }, (_, i) => [`k${i}`, i])), b: Object.fromEntries(Array.from({ length: 249 }, (_, i) => [`k${i}`, i])) } })),
    status: 400,
    code: "invalid_events",
    errors: [["properties must have at most 500 keys in total (has 501)"]],
  },
  // JSON structure and safety.
  { name: "deep nesting (40 levels)", headers: JSON_HEADERS, body: (m) => batch(event(m, { properties: nested(40, 1) })), status: 400, code: "too_deep" },
  { name: "deep arrays", headers: JSON_HEADERS, body: (m) => `{"events":[{"event_name":"${m}","x":${"[".repeat(100)}${"]".repeat(100)}}]}`, status: 400, code: "too_deep" },
  { name: "__proto__ key", headers: JSON_HEADERS, body: (m) => `{"events":[{"event_name":"${m}","properties":{"__proto__":{"admin":true}}}]}`, status: 400, code: "unsafe_json" },
  { name: "top-level __proto__", headers: JSON_HEADERS, body: (m) => `{"__proto__":{"polluted":1},"events":[{"event_name":"${m}"}]}`, status: 400, code: "unsafe_json" },
  { name: "constructor.prototype", headers: JSON_HEADERS, body: (m) => `[{"event_name":"${m}","constructor":{"prototype":{"polluted":1}}}]`, status: 400, code: "unsafe_json" },
  { name: "invalid JSON", headers: JSON_HEADERS, body: (m) => `{"events":[{"event_name":"${m}"`, status: 400, code: "invalid_json" },
  { name: "empty body", headers: JSON_HEADERS, body: () => "", status: 400, code: "invalid_json" },
  { name: "not UTF-8", headers: JSON_HEADERS, body: (m) => Buffer.concat([Buffer.from(`{"events":[{"event_name":"${m}`), Buffer.from([0xff, 0xfe, 0xc0]), Buffer.from('"}]}')]), status: 400, code: "invalid_json" },
  { name: "JSON with a trailing garbage", headers: JSON_HEADERS, body: (m) => `${batch(event(m))} trailing`, status: 400, code: "invalid_json" },
  { name: "events is a string", headers: JSON_HEADERS, body: (m) => JSON.stringify({ events: m }), status: 400, code: "invalid_body" },
  { name: "a bare number", headers: JSON_HEADERS, body: () => "42", status: 400, code: "invalid_body" },
  { name: "null", headers: JSON_HEADERS, body: () => "null", status: 400, code: "invalid_body" },
  // Wrong types and values: every event rejected, by index, with readable errors.
  { name: "event_name is a number", headers: JSON_HEADERS, body: (m) => batch({ event_name: 42, session_id: m }), status: 400, code: "invalid_events", errors: [["event_name must be a string"]] },
  { name: "no event_name", headers: JSON_HEADERS, body: (m) => batch({ session_id: m }), status: 400, code: "invalid_events", errors: [["event_name is required"]] },
  { name: "seq is a word", headers: JSON_HEADERS, body: (m) => batch(event(m, { seq: "one" })), status: 400, code: "invalid_events", errors: [["seq must be a non-negative integer"]] },
  { name: "timestamp is prose", headers: JSON_HEADERS, body: (m) => batch(event(m, { timestamp: "yesterday" })), status: 400, code: "invalid_events", errors: [["timestamp must be an ISO-8601 string or epoch milliseconds"]] },
  { name: "properties is an array", headers: JSON_HEADERS, body: (m) => batch(event(m, { properties: [1, 2] })), status: 400, code: "invalid_events", errors: [["properties must be an object"]] },
  { name: "events are not objects", headers: JSON_HEADERS, body: (m) => JSON.stringify({ events: [m, 1, null] }), status: 400, code: "invalid_events", errors: [["event must be a JSON object"], ["event must be a JSON object"], ["event must be a JSON object"]] },
  { name: "channel outside the enum (seed 004)", headers: JSON_HEADERS, body: (m) => batch(event(m, { channel: "fax" })), status: 400, code: "invalid_events", errors: [["channel must be one of: web, mobile, api, email, push"]] },
  { name: "timestamp before 2000", headers: JSON_HEADERS, body: (m) => batch(event(m, { timestamp: 1000 })), status: 400, code: "invalid_events", errors: [["timestamp must be >= 946684800000"]] },
  {
    name: "attempt with quality 9 (seed 002)",
    headers: JSON_HEADERS,
    body: (m) => batch({ ...ATTEMPT, event_id: m, properties: { ...ATTEMPT.properties, quality: 9, marker: m } }),
    status: 400,
    code: "invalid_events",
    errors: [["properties.quality must be <= 5"]],
  },
  {
    name: "PII under the drop policy",
    headers: { ...JSON_HEADERS, "x-api-key": "key-drop" },
    body: (m) => batch(event(m, { properties: { contact: "write to jane.doe@example.com" } })),
    status: 400,
    code: "invalid_events",
    errors: [["properties.contact contains an email address (pii policy: drop)"]],
  },
  // Wrong method.
  { name: "GET /v1/events", method: "GET", headers: JSON_HEADERS, body: () => "", status: 405, code: "method_not_allowed" },
  { name: "PUT /v1/events", method: "PUT", headers: JSON_HEADERS, body: (m) => batch(event(m)), status: 405, code: "method_not_allowed" },
  // Slow and lying clients (raw sockets).
  {
    name: "slow body that never finishes → 408 after BODY_TIMEOUT_MS",
    headers: {},
    body: (m) => `{"events":[{"event_name":"${m}","session_id":"slow"`,
    status: 408,
    code: "request_timeout",
    raw: {
      head: () => "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-API-Key: key-a\r\nContent-Length: 4000\r\n\r\n",
      waitMs: 5_000,
    },
  },
  {
    name: "declared Content-Length over the limit → 413 before the body",
    headers: {},
    body: (m) => `{"events":[{"event_name":"${m}"}]}`,
    status: 413,
    code: "payload_too_large",
    raw: {
      head: () => "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-API-Key: key-a\r\nContent-Length: 104857600\r\n\r\n",
      waitMs: 5_000,
    },
  },
];

describe("bad input over real HTTP", () => {
  let root: string;
  let dataDir: string;
  let node: NodeProcess;

  /** Every line of every segment file, raw: a marker anywhere in a stored event shows up. */
  const storedText = () =>
    fs
      .readdirSync(dataDir)
      .filter((n) => n.endsWith(".ndjson"))
      .map((n) => fs.readFileSync(path.join(dataDir, n), "utf8"))
      .join("");
  const metrics = async () => (await fetch(`${node.url}/metrics`)).text();

  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "ingest-bad-"));
    dataDir = path.join(root, "data");
    fs.writeFileSync(path.join(root, "tenants.json"), JSON.stringify(TENANTS));
    fs.writeFileSync(path.join(root, "keys.json"), JSON.stringify({ keys: [{ sha256: sha("hashed-key"), tenant: "tenant-hashed" }] }));
    node = await startNodeProcess({
      DATA_DIR: dataDir,
      NODE_ID: "it-bad-input",
      INGEST_API_KEYS: KEYS,
      API_KEYS_FILE: path.join(root, "keys.json"),
      TENANTS_FILE: path.join(root, "tenants.json"),
      BODY_TIMEOUT_MS: "1000",
      // The table holds many unauthenticated rows; the per-IP limit has its own test below.
      UNAUTH_BURST: "10000",
      BATCH_MAX_WAIT_MS: "2",
      LOG_LEVEL: "warn",
    });
  });

  afterAll(async () => {
    await node?.stop("SIGKILL");
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("control: a good request's marker is found in storage (the search below can find things)", async () => {
    const marker = `good-${randomUUID()}`;
    const res = await send(node.url, { headers: JSON_HEADERS, body: batch(event(marker)) });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ accepted: 1, duplicates: 0, rejected: [] });
    expect(storedText()).toContain(marker);
  });

  it("a key stored only as its SHA-256 digest (API_KEYS_FILE) authenticates", async () => {
    const marker = `hashed-${randomUUID()}`;
    const res = await send(node.url, { headers: { ...JSON_HEADERS, "x-api-key": "hashed-key" }, body: batch(event(marker)) });
    expect(res.status).toBe(202);
    const rows = (await readSegments(dataDir)).filter((r) => r.event_name === marker);
    expect(rows.map((r) => r.tenant_id)).toEqual(["tenant-hashed"]);
  });

  it.each(ROWS.map((row, i) => [i, row.name, row] as const))("row %i: %s", async (i, _name, row) => {
    const marker = `row${i}-${randomUUID()}`;
    const body = row.body(marker);
    let status: number;
    let parsed: any;
    let retryAfter: string | null = null;
    if (row.raw) {
      const text = typeof body === "string" ? body : body.toString("latin1");
      const res = await rawRequest(node.port, row.raw.head(text.length), text, row.raw.waitMs);
      status = res.status;
      parsed = JSON.parse(res.body);
    } else {
      const res = await send(node.url, { method: row.method, headers: row.headers, body: row.method === "GET" ? undefined : body });
      status = res.status;
      parsed = res.body;
      retryAfter = res.headers.get("retry-after");
      expect(res.headers.get("content-type")).toBe("application/json");
    }
    expect({ status, code: parsed?.error?.code }).toEqual({ status: row.status, code: row.code });
    expect(typeof parsed.error.message).toBe("string");
    expect(retryAfter).toBeNull();
    if (row.errors) {
      expect(parsed.accepted).toBe(0);
      expect(parsed.rejected.map((r: { index: number }) => r.index)).toEqual(row.errors.map((_, index) => index));
      row.errors.forEach((expected, index) => {
        const actual: string[] = parsed.rejected[index].errors;
        expect(actual).toHaveLength(expected.length);
        expected.forEach((message, k) => expect(actual[k]!.startsWith(message), `${actual[k]} starts with ${message}`).toBe(true));
      });
    }
    // Nothing from the request was stored.
    expect(storedText()).not.toContain(marker);
  });

  it("the node survived the table: /health and a good request still work", async () => {
    expect((await fetch(`${node.url}/health`)).status).toBe(200);
    const marker = `after-${randomUUID()}`;
    expect((await send(node.url, { headers: JSON_HEADERS, body: batch(event(marker)) })).status).toBe(202);
    expect(storedText()).toContain(marker);
  });

  it("partially accepts a batch: schema errors are field-level and readable, by index", async () => {
    const marker = `schema-${randomUUID()}`;
    const res = await send(node.url, {
      headers: JSON_HEADERS,
      body: batch(
        { ...ATTEMPT, properties: { ...ATTEMPT.properties, quality: 4, marker } },
        { ...ATTEMPT, properties: { ...ATTEMPT.properties, quality: 9, confidence: 0, marker } },
        {
          event_name: "session",
          session_id: "learn-1",
          user_id: "learner-1",
          properties: {
            start_time: "2024-01-15T10:00:00Z",
            end_time: "2024-01-15T10:20:00Z",
            items_attempted: 20,
            correct_count: 25,
            session_type: "homework",
            marker,
          },
        },
        { event_name: "placement", session_id: "learn-1", user_id: "learner-1", properties: { items_administered: 12, overall_accuracy: 1.5, was_completed: true, marker } },
        { event_name: "page_view", session_id: "learn-1", channel: "mobile", properties: { marker } },
      ),
    });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({
      accepted: 2,
      duplicates: 0,
      rejected: [
        { index: 1, errors: ["properties.quality must be <= 5", "properties.confidence must be >= 1"] },
        {
          index: 2,
          errors: expect.arrayContaining(["properties.correct_count must be <= 20", "properties.session_type must be one of: practice, exam, review, placement"]),
        },
        { index: 3, errors: expect.arrayContaining(["properties.placement_id is required", "properties.overall_accuracy must be <= 1"]) },
      ],
    });
    const stored = (await readSegments(dataDir)).filter((r) => (r.properties as Record<string, unknown>).marker === marker);
    expect(stored.map((r) => r.event_name).sort()).toEqual(["attempt", "page_view"]);
  });

  it("tenants can have their own schema packs: tenant-core (core only) accepts the attempt tenant-a rejects", async () => {
    const marker = `packs-${randomUUID()}`;
    const body = batch({ ...ATTEMPT, properties: { ...ATTEMPT.properties, quality: 9, marker } });
    expect((await send(node.url, { headers: JSON_HEADERS, body })).status).toBe(400);
    const res = await send(node.url, { headers: { ...JSON_HEADERS, "x-api-key": "key-core" }, body });
    expect(res.status).toBe(202);
    const stored = (await readSegments(dataDir)).filter((r) => (r.properties as Record<string, unknown>).marker === marker);
    expect(stored.map((r) => r.tenant_id)).toEqual(["tenant-core"]);
  });

  describe("privacy re-validation end to end", () => {
    const pii = (marker: string) => ({
      event_name: "profile_updated",
      session_id: `pii-${marker}`,
      properties: {
        marker,
        contact: "write to jane.doe@example.com",
        card: "4111 1111 1111 1111",
        order: "order 4111 1111 1111 1112",
        nested: { list: ["client at 203.0.113.9"] },
      },
    });
    const storedProps = async (marker: string) =>
      (await readSegments(dataDir)).filter((r) => (r.properties as Record<string, unknown>).marker === marker).map((r) => r.properties);

    it("redact (the default) stores [redacted:<kind>] in place of the data; a Luhn-failing number stays", async () => {
      const marker = `redact-${randomUUID()}`;
      const before = await metrics();
      const res = await send(node.url, { headers: JSON_HEADERS, body: batch(pii(marker)) });
      expect(res.status).toBe(202);
      expect(await storedProps(marker)).toEqual([
        {
          marker,
          contact: "write to [redacted:email]",
          card: "[redacted:card]",
          order: "order 4111 1111 1111 1112",
          nested: { list: ["client at [redacted:ip]"] },
        },
      ]);
      expect(storedText()).not.toContain("jane.doe@example.com");
      const after = await metrics();
      for (const kind of ["email", "card", "ip"]) {
        const labels = { kind, tenant: "tenant-a" };
        expect(metricValue(after, "ingest_pii_detections", labels) - metricValue(before, "ingest_pii_detections", labels), kind).toBe(1);
      }
    });

    it("drop rejects the event with the reason and stores nothing; detections are still counted", async () => {
      const marker = `drop-${randomUUID()}`;
      const before = await metrics();
      const res = await send(node.url, { headers: { ...JSON_HEADERS, "x-api-key": "key-drop" }, body: batch(event("fine", { properties: { marker: `${marker}-ok` } }), pii(marker)) });
      expect(res.status).toBe(202);
      expect(res.body).toEqual({ accepted: 1, duplicates: 0, rejected: [{ index: 1, errors: ["properties.contact contains an email address (pii policy: drop)"] }] });
      expect(await storedProps(marker)).toEqual([]);
      const after = await metrics();
      expect(metricValue(after, "ingest_pii_detections", { kind: "email", tenant: "tenant-drop" }) - metricValue(before, "ingest_pii_detections", { kind: "email", tenant: "tenant-drop" })).toBe(1);
      expect(metricValue(after, "ingest_events_rejected", { reason: "pii" }) - metricValue(before, "ingest_events_rejected", { reason: "pii" })).toBe(1);
    });

    it("allow stores the event as sent", async () => {
      const marker = `allow-${randomUUID()}`;
      const res = await send(node.url, { headers: { ...JSON_HEADERS, "x-api-key": "key-allow" }, body: batch(pii(marker)) });
      expect(res.status).toBe(202);
      expect(await storedProps(marker)).toEqual([pii(marker).properties]);
    });
  });

  describe("tenant isolation", () => {
    it("the same session_id, event_id and seq in two tenants are two sessions, neither a duplicate", async () => {
      const id = `iso-${randomUUID()}`;
      const e = { event_id: id, event_name: "x", session_id: "s1", seq: 1 };
      const a = await send(node.url, { headers: JSON_HEADERS, body: batch(e) });
      const b = await send(node.url, { headers: { ...JSON_HEADERS, "x-api-key": "key-b" }, body: batch(e) });
      expect([a.body, b.body]).toEqual([
        { accepted: 1, duplicates: 0, rejected: [] },
        { accepted: 1, duplicates: 0, rejected: [] },
      ]);
      // Within one tenant it is a duplicate.
      expect((await send(node.url, { headers: JSON_HEADERS, body: batch(e) })).body).toEqual({ accepted: 0, duplicates: 1, rejected: [] });
      const rows = (await readSegments(dataDir)).filter((r) => r.event_id === id);
      expect(rows.map((r) => `${r.tenant_id}/${r.session_id}`).sort()).toEqual(["tenant-a/s1", "tenant-b/s1"]);
    });

    it("rate limits are per key: tenant-tiny (1/s, burst 5) gets 429 with Retry-After while tenant-a goes on", async () => {
      const marker = `tiny-${randomUUID()}`;
      const tiny = { ...JSON_HEADERS, "x-api-key": "key-tiny" };
      const first = await send(node.url, { headers: tiny, body: batch(...Array.from({ length: 5 }, (_, i) => event(`${marker}-ok`, { seq: i }))) });
      expect(first.status).toBe(202);
      const over = await send(node.url, { headers: tiny, body: batch(event(marker), event(marker), event(marker)) });
      expect(over.status).toBe(429);
      expect(over.body).toEqual({ error: { code: "rate_limited", message: "Rate limit exceeded" } });
      expect(Number(over.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      expect(Number(over.headers.get("retry-after"))).toBeLessThanOrEqual(5);
      expect((await send(node.url, { headers: JSON_HEADERS, body: batch(event(`${marker}-a`)) })).status).toBe(202);
      expect(storedText()).not.toContain(`"${marker}"`);
    });
  });

  describe("silent mode (seed 000)", () => {
    const silent = { ...JSON_HEADERS, "x-api-key": "key-silent" };

    it("answers 200 {success, processed} for good, bad, and rate-limited requests; metrics keep the truth", async () => {
      const marker = `silent-${randomUUID()}`;
      const before = await metrics();
      const good = await send(node.url, { headers: silent, body: batch(event(`${marker}-ok`), event(`${marker}-ok`), { session_id: "no-name" }) });
      expect({ status: good.status, body: good.body }).toEqual({ status: 200, body: { success: true, processed: 2 } });
      const seed = await send(node.url, {
        headers: silent,
        body: '{"events":[{"eventType":"click","timestamp":"2024-01-15T10:30:45Z","sessionId":"sess-123","route":"/checkout","target":{"type":"button"},"metadata":{}}]}',
      });
      expect({ status: seed.status, body: seed.body }).toEqual({ status: 200, body: { success: true, processed: 1 } });
      for (const body of [`{"events":[{"event_name":"${marker}"`, batch({ event_name: 7 }), "null"]) {
        const res = await send(node.url, { headers: silent, body });
        expect({ status: res.status, body: res.body }).toEqual({ status: 200, body: { success: true, processed: 0 } });
      }
      // Burst 5 is spent (2 + 1 + leases): a batch of 4 more is over the limit, still a 200.
      const limited = await send(node.url, { headers: silent, body: batch(...Array.from({ length: 4 }, () => event(marker))) });
      expect({ status: limited.status, body: limited.body, retryAfter: limited.headers.get("retry-after") }).toEqual({
        status: 200,
        body: { success: true, processed: 0 },
        retryAfter: null,
      });
      const wrongType = await send(node.url, { headers: { ...silent, "content-type": "text/html" }, body: batch(event(marker)) });
      expect({ status: wrongType.status, body: wrongType.body }).toEqual({ status: 200, body: { success: true, processed: 0 } });
      // An unknown key has no tenant, so no silent mode: the honest 401.
      expect((await send(node.url, { headers: { ...silent, "x-api-key": "key-silent-x" }, body: "{}" })).status).toBe(401);

      expect(storedText()).not.toContain(`"${marker}"`);
      const after = await metrics();
      const delta = (name: string, labels: Record<string, string>) => metricValue(after, name, labels) - metricValue(before, name, labels);
      expect(delta("ingest_http_requests", { status: "202" })).toBe(2);
      expect(delta("ingest_http_requests", { status: "400" })).toBe(3);
      expect(delta("ingest_http_requests", { status: "429" })).toBe(1);
      expect(delta("ingest_http_requests", { status: "415" })).toBe(1);
      expect(delta("ingest_events_rejected", { reason: "rate_limited" })).toBe(4);
      expect(delta("ingest_events_accepted", { tenant: "tenant-silent" })).toBe(3);
    });

    it("covers every ingest path, an unknown one under /api/v1/events/ included; the metric keeps its 404", async () => {
      const before = await metrics();
      const unknown = await send(node.url, { path: "/api/v1/events/nope", headers: silent, body: batch(event("x")) });
      expect({ status: unknown.status, body: unknown.body }).toEqual({ status: 200, body: { success: true, processed: 0 } });
      // Another tenant hears the truth on the same path.
      expect((await send(node.url, { path: "/api/v1/events/nope", headers: { ...JSON_HEADERS, "x-api-key": "key-a" }, body: "{}" })).status).toBe(404);
      const after = await metrics();
      expect(metricValue(after, "ingest_http_requests", { route: "other", status: "404" }) - metricValue(before, "ingest_http_requests", { route: "other", status: "404" })).toBe(2);
    });
  });
});

describe("unauthenticated callers are limited per client IP", () => {
  let root: string;
  let node: NodeProcess;

  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "ingest-unauth-"));
    node = await startNodeProcess({
      DATA_DIR: path.join(root, "data"),
      NODE_ID: "it-unauth",
      INGEST_API_KEYS: "key-a=tenant-a",
      UNAUTH_RATE_PER_SEC: "1",
      UNAUTH_BURST: "3",
      LOG_LEVEL: "warn",
    });
  });

  afterAll(async () => {
    await node?.stop("SIGKILL");
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("past UNAUTH_BURST a guesser gets 429 + Retry-After instead of 401; a valid key is not affected", async () => {
    const statuses: number[] = [];
    let limited: Reply | null = null;
    for (let i = 0; i < 8; i++) {
      const res = await send(node.url, { headers: { "content-type": "application/json", "x-api-key": `guess-${i}` }, body: "{}" });
      statuses.push(res.status);
      if (res.status === 429) limited = res;
    }
    // 3 from the burst, and at most one more refilled while the loop ran.
    expect(statuses.slice(0, 3)).toEqual([401, 401, 401]);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(4);
    expect(limited!.body.error.code).toBe("rate_limited");
    expect(Number(limited!.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    const ok = await send(node.url, { headers: { "content-type": "application/json", "x-api-key": "key-a" }, body: batch(event("ok")) });
    expect(ok.status).toBe(202);
    const text = await (await fetch(`${node.url}/metrics`)).text();
    expect(metricValue(text, "ingest_ratelimit_throttled", { scope: "ip" })).toBeGreaterThanOrEqual(4);
  });
});

describe("behind trusted proxies, the per-address limit reads X-Forwarded-For", () => {
  let root: string;
  let node: NodeProcess;

  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "ingest-proxied-"));
    node = await startNodeProcess({
      DATA_DIR: path.join(root, "data"),
      NODE_ID: "it-proxied",
      INGEST_API_KEYS: "key-a=tenant-a",
      UNAUTH_RATE_PER_SEC: "1",
      UNAUTH_BURST: "2",
      // The test's requests come from 127.0.0.1: to this node they are a load balancer's.
      TRUSTED_PROXIES: "127.0.0.0/8, ::1",
      LOG_LEVEL: "warn",
    });
  });

  afterAll(async () => {
    await node?.stop("SIGKILL");
    fs.rmSync(root, { recursive: true, force: true });
  });

  const guess = (forwardedFor: string) =>
    send(node.url, { headers: { "content-type": "application/json", "x-api-key": "guess", "x-forwarded-for": forwardedFor }, body: "{}" });

  it("each forwarded client has its own budget, and a spoofed left-most entry does not buy a new one", async () => {
    const first: number[] = [];
    for (let i = 0; i < 4; i++) first.push((await guess("203.0.113.1")).status);
    expect(first.slice(0, 2)).toEqual([401, 401]);
    expect(first.slice(2)).toContain(429);
    // Another client behind the same proxy is not throttled by the first one's guesses.
    expect((await guess("203.0.113.2")).status).toBe(401);
    // The first client writing its own header: the proxy appends the real address on the right.
    const spoofed: number[] = [];
    for (let i = 0; i < 3; i++) spoofed.push((await guess(`198.51.100.${i}, 203.0.113.1`)).status);
    expect(spoofed).toContain(429);
  });
});

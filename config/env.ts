/**
 * Typed configuration from the environment, parsed and validated once at start-up.
 *
 * Every variable is described in one table (VARIABLES) so that parsing, defaults and the
 * README table cannot drift apart. A bad value throws a ConfigError that names the variable;
 * the entry point prints it and exits non-zero before anything listens.
 */
import os from "node:os";
import { ConfigError } from "./config-error";
import { loadApiKeysFile, mergeApiKeys, type ApiKeyFileEntry } from "./keys-file";
import { TrustedProxies } from "../nodes/edge/client-address";
import { CorsPolicy } from "../nodes/edge/cors";
import {
  defaultSchemasDir,
  loadTenantTable,
  parseSchemaPacks,
  PII_POLICIES,
  type PiiPolicyName,
  type TenantTable,
} from "./tenants";

export { ConfigError };

export const SERVICE_NAMES = ["edge", "session", "validator", "rate-limiter", "storage-writer", "forwarder"] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
const LOG_LEVELS: readonly LogLevel[] = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/** A key with its tenant: the key itself, or only its SHA-256 digest (hex) from API_KEYS_FILE. */
export type ApiKeyEntry = ApiKeyFileEntry;

export interface Config {
  port: number;
  host: string;
  nodeId: string;
  services: ReadonlySet<ServiceName>;
  natsUrl: string | null;
  clickhouseUrl: string | null;
  clickhouseDatabase: string;
  dataDir: string;
  apiKeys: ApiKeyEntry[];
  /** True when no INGEST_API_KEYS was given and the node fell back to the `dev` key. */
  usingDevKey: boolean;
  forwardUrl: string | null;
  /** NATS subject the forwarder publishes to instead of FORWARD_URL (cluster mode). */
  forwardSubject: string | null;
  forwardBreakerFailures: number;
  forwardBreakerCooldownMs: number;
  logLevel: LogLevel;
  /** A storage batch closes at this many events... */
  batchMaxEvents: number;
  /** ...or this many milliseconds after its first event, whichever comes first. */
  batchMaxWaitMs: number;
  /** Storage commits start at least this many milliseconds apart (caps ClickHouse parts per second). */
  batchMinIntervalMs: number;
  segmentMaxBytes: number;
  segmentMaxAgeMs: number;
  /** Single-process ClickHouse: the local spool acks are made durable in (null: ack after the insert); see spooled-sink.ts. */
  spoolDir: string | null;
  spoolMaxBytes: number;
  spoolInsertMaxEvents: number;
  spoolInsertWaitMs: number;
  spoolMemoryEvents: number;
  maxBodyBytes: number;
  maxEventsPerBatch: number;
  /** Event ids each node's session actor remembers for duplicate detection (LRU). */
  dedupWindow: number;
  rateLimitEventsPerSec: number;
  rateLimitBurst: number;
  /** Tenant default of the per-user limit (0: none) and its burst (null: twice the rate); see tenants.ts. */
  rateLimitUserEventsPerSec: number;
  rateLimitUserBurst: number | null;
  shutdownTimeoutMs: number;
  /** WebSocket streams: largest frame (defaults to maxBodyBytes). */
  wsMaxPayloadBytes: number;
  /** WebSocket streams: seconds without traffic before uWS closes a socket (it pings first). */
  wsIdleTimeoutSec: number;
  /** WebSocket streams: un-acknowledged batches one socket may have in flight. */
  wsMaxInflight: number;
  /** WebSocket streams: bytes queued towards a socket before uWS drops and closes it. */
  wsMaxBackpressureBytes: number;
  /** JetStream: the event stream is split into this many partition subjects (forwarder order unit). */
  streamPartitions: number;
  streamMaxAgeSec: number;
  streamMaxBytes: number;
  streamReplicas: number;
  /** A consumer message not acked this long after delivery is redelivered (e.g. its writer died). */
  consumerAckWaitMs: number;
  heartbeatIntervalSec: number;
  heartbeatTimeoutSec: number;
  /** ClickHouse: partitions older than this many days are dropped. */
  retentionDays: number;
  /** API_KEYS_FILE: where extra keys (plaintext or SHA-256 digests) were read from, if anywhere. */
  apiKeysFile: string | null;
  /** Per-tenant rate limit, privacy policy, silent mode and schema packs (TENANTS_FILE over env defaults). */
  tenants: TenantTable;
  /** Folder of the JSON Schema packs (one sub-folder per pack). */
  schemasDir: string;
  /** Largest normalised event, as JSON bytes (rejected with reason `limits` above). */
  maxEventBytes: number;
  /** Deepest nesting of objects/arrays in a request body (400 too_deep above). */
  maxJsonDepth: number;
  /** Longest string (or object key) anywhere in an event's properties, in characters. */
  maxStringLength: number;
  /** Most keys in an event's properties, counted at every depth. */
  maxPropertiesKeys: number;
  /** How far an event's timestamp may be ahead of its receive time, seconds; 0: no bound. */
  maxFutureTimestampSec: number;
  /** A request body that has not fully arrived this long after its headers gets 408. */
  bodyTimeoutMs: number;
  /** Unauthenticated requests (missing/unknown key) per second per client IP before 429 replaces 401. */
  unauthRatePerSec: number;
  unauthBurst: number;
  /** Proxies whose X-Forwarded-For names the client (for the per-address limit); none by default. */
  trustedProxies: TrustedProxies;
  /** Which browser origins may call the ingest and count paths (CORS). */
  cors: CorsPolicy;
}

type Env = Record<string, string | undefined>;

interface VariableSpec {
  name: string;
  default: string;
  description: string;
}

/** The configuration contract. The README table is generated from the same facts. */
export const VARIABLES: readonly VariableSpec[] = [
  { name: "PORT", default: "8080", description: "HTTP/WebSocket port of the edge" },
  { name: "HOST", default: "0.0.0.0", description: "Address the edge listens on" },
  { name: "NODE_ID", default: "<hostname>-<pid>", description: "Moleculer node id; must be unique in a cluster" },
  {
    name: "SERVICES",
    default: "all",
    description: `Comma list of services this node runs (${SERVICE_NAMES.join(", ")}) or \`all\``,
  },
  { name: "NATS_URL", default: "(unset)", description: "NATS server; unset = single-process mode (no transporter)" },
  { name: "CLICKHOUSE_URL", default: "(unset)", description: "ClickHouse HTTP URL; unset = NDJSON file sink under DATA_DIR" },
  { name: "CLICKHOUSE_DATABASE", default: "ingest", description: "ClickHouse database (created at start-up)" },
  { name: "DATA_DIR", default: "./data", description: "Directory of the file sink's segment files" },
  {
    name: "INGEST_API_KEYS",
    default: "(unset)",
    description: "`key=tenant,key2=tenant2`; unset in single-process mode = key `dev` for tenant `dev` (with a warning)",
  },
  { name: "API_KEYS_FILE", default: "(unset)", description: "JSON file of more keys, plaintext or SHA-256 digests, each optionally limited to `scopes` (`ingest`, `counts`): `{\"keys\":[{\"key\"|\"sha256\":\"...\",\"tenant\":\"...\",\"scopes\":[...]}]}`" },
  { name: "TENANTS_FILE", default: "(unset)", description: "JSON file of per-tenant settings (rates, bursts, PII policy, silent mode, schema packs) over the defaults below; read again on SIGHUP" },
  { name: "FORWARD_URL", default: "(unset)", description: "HTTP endpoint the forwarder POSTs ordered JSON batches to" },
  { name: "FORWARD_SUBJECT", default: "(unset)", description: "NATS subject the forwarder publishes ordered JSON batches to (cluster mode; instead of FORWARD_URL)" },
  { name: "FORWARD_BREAKER_FAILURES", default: "5", description: "Consecutive forward failures that open the circuit breaker" },
  { name: "FORWARD_BREAKER_COOLDOWN_MS", default: "5000", description: "Open circuit waits this long before one probe" },
  { name: "LOG_LEVEL", default: "info", description: `pino level: ${LOG_LEVELS.join(", ")}` },
  { name: "BATCH_MAX_EVENTS", default: "5000 / 20000 / 50000", description: "A storage batch closes at this many events (file / ClickHouse single-process, with or without a spool / ClickHouse cluster)" },
  { name: "BATCH_MAX_WAIT_MS", default: "20 / 0 / 1000", description: "...or this many ms after its first event, whichever first" },
  { name: "BATCH_MIN_INTERVAL_MS", default: "0 / 10 (0 with SPOOL_DIR) / 0", description: "Storage commits start at least this many ms apart (single-process ClickHouse: at most 100 inserts/s)" },
  { name: "SPOOL_DIR", default: "(unset)", description: "Single-process ClickHouse: acknowledge once a batch is fsynced in a local spool under this directory and insert into ClickHouse behind it, in large inserts; a ClickHouse outage then fills the spool instead of answering 503. Unset: acknowledge after the insert" },
  { name: "SPOOL_MAX_BYTES", default: "1073741824", description: "Spool: writes are refused (503) while it holds this many bytes not yet in ClickHouse" },
  { name: "SPOOL_INSERT_MAX_EVENTS", default: "20000", description: "Spool: most events in one ClickHouse insert" },
  { name: "SPOOL_INSERT_WAIT_MS", default: "200", description: "Spool: an insert starts this long after the oldest waiting batch was spooled, or sooner at SPOOL_INSERT_MAX_EVENTS" },
  { name: "SPOOL_MEMORY_EVENTS", default: "100000", description: "Spool: events also kept in memory for their insert; beyond, they are read back from disk" },
  { name: "SEGMENT_MAX_BYTES", default: "67108864", description: "File sink and spool: rotate a segment at this size (the spool writes each segment at this size ahead of use)" },
  { name: "SEGMENT_MAX_AGE_MS", default: "300000", description: "File sink: rotate a segment at this age" },
  { name: "MAX_BODY_BYTES", default: "524288", description: "Largest accepted request body (413 above)" },
  { name: "MAX_EVENTS_PER_BATCH", default: "1000", description: "Most events in one request (413 above)" },
  { name: "DEDUP_WINDOW", default: "250000", description: "Client event ids each node's session actor remembers to drop duplicates (the most recent ones: this many UUIDs and this many ids of other shapes); also the JetStream messages a storage writer remembers to drop redeliveries" },
  { name: "RATE_LIMIT_EVENTS_PER_SEC", default: "100000", description: "Token bucket rate per API key (tenant default; TENANTS_FILE `rate_per_sec`)" },
  { name: "RATE_LIMIT_BURST", default: "200000", description: "Token bucket burst per API key (tenant default; TENANTS_FILE `burst`)" },
  { name: "RATE_LIMIT_USER_EVENTS_PER_SEC", default: "0", description: "Events per second one user (`user_id`, else `session_id`) may send through one edge node; past it that user's events are rejected (tenant default; `TENANTS_FILE` `user_rate_per_sec`; 0 = no limit)" },
  { name: "RATE_LIMIT_USER_BURST", default: "2 × the rate", description: "Burst of that per-user bucket (tenant default; `TENANTS_FILE` `user_burst`)" },
  { name: "PII_POLICY", default: "redact", description: `What to do with personal data in an event (tenant default): ${PII_POLICIES.join(", ")}` },
  { name: "SILENT_MODE", default: "false", description: "Tenant default: answer every request 200 {\"success\":true,\"processed\":n} (seed-000 clients)" },
  { name: "SCHEMAS_DIR", default: "config/schemas", description: "Folder of the JSON Schema packs (the packs shipped with the node)" },
  { name: "SCHEMA_PACKS", default: "core,learning", description: "Schema packs of every tenant (tenant default; `none` for none)" },
  { name: "MAX_EVENT_BYTES", default: "32768", description: "Largest event, as normalised JSON (the event is rejected above)" },
  { name: "MAX_JSON_DEPTH", default: "32", description: "Deepest object/array nesting of a request body (400 too_deep above)" },
  { name: "MAX_STRING_LENGTH", default: "8192", description: "Longest string or key in an event's properties, in characters" },
  { name: "MAX_PROPERTIES_KEYS", default: "500", description: "Most keys in an event's properties, counted at every depth" },
  { name: "MAX_FUTURE_TIMESTAMP_SEC", default: "86400", description: "How far an event's timestamp may be ahead of its receive time (a day; the event is rejected above; 0 = no bound)" },
  { name: "BODY_TIMEOUT_MS", default: "10000", description: "A request body not fully received this long after its headers gets 408" },
  { name: "UNAUTH_RATE_PER_SEC", default: "10", description: "Requests with a missing/unknown key per second per client IP; 429 instead of 401 above" },
  { name: "UNAUTH_BURST", default: "20", description: "Burst of requests with a missing/unknown key per client IP" },
  { name: "CORS_ALLOWED_ORIGINS", default: "*", description: "Origins whose pages may call the ingest and count paths from a browser: `*` (any), `none`, or a comma list (`https://app.example.com,https://*.example.org`); a request from an origin outside a list is refused 403" },
  { name: "TRUSTED_PROXIES", default: "(unset)", description: "Comma-separated proxy addresses/CIDR networks; a request from one of them counts as from the client its X-Forwarded-For names" },
  { name: "SHUTDOWN_TIMEOUT_MS", default: "9000", description: "Drain budget on SIGTERM before a forced exit" },
  { name: "WS_MAX_PAYLOAD_BYTES", default: "MAX_BODY_BYTES", description: "Largest WebSocket batch frame (error frame + close 1009 above)" },
  { name: "WS_IDLE_TIMEOUT_SEC", default: "60", description: "WebSocket idle timeout, with automatic pings (0 = off, else 8-960)" },
  { name: "WS_MAX_INFLIGHT", default: "64", description: "Un-acknowledged batches per WebSocket; above it a batch is refused (throttle + too_many_inflight)" },
  { name: "WS_MAX_BACKPRESSURE_BYTES", default: "1048576", description: "Bytes queued to a WebSocket that does not read; new batches are refused above half, the socket is closed above it" },
  { name: "STREAM_PARTITIONS", default: "8", description: "Cluster: partition subjects of the JetStream event stream (forwarding order unit)" },
  { name: "STREAM_MAX_AGE_SEC", default: "604800", description: "Cluster: JetStream keeps events this long at most (the outage buffer)" },
  { name: "STREAM_MAX_BYTES", default: "10737418240", description: "Cluster: JetStream stream size cap; oldest dropped beyond it (counted)" },
  { name: "STREAM_REPLICAS", default: "1", description: "Cluster: JetStream replicas (3 in a NATS cluster that must survive a server loss)" },
  { name: "CONSUMER_ACK_WAIT_MS", default: "30000", description: "Cluster: a consumed batch not acked this long is redelivered to another worker" },
  { name: "HEARTBEAT_INTERVAL_SEC", default: "1", description: "Cluster: Moleculer heartbeat interval" },
  { name: "HEARTBEAT_TIMEOUT_SEC", default: "4", description: "Cluster: a node silent this long is dead and its sessions move" },
  { name: "RETENTION_DAYS", default: "30", description: "ClickHouse: daily partitions older than this are dropped" },
];

/** A variable whose text a class parses (throwing on a bad entry): its message becomes the ConfigError's. */
function parsedSpec<T>(env: Env, name: string, fallback: string, parse: (spec: string) => T): T {
  try {
    return parse(raw(env, name) ?? fallback);
  } catch (error) {
    throw new ConfigError(name, (error as Error).message);
  }
}

function raw(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}

function integer(env: Env, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) throw new ConfigError(name, `must be a whole number, got "${value}"`);
  const parsed = Number(value);
  if (parsed < min || parsed > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${parsed}`);
  return parsed;
}

function url(env: Env, name: string, protocols: readonly string[]): string | null {
  const value = raw(env, name);
  if (value === undefined) return null;
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new ConfigError(name, `is not a valid URL: "${value}"`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must use ${protocols.join(" or ")}, got "${parsed.protocol}"`);
  }
  return value;
}

function parseServices(env: Env): ReadonlySet<ServiceName> {
  const value = raw(env, "SERVICES") ?? "all";
  if (value === "all") return new Set(SERVICE_NAMES);
  const names = value.split(",").map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw new ConfigError("SERVICES", "names no service");
  for (const name of names) {
    if (!(SERVICE_NAMES as readonly string[]).includes(name)) {
      throw new ConfigError("SERVICES", `unknown service "${name}" (known: ${SERVICE_NAMES.join(", ")}, or all)`);
    }
  }
  return new Set(names as ServiceName[]);
}

/** Parses `key=tenant,key2=tenant2`. Keys must be unique; tenants may repeat (several keys per tenant). */
export function parseApiKeys(value: string): ApiKeyEntry[] {
  const entries: ApiKeyEntry[] = [];
  const seen = new Set<string>();
  for (const pair of value.split(",")) {
    const trimmed = pair.trim();
    if (!trimmed) continue;
    const eq = trimmed.indexOf("=");
    if (eq <= 0 || eq === trimmed.length - 1) {
      throw new ConfigError("INGEST_API_KEYS", `entry "${trimmed}" is not key=tenant`);
    }
    const key = trimmed.slice(0, eq).trim();
    const tenant = trimmed.slice(eq + 1).trim();
    if (!/^[A-Za-z0-9_.:-]{1,128}$/.test(tenant)) {
      throw new ConfigError("INGEST_API_KEYS", `tenant "${tenant}" may use only letters, digits and _ . : - (max 128)`);
    }
    if (seen.has(key)) throw new ConfigError("INGEST_API_KEYS", "a key appears twice");
    seen.add(key);
    entries.push({ key, tenant });
  }
  if (entries.length === 0) throw new ConfigError("INGEST_API_KEYS", "is set but holds no key=tenant entry");
  return entries;
}

function boolean(env: Env, name: string, fallback: boolean): boolean {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (/^(true|1|yes)$/i.test(value)) return true;
  if (/^(false|0|no)$/i.test(value)) return false;
  throw new ConfigError(name, `must be true or false, got "${value}"`);
}

function piiPolicy(env: Env): PiiPolicyName {
  const value = raw(env, "PII_POLICY") ?? "redact";
  if (!(PII_POLICIES as readonly string[]).includes(value)) {
    throw new ConfigError("PII_POLICY", `must be one of ${PII_POLICIES.join(", ")}, got "${value}"`);
  }
  return value as PiiPolicyName;
}

/** uWS refuses idle timeouts between 1 and 7 s (its timer granularity is 4 s) and above 960 s. */
function wsIdleTimeout(env: Env): number {
  const value = integer(env, "WS_IDLE_TIMEOUT_SEC", 60, 0, 960);
  if (value > 0 && value < 8) throw new ConfigError("WS_IDLE_TIMEOUT_SEC", `must be 0 (off) or between 8 and 960, got ${value}`);
  return value;
}

/**
 * Storage batch defaults by sink and mode, tuned with `npm run bench` (bench/README.md, "Batch
 * defaults"). Cluster mode: clients are acked on the JetStream publish, so the writer follows
 * ClickHouse's advice (10k-100k rows, about one insert per second per writer); the 1 s linger
 * measured at least as fast as 10 ms there. Single-process mode with ClickHouse: every ack waits
 * for the insert, and the linger is a floor under every ack (200 ms: 220 req/s single events;
 * 50 ms: 755 req/s; 10 ms: ~2,000 req/s, p50 23 ms, no errors); group commit joins the batches that
 * close during an insert, so a short linger does not mean one insert per 10 ms. The file sink's
 * fsync is cheap per batch.
 */
export function defaultBatching(clickhouse: boolean, cluster: boolean, spooled = false): { maxEvents: number; maxWaitMs: number; minIntervalMs: number } {
  if (!clickhouse) return { maxEvents: 5000, maxWaitMs: 20, minIntervalMs: 0 };
  // A spooled batch is an append and an fdatasync, not a part: group commit alone sizes it.
  if (spooled) return { maxEvents: 20_000, maxWaitMs: 0, minIntervalMs: 0 };
  // Single-process ClickHouse acks after the insert, so a batch waits for nothing but a free
  // insert slot; the spacing bounds the parts a trickle of events makes (bench/README.md,
  // "Batch defaults").
  return cluster ? { maxEvents: 50_000, maxWaitMs: 1000, minIntervalMs: 0 } : { maxEvents: 20_000, maxWaitMs: 0, minIntervalMs: 10 };
}

/** SPOOL_DIR: only for single-process mode with ClickHouse (a cluster's spool is JetStream). */
function spoolDir(env: Env, cluster: boolean): string | null {
  const dir = raw(env, "SPOOL_DIR");
  if (dir === undefined) return null;
  if (cluster) throw new ConfigError("SPOOL_DIR", "is for single-process mode; in a cluster (NATS_URL is set) JetStream holds events until they are stored");
  if (raw(env, "CLICKHOUSE_URL") === undefined) throw new ConfigError("SPOOL_DIR", "needs CLICKHOUSE_URL (the file sink already acknowledges after its own fsync)");
  return dir;
}

/**
 * The API keys again, for a reload (SIGHUP): INGEST_API_KEYS as it was at start-up, plus
 * API_KEYS_FILE read anew. Throws ConfigError on a problem with the file (the caller keeps the
 * keys it has), or when there is no file to read.
 */
export function reloadApiKeys(config: Pick<Config, "apiKeysFile">, env: Env = process.env): ApiKeyEntry[] {
  if (config.apiKeysFile === null) throw new ConfigError("API_KEYS_FILE", "is not set: the keys come from INGEST_API_KEYS, which a running node cannot reread");
  const keysValue = raw(env, "INGEST_API_KEYS");
  const envKeys = keysValue === undefined ? [] : parseApiKeys(keysValue);
  return mergeApiKeys(envKeys, loadApiKeysFile(config.apiKeysFile), config.apiKeysFile);
}

export function loadConfig(env: Env = process.env): Config {
  const logLevel = (raw(env, "LOG_LEVEL") ?? "info") as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError("LOG_LEVEL", `must be one of ${LOG_LEVELS.join(", ")}, got "${logLevel}"`);
  }
  const natsUrl = url(env, "NATS_URL", ["nats:", "tls:", "ws:", "wss:"]);
  const keysValue = raw(env, "INGEST_API_KEYS");
  const apiKeysFile = raw(env, "API_KEYS_FILE") ?? null;
  const noKeys = keysValue === undefined && apiKeysFile === null;
  const services = parseServices(env);
  // A cluster edge must never silently accept a well-known key: the dev fallback is single-process only.
  if (noKeys && natsUrl !== null && services.has("edge")) {
    throw new ConfigError("INGEST_API_KEYS", "is required (or API_KEYS_FILE) on edge nodes in cluster mode (NATS_URL is set)");
  }
  const envKeys: ApiKeyEntry[] = keysValue === undefined ? [] : parseApiKeys(keysValue);
  const apiKeys: ApiKeyEntry[] = noKeys
    ? [{ key: "dev", tenant: "dev" }]
    : apiKeysFile === null
      ? envKeys
      : mergeApiKeys(envKeys, loadApiKeysFile(apiKeysFile), apiKeysFile);
  const database = raw(env, "CLICKHOUSE_DATABASE") ?? "ingest";
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(database)) {
    throw new ConfigError("CLICKHOUSE_DATABASE", `must be a plain identifier ([A-Za-z_][A-Za-z0-9_]*), got "${database}"`);
  }
  const nodeId = raw(env, "NODE_ID") ?? `${os.hostname()}-${process.pid}`;
  if (!/^[A-Za-z0-9_.-]{1,128}$/.test(nodeId)) {
    throw new ConfigError("NODE_ID", `may use only letters, digits and _ . - (max 128), got "${nodeId}"`);
  }
  const host = raw(env, "HOST") ?? "0.0.0.0";
  const forwardUrl = url(env, "FORWARD_URL", ["http:", "https:"]);
  const forwardSubject = raw(env, "FORWARD_SUBJECT") ?? null;
  if (forwardSubject !== null) {
    if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(forwardSubject)) {
      throw new ConfigError("FORWARD_SUBJECT", `must be a plain NATS subject (tokens of letters, digits, _ and -), got "${forwardSubject}"`);
    }
    if (natsUrl === null) throw new ConfigError("FORWARD_SUBJECT", "needs NATS_URL (cluster mode)");
    if (forwardUrl !== null) throw new ConfigError("FORWARD_SUBJECT", "set FORWARD_URL or FORWARD_SUBJECT, not both");
  }
  const spool = spoolDir(env, natsUrl !== null);
  const batchDefaults = defaultBatching(raw(env, "CLICKHOUSE_URL") !== undefined, natsUrl !== null, spool !== null);
  const maxBodyBytes = integer(env, "MAX_BODY_BYTES", 512 * 1024, 64, 64 * 1024 * 1024);
  const rateLimitEventsPerSec = integer(env, "RATE_LIMIT_EVENTS_PER_SEC", 100_000, 1);
  const rateLimitBurst = integer(env, "RATE_LIMIT_BURST", 200_000, 1);
  const rateLimitUserEventsPerSec = integer(env, "RATE_LIMIT_USER_EVENTS_PER_SEC", 0, 0);
  const rateLimitUserBurst = raw(env, "RATE_LIMIT_USER_BURST") === undefined ? null : integer(env, "RATE_LIMIT_USER_BURST", 1, 1);
  const schemasDir = raw(env, "SCHEMAS_DIR") ?? defaultSchemasDir();
  const tenants = loadTenantTable(
    raw(env, "TENANTS_FILE") ?? null,
    {
      ratePerSec: rateLimitEventsPerSec,
      burst: rateLimitBurst,
      userRatePerSec: rateLimitUserEventsPerSec,
      userBurst: rateLimitUserBurst,
      piiPolicy: piiPolicy(env),
      silent: boolean(env, "SILENT_MODE", false),
      schemaPacks: parseSchemaPacks(raw(env, "SCHEMA_PACKS") ?? "core,learning"),
    },
    schemasDir,
  );

  return {
    port: integer(env, "PORT", 8080, 0, 65535),
    host,
    nodeId,
    services,
    natsUrl,
    clickhouseUrl: url(env, "CLICKHOUSE_URL", ["http:", "https:"]),
    clickhouseDatabase: database,
    dataDir: raw(env, "DATA_DIR") ?? "./data",
    apiKeys,
    usingDevKey: noKeys && services.has("edge"),
    forwardUrl,
    forwardSubject,
    forwardBreakerFailures: integer(env, "FORWARD_BREAKER_FAILURES", 5, 1, 1000),
    forwardBreakerCooldownMs: integer(env, "FORWARD_BREAKER_COOLDOWN_MS", 5000, 10, 3_600_000),
    logLevel,
    batchMaxEvents: integer(env, "BATCH_MAX_EVENTS", batchDefaults.maxEvents, 1, 1_000_000),
    batchMaxWaitMs: integer(env, "BATCH_MAX_WAIT_MS", batchDefaults.maxWaitMs, 0, 60_000),
    batchMinIntervalMs: integer(env, "BATCH_MIN_INTERVAL_MS", batchDefaults.minIntervalMs, 0, 60_000),
    segmentMaxBytes: integer(env, "SEGMENT_MAX_BYTES", 64 * 1024 * 1024, 1024),
    segmentMaxAgeMs: integer(env, "SEGMENT_MAX_AGE_MS", 300_000, 100),
    spoolDir: spool,
    spoolMaxBytes: integer(env, "SPOOL_MAX_BYTES", 1024 ** 3, 1024 * 1024),
    spoolInsertMaxEvents: integer(env, "SPOOL_INSERT_MAX_EVENTS", 20_000, 1, 1_000_000),
    spoolInsertWaitMs: integer(env, "SPOOL_INSERT_WAIT_MS", 200, 0, 600_000),
    spoolMemoryEvents: integer(env, "SPOOL_MEMORY_EVENTS", 100_000, 0, 10_000_000),
    maxBodyBytes,
    maxEventsPerBatch: integer(env, "MAX_EVENTS_PER_BATCH", 1000, 1, 100_000),
    dedupWindow: integer(env, "DEDUP_WINDOW", 250_000, 0, 10_000_000),
    rateLimitEventsPerSec,
    rateLimitBurst,
    rateLimitUserEventsPerSec,
    rateLimitUserBurst,
    shutdownTimeoutMs: integer(env, "SHUTDOWN_TIMEOUT_MS", 9_000, 100, 600_000),
    wsMaxPayloadBytes: integer(env, "WS_MAX_PAYLOAD_BYTES", maxBodyBytes, 64, 64 * 1024 * 1024),
    wsIdleTimeoutSec: wsIdleTimeout(env),
    wsMaxInflight: integer(env, "WS_MAX_INFLIGHT", 64, 1, 10_000),
    wsMaxBackpressureBytes: integer(env, "WS_MAX_BACKPRESSURE_BYTES", 1024 * 1024, 1024, 1024 * 1024 * 1024),
    streamPartitions: integer(env, "STREAM_PARTITIONS", 8, 1, 1024),
    streamMaxAgeSec: integer(env, "STREAM_MAX_AGE_SEC", 7 * 24 * 3600, 60),
    streamMaxBytes: integer(env, "STREAM_MAX_BYTES", 10 * 1024 ** 3, 1024 * 1024),
    streamReplicas: integer(env, "STREAM_REPLICAS", 1, 1, 5),
    consumerAckWaitMs: integer(env, "CONSUMER_ACK_WAIT_MS", 30_000, 1000, 3_600_000),
    heartbeatIntervalSec: integer(env, "HEARTBEAT_INTERVAL_SEC", 1, 1, 60),
    heartbeatTimeoutSec: integer(env, "HEARTBEAT_TIMEOUT_SEC", 4, 2, 600),
    retentionDays: integer(env, "RETENTION_DAYS", 30, 1, 36500),
    apiKeysFile,
    tenants,
    schemasDir,
    maxEventBytes: integer(env, "MAX_EVENT_BYTES", 32 * 1024, 256, 64 * 1024 * 1024),
    maxJsonDepth: integer(env, "MAX_JSON_DEPTH", 32, 4, 1000),
    maxStringLength: integer(env, "MAX_STRING_LENGTH", 8192, 1, 64 * 1024 * 1024),
    maxPropertiesKeys: integer(env, "MAX_PROPERTIES_KEYS", 500, 1, 1_000_000),
    maxFutureTimestampSec: integer(env, "MAX_FUTURE_TIMESTAMP_SEC", 86_400, 0, 10 * 365 * 86_400),
    bodyTimeoutMs: integer(env, "BODY_TIMEOUT_MS", 10_000, 100, 600_000),
    unauthRatePerSec: integer(env, "UNAUTH_RATE_PER_SEC", 10, 1, 1_000_000),
    unauthBurst: integer(env, "UNAUTH_BURST", 20, 1, 1_000_000),
    trustedProxies: parsedSpec(env, "TRUSTED_PROXIES", "", (spec) => new TrustedProxies(spec)),
    cors: parsedSpec(env, "CORS_ALLOWED_ORIGINS", "*", (spec) => new CorsPolicy(spec)),
  };
}

import os from "node:os";
import { describe, expect, it } from "vitest";
import { ConfigError, SERVICE_NAMES, VARIABLES, loadConfig, parseApiKeys, type Config } from "../../config/env";

/** PORT → port, RATE_LIMIT_EVENTS_PER_SEC → rateLimitEventsPerSec */
function camel(name: string): string {
  return name.toLowerCase().replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
}

const NUMERIC_VARIABLES = VARIABLES.filter((v) => /^\d+$/.test(v.default));

function configError(env: Record<string, string | undefined>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw new Error(`expected a ConfigError, got ${String(error)}`);
  }
  throw new Error("expected a ConfigError, got a config");
}

describe("loadConfig defaults", () => {
  it("an empty environment gives every default", () => {
    const config = loadConfig({});
    // toMatchObject: other settings are being added to Config; every numeric default is also
    // checked against the VARIABLES table below.
    expect(config).toMatchObject({
      port: 8080,
      host: "0.0.0.0",
      nodeId: `${os.hostname()}-${process.pid}`,
      services: new Set(SERVICE_NAMES),
      natsUrl: null,
      clickhouseUrl: null,
      clickhouseDatabase: "ingest",
      dataDir: "./data",
      apiKeys: [{ key: "dev", tenant: "dev" }],
      usingDevKey: true,
      forwardUrl: null,
      logLevel: "info",
      batchMaxEvents: 5000,
      batchMaxWaitMs: 20,
      batchMinIntervalMs: 0,
      segmentMaxBytes: 67108864,
      segmentMaxAgeMs: 300000,
      maxBodyBytes: 524288,
      maxEventsPerBatch: 1000,
      dedupWindow: Number(VARIABLES.find((v) => v.name === "DEDUP_WINDOW")!.default),
      rateLimitEventsPerSec: 100000,
      rateLimitBurst: 200000,
      shutdownTimeoutMs: 9000,
    } satisfies Partial<Config>);
    expect([...config.services]).toEqual([
      "edge",
      "session",
      "validator",
      "rate-limiter",
      "storage-writer",
      "forwarder",
    ]);
  });

  it("blank and whitespace-only values count as unset", () => {
    const config = loadConfig({ PORT: "", HOST: "   ", LOG_LEVEL: " ", NATS_URL: "", INGEST_API_KEYS: "  " });
    expect(config.port).toBe(8080);
    expect(config.host).toBe("0.0.0.0");
    expect(config.logLevel).toBe("info");
    expect(config.natsUrl).toBeNull();
    expect(config.usingDevKey).toBe(true);
  });

  it("every numeric default in the VARIABLES table is the one loadConfig applies", () => {
    const config = loadConfig({}) as unknown as Record<string, unknown>;
    let checked = 0;
    for (const spec of NUMERIC_VARIABLES) {
      expect(config[camel(spec.name)], spec.name).toBe(Number(spec.default));
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(11);
    expect(VARIABLES.find((v) => v.name === "HOST")!.default).toBe(config.host);
    expect(VARIABLES.find((v) => v.name === "LOG_LEVEL")!.default).toBe(config.logLevel);
    expect(VARIABLES.find((v) => v.name === "CLICKHOUSE_DATABASE")!.default).toBe(config.clickhouseDatabase);
    expect(VARIABLES.find((v) => v.name === "DATA_DIR")!.default).toBe(config.dataDir);
  });

  it.each(VARIABLES.filter((v) => /^\d+$/.test(v.default)).map((v) => v.name))(
    "%s is named by the ConfigError for a non-number",
    (name) => {
      const error = configError({ [name]: "abc" });
      expect(error.variable).toBe(name);
      expect(error.message).toBe(`${name}: must be a whole number, got "abc"`);
    },
  );
});

describe("loadConfig parses every variable", () => {
  it("a full environment", () => {
    const config = loadConfig({
      PORT: "9090",
      HOST: "127.0.0.1",
      NODE_ID: "node-1.eu_west",
      SERVICES: "edge, session ,storage-writer",
      NATS_URL: "nats://nats:4222",
      CLICKHOUSE_URL: "https://ch.example:8443",
      CLICKHOUSE_DATABASE: "events_v2",
      DATA_DIR: "/var/lib/ingest",
      INGEST_API_KEYS: "k1=acme, k2=acme,k3=globex",
      FORWARD_URL: "http://sessions:8081/ingest",
      LOG_LEVEL: "debug",
      BATCH_MAX_EVENTS: "100",
      BATCH_MAX_WAIT_MS: "0",
      SEGMENT_MAX_BYTES: "1024",
      SEGMENT_MAX_AGE_MS: "100",
      MAX_BODY_BYTES: "1048576",
      MAX_EVENTS_PER_BATCH: "500",
      DEDUP_WINDOW: "0",
      RATE_LIMIT_EVENTS_PER_SEC: "50",
      RATE_LIMIT_BURST: "75",
      RATE_LIMIT_USER_EVENTS_PER_SEC: "20",
      RATE_LIMIT_USER_BURST: "30",
      SHUTDOWN_TIMEOUT_MS: "15000",
    });
    expect(config).toMatchObject({
      port: 9090,
      host: "127.0.0.1",
      nodeId: "node-1.eu_west",
      services: new Set(["edge", "session", "storage-writer"]),
      natsUrl: "nats://nats:4222",
      clickhouseUrl: "https://ch.example:8443",
      clickhouseDatabase: "events_v2",
      dataDir: "/var/lib/ingest",
      apiKeys: [
        { key: "k1", tenant: "acme" },
        { key: "k2", tenant: "acme" },
        { key: "k3", tenant: "globex" },
      ],
      usingDevKey: false,
      forwardUrl: "http://sessions:8081/ingest",
      logLevel: "debug",
      batchMaxEvents: 100,
      batchMaxWaitMs: 0,
      segmentMaxBytes: 1024,
      segmentMaxAgeMs: 100,
      maxBodyBytes: 1048576,
      maxEventsPerBatch: 500,
      dedupWindow: 0,
      rateLimitEventsPerSec: 50,
      rateLimitBurst: 75,
      rateLimitUserEventsPerSec: 20,
      rateLimitUserBurst: 30,
      shutdownTimeoutMs: 15000,
    } satisfies Partial<Config>);
    expect([...config.services]).toEqual(["edge", "session", "storage-writer"]);
  });

  it.each([
    ["PORT", "0", "port", 0],
    ["PORT", "65535", "port", 65535],
    ["PORT", " 8081 ", "port", 8081],
    ["PORT", "08080", "port", 8080],
    ["BATCH_MAX_EVENTS", "1", "batchMaxEvents", 1],
    ["BATCH_MAX_EVENTS", "1000000", "batchMaxEvents", 1_000_000],
    ["BATCH_MAX_WAIT_MS", "60000", "batchMaxWaitMs", 60_000],
    ["BATCH_MIN_INTERVAL_MS", "0", "batchMinIntervalMs", 0],
    ["BATCH_MIN_INTERVAL_MS", "250", "batchMinIntervalMs", 250],
    ["MAX_BODY_BYTES", "64", "maxBodyBytes", 64],
    ["MAX_BODY_BYTES", "67108864", "maxBodyBytes", 64 * 1024 * 1024],
    ["MAX_EVENTS_PER_BATCH", "100000", "maxEventsPerBatch", 100_000],
    ["DEDUP_WINDOW", "10000000", "dedupWindow", 10_000_000],
    ["SHUTDOWN_TIMEOUT_MS", "100", "shutdownTimeoutMs", 100],
    ["SHUTDOWN_TIMEOUT_MS", "600000", "shutdownTimeoutMs", 600_000],
  ] as const)("%s=%j → %s %i (bounds inclusive)", (name, value, key, expected) => {
    expect(loadConfig({ [name]: value })[key]).toBe(expected);
  });

  it.each(["fatal", "error", "warn", "info", "debug", "trace", "silent"])("LOG_LEVEL=%s", (level) => {
    expect(loadConfig({ LOG_LEVEL: level }).logLevel).toBe(level);
  });

  it.each([
    ["all", SERVICE_NAMES],
    ["edge", ["edge"]],
    ["rate-limiter,forwarder", ["rate-limiter", "forwarder"]],
    ["edge,,session,", ["edge", "session"]],
    ["edge,edge", ["edge"]],
  ] as const)("SERVICES=%j", (value, expected) => {
    expect([...loadConfig({ SERVICES: value }).services]).toEqual(expected);
  });

  it.each(["nats://localhost:4222", "tls://nats:4222", "ws://nats:80", "wss://nats:443"])("NATS_URL=%s", (value) => {
    expect(loadConfig({ NATS_URL: value, INGEST_API_KEYS: "k=t" }).natsUrl).toBe(value);
  });

  it.each([
    // [mode, env, maxEvents, maxWaitMs, minIntervalMs]
    ["file sink", {}, 5000, 20, 0],
    ["single-process ClickHouse", { CLICKHOUSE_URL: "http://ch:8123" }, 20_000, 0, 10],
    ["cluster ClickHouse", { CLICKHOUSE_URL: "http://ch:8123", NATS_URL: "nats://n:4222", INGEST_API_KEYS: "k=t" }, 50_000, 1000, 0],
    ["single-process ClickHouse with a spool", { CLICKHOUSE_URL: "http://ch:8123", SPOOL_DIR: "/var/spool/ingest" }, 20_000, 0, 0],
  ] as const)("batch defaults, %s", (_mode, env, maxEvents, maxWaitMs, minIntervalMs) => {
    const config = loadConfig(env);
    expect([config.batchMaxEvents, config.batchMaxWaitMs, config.batchMinIntervalMs]).toEqual([maxEvents, maxWaitMs, minIntervalMs]);
  });

  it("SPOOL_DIR: off by default; single-process ClickHouse only", () => {
    expect(loadConfig({ CLICKHOUSE_URL: "http://ch:8123" }).spoolDir).toBeNull();
    expect(loadConfig({ CLICKHOUSE_URL: "http://ch:8123", SPOOL_DIR: "/var/spool/ingest" }).spoolDir).toBe("/var/spool/ingest");
    expect(configError({ SPOOL_DIR: "/s" }).message).toBe("SPOOL_DIR: needs CLICKHOUSE_URL (the file sink already acknowledges after its own fsync)");
    expect(configError({ SPOOL_DIR: "/s", CLICKHOUSE_URL: "http://ch:8123", NATS_URL: "nats://n:4222", INGEST_API_KEYS: "k=t" }).message).toMatch(
      /^SPOOL_DIR: is for single-process mode/,
    );
  });

  it("TRUSTED_PROXIES: none by default; a list of addresses and networks otherwise", () => {
    expect(loadConfig({}).trustedProxies.size).toBe(0);
    const proxies = loadConfig({ TRUSTED_PROXIES: "10.0.0.0/8, 192.168.1.7, fd00::/8" }).trustedProxies;
    expect(proxies.size).toBe(3);
    expect([proxies.contains("10.9.9.9"), proxies.contains("192.168.1.7"), proxies.contains("fd00::1"), proxies.contains("192.168.1.8")]).toEqual([true, true, true, false]);
  });

  it.each(["http://localhost:8123", "https://ch:8443/"])("CLICKHOUSE_URL=%s", (value) => {
    expect(loadConfig({ CLICKHOUSE_URL: value }).clickhouseUrl).toBe(value);
  });
});

describe("loadConfig rejects bad values, naming the variable", () => {
  it.each([
    ["PORT", { PORT: "abc" }],
    ["PORT", { PORT: "70000" }],
    ["PORT", { PORT: "65536" }],
    ["PORT", { PORT: "-1" }],
    ["PORT", { PORT: "80.5" }],
    ["PORT", { PORT: "1e3" }],
    ["SERVICES", { SERVICES: "bogus" }],
    ["SERVICES", { SERVICES: "edge,bogus" }],
    ["SERVICES", { SERVICES: "," }],
    ["SERVICES", { SERVICES: "all,edge" }],
    ["SERVICES", { SERVICES: "Edge" }],
    ["NATS_URL", { NATS_URL: "not a url", INGEST_API_KEYS: "k=t" }],
    ["NATS_URL", { NATS_URL: "http://nats:4222", INGEST_API_KEYS: "k=t" }],
    ["CLICKHOUSE_URL", { CLICKHOUSE_URL: "ftp://x" }],
    ["CLICKHOUSE_URL", { CLICKHOUSE_URL: "localhost:8123" }],
    ["FORWARD_URL", { FORWARD_URL: "nats://x" }],
    ["FORWARD_URL", { FORWARD_URL: "::" }],
    ["CLICKHOUSE_DATABASE", { CLICKHOUSE_DATABASE: "a-b;drop" }],
    ["CLICKHOUSE_DATABASE", { CLICKHOUSE_DATABASE: "1abc" }],
    ["CLICKHOUSE_DATABASE", { CLICKHOUSE_DATABASE: "a".repeat(65) }],
    ["CLICKHOUSE_DATABASE", { CLICKHOUSE_DATABASE: "db name" }],
    ["INGEST_API_KEYS", { INGEST_API_KEYS: "novalue" }],
    ["INGEST_API_KEYS", { INGEST_API_KEYS: "a=t1,a=t2" }],
    ["INGEST_API_KEYS", { INGEST_API_KEYS: "=tenant" }],
    ["INGEST_API_KEYS", { INGEST_API_KEYS: "key=" }],
    ["INGEST_API_KEYS", { INGEST_API_KEYS: "key=bad tenant" }],
    ["INGEST_API_KEYS", { INGEST_API_KEYS: "key=t;drop" }],
    ["INGEST_API_KEYS", { INGEST_API_KEYS: ",,," }],
    ["LOG_LEVEL", { LOG_LEVEL: "loud" }],
    ["LOG_LEVEL", { LOG_LEVEL: "INFO" }],
    ["NODE_ID", { NODE_ID: "my node" }],
    ["NODE_ID", { NODE_ID: "node/1" }],
    ["NODE_ID", { NODE_ID: "n".repeat(129) }],
    ["BATCH_MAX_EVENTS", { BATCH_MAX_EVENTS: "0" }],
    ["BATCH_MAX_EVENTS", { BATCH_MAX_EVENTS: "1000001" }],
    ["BATCH_MAX_WAIT_MS", { BATCH_MAX_WAIT_MS: "60001" }],
    ["SEGMENT_MAX_BYTES", { SEGMENT_MAX_BYTES: "1023" }],
    ["SEGMENT_MAX_AGE_MS", { SEGMENT_MAX_AGE_MS: "99" }],
    ["MAX_BODY_BYTES", { MAX_BODY_BYTES: "63" }],
    ["MAX_BODY_BYTES", { MAX_BODY_BYTES: String(64 * 1024 * 1024 + 1) }],
    ["MAX_EVENTS_PER_BATCH", { MAX_EVENTS_PER_BATCH: "0" }],
    ["MAX_EVENTS_PER_BATCH", { MAX_EVENTS_PER_BATCH: "100001" }],
    ["DEDUP_WINDOW", { DEDUP_WINDOW: "10000001" }],
    ["DEDUP_WINDOW", { DEDUP_WINDOW: "lots" }],
    ["RATE_LIMIT_EVENTS_PER_SEC", { RATE_LIMIT_EVENTS_PER_SEC: "0" }],
    ["RATE_LIMIT_BURST", { RATE_LIMIT_BURST: "0" }],
    ["RATE_LIMIT_USER_EVENTS_PER_SEC", { RATE_LIMIT_USER_EVENTS_PER_SEC: "-1" }],
    ["CORS_ALLOWED_ORIGINS", { CORS_ALLOWED_ORIGINS: "example.com" }],
    ["RATE_LIMIT_USER_BURST", { RATE_LIMIT_USER_EVENTS_PER_SEC: "5", RATE_LIMIT_USER_BURST: "0" }],
    ["RATE_LIMIT_BURST", { RATE_LIMIT_BURST: "99999999999999999999" }],
    ["SHUTDOWN_TIMEOUT_MS", { SHUTDOWN_TIMEOUT_MS: "99" }],
    ["SHUTDOWN_TIMEOUT_MS", { SHUTDOWN_TIMEOUT_MS: "600001" }],
  ] as Array<[string, Record<string, string>]>)("%s: %j", (variable, env) => {
    const error = configError(env);
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.name).toBe("ConfigError");
    expect(error.variable).toBe(variable);
    expect(error.message.startsWith(`${variable}: `)).toBe(true);
  });

  it.each([
    [{ PORT: "abc" }, 'PORT: must be a whole number, got "abc"'],
    [{ PORT: "70000" }, "PORT: must be between 0 and 65535, got 70000"],
    [{ LOG_LEVEL: "loud" }, 'LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent, got "loud"'],
    [{ CLICKHOUSE_URL: "ftp://x" }, 'CLICKHOUSE_URL: must use http: or https:, got "ftp:"'],
    [{ NATS_URL: "not a url", INGEST_API_KEYS: "k=t" }, 'NATS_URL: is not a valid URL: "not a url"'],
    [{ INGEST_API_KEYS: "novalue" }, 'INGEST_API_KEYS: entry "novalue" is not key=tenant'],
    [{ INGEST_API_KEYS: "a=t1,a=t2" }, "INGEST_API_KEYS: a key appears twice"],
    [{ TRUSTED_PROXIES: "10.0.0.0/8, lb.internal" }, 'TRUSTED_PROXIES: "lb.internal" is not an IP address or CIDR network'],
    [{ TRUSTED_PROXIES: "10.0.0.0/40" }, 'TRUSTED_PROXIES: "10.0.0.0/40": the prefix length must be 0-32'],
  ] as Array<[Record<string, string>, string]>)("message for %j", (env, message) => {
    expect(configError(env).message).toBe(message);
  });

  it("the duplicate-key message does not echo the key", () => {
    expect(configError({ INGEST_API_KEYS: "s3cr3t-key=t1,s3cr3t-key=t2" }).message).not.toContain("s3cr3t");
  });
});

describe("API keys and cluster mode", () => {
  it("no INGEST_API_KEYS in single-process mode → dev/dev and usingDevKey", () => {
    const config = loadConfig({});
    expect(config.apiKeys).toEqual([{ key: "dev", tenant: "dev" }]);
    expect(config.usingDevKey).toBe(true);
  });

  it("no INGEST_API_KEYS with NATS_URL → ConfigError naming INGEST_API_KEYS", () => {
    const error = configError({ NATS_URL: "nats://nats:4222" });
    expect(error.variable).toBe("INGEST_API_KEYS");
    expect(error.message).toMatch(/^INGEST_API_KEYS: is required .*cluster mode \(NATS_URL is set\)$/);
  });

  it("INGEST_API_KEYS with NATS_URL → cluster config without the dev key", () => {
    const config = loadConfig({ NATS_URL: "nats://nats:4222", INGEST_API_KEYS: "k=t" });
    expect(config.apiKeys).toEqual([{ key: "k", tenant: "t" }]);
    expect(config.usingDevKey).toBe(false);
  });

  it.each([
    ["a=t", [{ key: "a", tenant: "t" }]],
    [" a = t ", [{ key: "a", tenant: "t" }]],
    ["a=t,,b=u,", [{ key: "a", tenant: "t" }, { key: "b", tenant: "u" }]],
    ["a=t,b=t", [{ key: "a", tenant: "t" }, { key: "b", tenant: "t" }]],
    ["k-1.x:y=ten_ant.1:x-y", [{ key: "k-1.x:y", tenant: "ten_ant.1:x-y" }]],
    [`k=${"t".repeat(128)}`, [{ key: "k", tenant: "t".repeat(128) }]],
  ])("parseApiKeys(%j)", (value, expected) => {
    expect(parseApiKeys(value)).toEqual(expected);
  });

  it.each(["a=b=c", `k=${"t".repeat(129)}`, "", " , "])("parseApiKeys(%j) throws", (value) => {
    expect(() => parseApiKeys(value)).toThrow(ConfigError);
  });
});

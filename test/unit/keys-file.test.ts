import { createHash } from "node:crypto";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig, reloadApiKeys } from "../../config/env";
import { configErrorOf, configFileDir } from "../support/config-files";
import { loadApiKeysFile, mergeApiKeys, parseApiKeysFile } from "../../config/keys-file";
import { ApiKeyStore } from "../../nodes/edge/api-keys";

const sha = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");
const { dir, writeFile } = configFileDir("keys-file-");
const errorOf = configErrorOf;

describe("parseApiKeysFile", () => {
  it("reads plaintext keys and SHA-256 digests (any hex case)", () => {
    const entries = parseApiKeysFile(
      {
        keys: [
          { key: "plain-key", tenant: "acme" },
          { sha256: sha("hashed-key").toUpperCase(), tenant: "globex" },
        ],
      },
      "/etc/keys.json",
    );
    expect(entries).toEqual([
      { key: "plain-key", tenant: "acme" },
      { sha256: sha("hashed-key"), tenant: "globex" },
    ]);
  });

  it("reads a key's scopes; a key without them may do everything", () => {
    const entries = parseApiKeysFile(
      {
        keys: [
          { key: "web", tenant: "acme", scopes: ["ingest"] },
          { key: "dash", tenant: "acme", scopes: ["counts"] },
          { key: "full", tenant: "acme" },
        ],
      },
      "/k.json",
    );
    expect(entries[0]).toEqual({ key: "web", tenant: "acme", scopes: ["ingest"] });
    const store = new ApiKeyStore(entries);
    expect([...store.authenticate("web")!.scopes]).toEqual(["ingest"]);
    expect([...store.authenticate("dash")!.scopes]).toEqual(["counts"]);
    expect([...store.authenticate("full")!.scopes]).toEqual(["ingest", "counts"]);
  });

  it.each<[string, unknown, string]>([
    ["not an object", [], "API_KEYS_FILE: /k.json: $ must be object"],
    ["an unknown scope", { keys: [{ key: "a", tenant: "t", scopes: ["admin"] }] }, 'API_KEYS_FILE: /k.json: $.keys[0].scopes[0] must be one of: "ingest", "counts"'],
    ["no scope at all", { keys: [{ key: "a", tenant: "t", scopes: [] }] }, "API_KEYS_FILE: /k.json: $.keys[0].scopes must NOT have fewer than 1 items"],
    ["no keys", {}, "API_KEYS_FILE: /k.json: $.keys is required"],
    ["empty keys", { keys: [] }, "API_KEYS_FILE: /k.json: $.keys must NOT have fewer than 1 items"],
    ["unknown field", { keys: [{ key: "a", tenant: "t", note: 1 }] }, 'API_KEYS_FILE: /k.json: $.keys[0]: unknown field "note"'],
    ["no tenant", { keys: [{ key: "a" }] }, "API_KEYS_FILE: /k.json: $.keys[0].tenant is required"],
    ["bad tenant", { keys: [{ key: "a", tenant: "a b" }] }, 'API_KEYS_FILE: /k.json: $.keys[0].tenant must match pattern "^[A-Za-z0-9_.:-]{1,128}$"'],
    ["short digest", { keys: [{ sha256: "abc", tenant: "t" }] }, 'API_KEYS_FILE: /k.json: $.keys[0].sha256 must match pattern "^[0-9a-fA-F]{64}$"'],
    ["neither", { keys: [{ tenant: "t" }] }, 'API_KEYS_FILE: /k.json: $.keys[0] must have exactly one of "key" or "sha256"'],
    ["both", { keys: [{ key: "a", sha256: sha("a"), tenant: "t" }] }, 'API_KEYS_FILE: /k.json: $.keys[0] must have exactly one of "key" or "sha256"'],
    ["empty key", { keys: [{ key: "", tenant: "t" }] }, "API_KEYS_FILE: /k.json: $.keys[0].key must NOT have fewer than 1 characters"],
    ["key too long", { keys: [{ key: "k".repeat(1025), tenant: "t" }] }, "API_KEYS_FILE: /k.json: $.keys[0].key must NOT have more than 1024 characters"],
    [
      "the same key twice, once as a digest",
      { keys: [{ key: "a", tenant: "t" }, { key: "b", tenant: "t" }, { sha256: sha("a"), tenant: "u" }] },
      "API_KEYS_FILE: /k.json: $.keys[2] is the same key as $.keys[0]",
    ],
  ])("%s → %s", (_name, data, message) => {
    const error = errorOf(() => parseApiKeysFile(data, "/k.json"));
    expect(error.variable).toBe("API_KEYS_FILE");
    expect(error.message).toBe(message);
  });

  it("never echoes a plaintext key in an error", () => {
    const error = errorOf(() => parseApiKeysFile({ keys: [{ key: "s3cr3t", tenant: "t" }, { key: "s3cr3t", tenant: "u" }] }, "/k.json"));
    expect(error.message).not.toContain("s3cr3t");
  });
});

describe("loadApiKeysFile and mergeApiKeys", () => {
  it("reads a file", () => {
    const file = writeFile("ok.json", { keys: [{ key: "k1", tenant: "a" }] });
    expect(loadApiKeysFile(file)).toEqual([{ key: "k1", tenant: "a" }]);
  });

  it("a missing file or invalid JSON names the variable and the file", () => {
    expect(errorOf(() => loadApiKeysFile(path.join(dir, "absent.json"))).message).toMatch(/^API_KEYS_FILE: cannot read .*absent\.json: /);
    const bad = writeFile("bad.json", "{keys:");
    expect(errorOf(() => loadApiKeysFile(bad)).message).toMatch(/^API_KEYS_FILE: .*bad\.json is not valid JSON: /);
  });

  it("a key both in INGEST_API_KEYS and in the file is refused", () => {
    const error = errorOf(() => mergeApiKeys([{ key: "k", tenant: "a" }], [{ sha256: sha("k"), tenant: "b" }], "/k.json"));
    expect(error.message).toBe("API_KEYS_FILE: /k.json: $.keys[0] is also in INGEST_API_KEYS");
  });
});

describe("API_KEYS_FILE in loadConfig and the ApiKeyStore", () => {
  const file = writeFile("keys.json", {
    keys: [
      { key: "file-plain", tenant: "acme" },
      { sha256: sha("file-hashed"), tenant: "globex" },
    ],
  });

  it("adds the file's keys to INGEST_API_KEYS; digests authenticate their key", () => {
    const config = loadConfig({ INGEST_API_KEYS: "env-key=initech", API_KEYS_FILE: file });
    expect(config.usingDevKey).toBe(false);
    expect(config.apiKeysFile).toBe(file);
    const store = new ApiKeyStore(config.apiKeys);
    expect(store.size).toBe(3);
    expect(store.authenticate("env-key")?.tenant).toBe("initech");
    expect(store.authenticate("file-plain")?.tenant).toBe("acme");
    expect(store.authenticate("file-hashed")).toMatchObject({ tenant: "globex", keyId: sha("file-hashed").slice(0, 16) });
    // The digest itself is not a key.
    expect(store.authenticate(sha("file-hashed"))).toBeNull();
    expect(store.principals().map((p) => p.tenant).sort()).toEqual(["acme", "globex", "initech"]);
  });

  it("the file alone is enough: no dev key, and cluster mode accepts it", () => {
    const single = loadConfig({ API_KEYS_FILE: file });
    expect(single.usingDevKey).toBe(false);
    expect(new ApiKeyStore(single.apiKeys).authenticate("dev")).toBeNull();
    const cluster = loadConfig({ API_KEYS_FILE: file, NATS_URL: "nats://127.0.0.1:4222" });
    expect(cluster.apiKeys).toHaveLength(2);
  });

  it("a broken file stops loadConfig with a ConfigError naming API_KEYS_FILE", () => {
    const bad = writeFile("broken.json", { keys: [{ key: "a", tenant: "bad tenant" }] });
    const error = errorOf(() => loadConfig({ API_KEYS_FILE: bad }));
    expect(error.variable).toBe("API_KEYS_FILE");
    expect(error.message).toContain("$.keys[0].tenant");
  });
});

describe("reloadApiKeys (SIGHUP)", () => {
  it("reads the file again and keeps INGEST_API_KEYS; the store swaps to the new set at once", () => {
    const file = writeFile("reload.json", { keys: [{ key: "first", tenant: "acme" }] });
    const env = { INGEST_API_KEYS: "env-key=initech", API_KEYS_FILE: file };
    const store = new ApiKeyStore(loadConfig(env).apiKeys);
    expect(store.authenticate("first")?.tenant).toBe("acme");
    writeFile("reload.json", { keys: [{ key: "second", tenant: "globex", scopes: ["counts"] }] });
    store.replace(reloadApiKeys({ apiKeysFile: file }, env));
    expect(store.authenticate("first")).toBeNull();
    expect(store.authenticate("second")).toMatchObject({ tenant: "globex", scopes: new Set(["counts"]) });
    expect(store.authenticate("env-key")?.tenant).toBe("initech");
    expect(store.size).toBe(2);
  });

  it("refuses without a file, and on a broken one, naming API_KEYS_FILE", () => {
    expect(errorOf(() => reloadApiKeys({ apiKeysFile: null }, {})).message).toMatch(/^API_KEYS_FILE: is not set/);
    const file = writeFile("broken.json", "{");
    expect(errorOf(() => reloadApiKeys({ apiKeysFile: file }, {})).variable).toBe("API_KEYS_FILE");
  });
});

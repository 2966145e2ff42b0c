/**
 * API_KEYS_FILE: API keys and their tenants from a JSON file, for deployments with more keys
 * than fit an environment variable, or that must not keep plaintext keys in it.
 *
 *   {"keys": [
 *     {"key": "live-3f9a...", "tenant": "acme"},
 *     {"sha256": "<64 hex digits of SHA-256(key)>", "tenant": "globex"},
 *     {"key": "web-77c1...", "tenant": "acme", "scopes": ["ingest"]}
 *   ]}
 *
 * An entry holds either the key itself or only its SHA-256 digest (hex): the node keeps only
 * digests anyway (nodes/edge/api-keys.ts), so an operator never has to store the plaintext.
 * `scopes` limits what the key may do (default: all of KEY_SCOPES): a key that ships inside web
 * pages should only `ingest`, so that whoever copies it cannot read the tenant's `counts`; a
 * dashboard's key may only read them.
 * Read and validated once at start-up; every problem names API_KEYS_FILE and the JSON path.
 */
import { createHash } from "node:crypto";
import { ConfigError } from "./config-error";
import { checkJson, compileFileSchema, readJsonFile } from "./json-file";

export const KEYS_FILE_VARIABLE = "API_KEYS_FILE";

/** Same rule as INGEST_API_KEYS: tenants end up in metric labels and storage rows. */
export const TENANT_PATTERN = "^[A-Za-z0-9_.:-]{1,128}$";
/** Longer keys are refused by the authenticator, so such an entry could never match. */
export const MAX_KEY_LENGTH = 1024;

/** What a key may do: send events (`ingest`), read event counts (`counts`, GET /v1/metrics). */
export const KEY_SCOPES = ["ingest", "counts"] as const;
export type KeyScope = (typeof KEY_SCOPES)[number];

export type ApiKeyFileEntry = ({ key: string } | { sha256: string }) & {
  tenant: string;
  /** Absent: every scope (INGEST_API_KEYS keys have them all). */
  scopes?: readonly KeyScope[];
};

const validateKeysFile = compileFileSchema({
  type: "object",
  required: ["keys"],
  additionalProperties: false,
  properties: {
    keys: {
      type: "array",
      minItems: 1,
      items: {
        type: "object",
        required: ["tenant"],
        additionalProperties: false,
        properties: {
          key: { type: "string", minLength: 1, maxLength: MAX_KEY_LENGTH },
          sha256: { type: "string", pattern: "^[0-9a-fA-F]{64}$" },
          tenant: { type: "string", pattern: TENANT_PATTERN },
          scopes: { type: "array", minItems: 1, uniqueItems: true, items: { enum: [...KEY_SCOPES] } },
        },
      },
    },
  },
});

/** Hex SHA-256 of a key: the identity two entries are compared by (without echoing either). */
export function keyDigestHex(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

/** The digest an entry stands for, whichever form it was written in. */
export function entryDigestHex(entry: ApiKeyFileEntry): string {
  return "key" in entry ? keyDigestHex(entry.key) : entry.sha256.toLowerCase();
}

/** Validates the parsed content of a keys file; `file` only labels the messages. */
export function parseApiKeysFile(data: unknown, file: string): ApiKeyFileEntry[] {
  checkJson(KEYS_FILE_VARIABLE, file, validateKeysFile, data);
  const items = (data as { keys: Array<{ key?: string; sha256?: string; tenant: string; scopes?: KeyScope[] }> }).keys;
  const entries: ApiKeyFileEntry[] = [];
  const seen = new Map<string, number>();
  items.forEach((item, index) => {
    if ((item.key === undefined) === (item.sha256 === undefined)) {
      throw new ConfigError(KEYS_FILE_VARIABLE, `${file}: $.keys[${index}] must have exactly one of "key" or "sha256"`);
    }
    const entry: ApiKeyFileEntry =
      item.key !== undefined ? { key: item.key, tenant: item.tenant } : { sha256: item.sha256!.toLowerCase(), tenant: item.tenant };
    if (item.scopes !== undefined) entry.scopes = item.scopes;
    const digest = entryDigestHex(entry);
    const first = seen.get(digest);
    // Two entries for one key would make its tenant depend on the order: refuse, without echoing the key.
    if (first !== undefined) {
      throw new ConfigError(KEYS_FILE_VARIABLE, `${file}: $.keys[${index}] is the same key as $.keys[${first}]`);
    }
    seen.set(digest, index);
    entries.push(entry);
  });
  return entries;
}

export function loadApiKeysFile(file: string): ApiKeyFileEntry[] {
  return parseApiKeysFile(readJsonFile(KEYS_FILE_VARIABLE, file), file);
}

/**
 * INGEST_API_KEYS and API_KEYS_FILE together. A key in both would have two tenants: refused,
 * naming API_KEYS_FILE (the one an operator edits to add keys).
 */
export function mergeApiKeys(
  fromEnv: readonly ApiKeyFileEntry[],
  fromFile: readonly ApiKeyFileEntry[],
  file: string,
): ApiKeyFileEntry[] {
  const envDigests = new Set(fromEnv.map(entryDigestHex));
  fromFile.forEach((entry, index) => {
    if (envDigests.has(entryDigestHex(entry))) {
      throw new ConfigError(KEYS_FILE_VARIABLE, `${file}: $.keys[${index}] is also in INGEST_API_KEYS`);
    }
  });
  return [...fromEnv, ...fromFile];
}

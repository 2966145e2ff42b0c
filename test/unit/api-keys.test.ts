import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ApiKeyStore, presentedKey } from "../../nodes/edge/api-keys";

const ENTRIES = [
  { key: "key-acme-1", tenant: "acme" },
  { key: "key-acme-2", tenant: "acme" },
  { key: "k", tenant: "tiny" },
  { key: "x".repeat(1024), tenant: "longest" },
];

const sha = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");

describe("ApiKeyStore.authenticate", () => {
  const store = new ApiKeyStore(ENTRIES);

  it("holds one entry per key", () => {
    expect(store.size).toBe(4);
    expect(new ApiKeyStore([]).size).toBe(0);
  });

  it.each([
    ["key-acme-1", "acme"],
    ["key-acme-2", "acme"],
    ["k", "tiny"],
    ["x".repeat(1024), "longest"],
  ])("the right key %s → tenant %s", (key, tenant) => {
    expect(store.authenticate(key)).toEqual({ tenant, keyId: sha(key).slice(0, 16), scopes: new Set(["ingest", "counts"]) });
  });

  it.each([
    ["wrong key", "key-acme-3"],
    ["prefix of a key", "key-acme-"],
    ["key plus a char", "key-acme-1x"],
    ["different case", "KEY-ACME-1"],
    ["surrounding space", " key-acme-1"],
    ["empty", ""],
    ["undefined", undefined],
    ["very long (1025)", "x".repeat(1025)],
    ["very long (1 MB)", "y".repeat(1024 * 1024)],
    ["unicode", "ключ-🔑"],
    ["NUL byte", "key-acme-1\u0000"],
  ])("%s → null", (_name, presented) => {
    expect(store.authenticate(presented)).toBeNull();
  });

  it("keys of any length never throw (timingSafeEqual compares equal-length digests)", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 2000 }), (presented) => {
        const result = store.authenticate(presented);
        const expected = ENTRIES.find((e) => e.key === presented);
        if (expected && presented.length <= 1024) expect(result?.tenant).toBe(expected.tenant);
        else expect(result).toBeNull();
      }),
      { numRuns: 500 },
    );
  });

  it("keyId is a 16-hex digest prefix that does not contain the key", () => {
    for (const { key } of ENTRIES) {
      const principal = store.authenticate(key);
      expect(principal).not.toBeNull();
      expect(principal!.keyId).toMatch(/^[0-9a-f]{16}$/);
      expect(principal!.keyId).not.toContain(key);
      expect(JSON.stringify(principal)).not.toContain(key.length > 1 ? key : '"k"');
    }
  });

  it("keyIds differ between keys of the same tenant", () => {
    expect(store.authenticate("key-acme-1")!.keyId).not.toBe(store.authenticate("key-acme-2")!.keyId);
  });

  it("a later entry with the same key wins (the store itself does not reject duplicates)", () => {
    const s = new ApiKeyStore([
      { key: "dup", tenant: "first" },
      { key: "dup", tenant: "second" },
    ]);
    expect(s.size).toBe(1);
    expect(s.authenticate("dup")?.tenant).toBe("second");
  });
});

describe("presentedKey", () => {
  it.each([
    [{ "x-api-key": "abc" }, "abc"],
    [{ "x-api-key": "  abc  " }, "abc"],
    [{ authorization: "Bearer abc" }, "abc"],
    [{ authorization: "bearer abc" }, "abc"],
    [{ authorization: "BEARER   abc  " }, "abc"],
    [{ authorization: "Bearer\tabc" }, "abc"],
    // X-API-Key wins over Authorization.
    [{ "x-api-key": "direct", authorization: "Bearer other" }, "direct"],
    // An empty X-API-Key falls through to Authorization.
    [{ "x-api-key": "", authorization: "Bearer other" }, "other"],
    [{ authorization: "Basic dXNlcjpwYXNz" }, undefined],
    [{ authorization: "Bearerabc" }, undefined],
    [{ authorization: "abc" }, undefined],
    [{}, undefined],
    [{ "content-type": "application/json" }, undefined],
  ] as Array<[Record<string, string>, string | undefined]>)("%j → %j", (headers, expected) => {
    expect(presentedKey(headers)).toBe(expected);
  });

  it("end to end: header → store → tenant", () => {
    const store = new ApiKeyStore(ENTRIES);
    expect(store.authenticate(presentedKey({ authorization: "Bearer key-acme-2" }))?.tenant).toBe("acme");
    expect(store.authenticate(presentedKey({ "x-api-key": " k " }))?.tenant).toBe("tiny");
    expect(store.authenticate(presentedKey({ authorization: "Bearer " }))).toBeNull();
    expect(store.authenticate(presentedKey({}))).toBeNull();
  });
});

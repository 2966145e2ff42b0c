import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { formatUuid, randomUuid } from "../../actors/common/uuid-pool";

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("randomUuid", () => {
  it("returns version 4, variant 10 UUIDs in canonical lower-case text, across several refills", () => {
    for (let i = 0; i < 5000; i++) expect(randomUuid()).toMatch(V4);
  });

  it("never repeats an id, within a refill or across refills", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 10_000; i++) seen.add(randomUuid());
    expect(seen.size).toBe(10_000);
  });

  it("uses every hex digit in every random position (the bytes are random, not a counter)", () => {
    const digitsAt: Array<Set<string>> = Array.from({ length: 36 }, () => new Set());
    for (let i = 0; i < 4000; i++) {
      const id = randomUuid();
      for (let p = 0; p < 36; p++) digitsAt[p]!.add(id[p]!);
    }
    for (let p = 0; p < 36; p++) {
      if ([8, 13, 18, 23].includes(p)) expect([...digitsAt[p]!]).toEqual(["-"]);
      else if (p === 14) expect([...digitsAt[p]!]).toEqual(["4"]);
      else if (p === 19) expect([...digitsAt[p]!].sort()).toEqual(["8", "9", "a", "b"]);
      else expect(digitsAt[p]!.size).toBe(16);
    }
  });

  it("returns strings that stay valid after later ids are drawn (each id owns its text)", () => {
    const first = randomUuid();
    const copy = `${first}`;
    for (let i = 0; i < 3000; i++) randomUuid();
    expect(first).toBe(copy);
    expect(first).toMatch(V4);
  });
});

describe("formatUuid", () => {
  it("writes the same text as the standard formatting of the same 16 bytes", () => {
    for (let i = 0; i < 200; i++) {
      const reference = randomUUID();
      const bytes = Buffer.from(reference.replace(/-/g, ""), "hex");
      const out = Buffer.alloc(40, 0x20);
      formatUuid(bytes, 0, out, 2);
      expect(out.toString("latin1", 2, 38)).toBe(reference);
      expect(out[0]).toBe(0x20);
      expect(out[38]).toBe(0x20);
    }
  });

  it("reads the 16 bytes at the given offset", () => {
    const bytes = Buffer.alloc(20);
    for (let i = 0; i < 16; i++) bytes[4 + i] = i * 17;
    const out = Buffer.alloc(36);
    formatUuid(bytes, 4, out, 0);
    expect(out.toString("latin1")).toBe("00112233-4455-6677-8899-aabbccddeeff");
  });
});

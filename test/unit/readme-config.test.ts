/** The README's configuration table and the config contract must not drift apart. */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { VARIABLES } from "../../config/env";

const readme = fs.readFileSync(path.join(__dirname, "../../README.md"), "utf8");
const documented = new Set([...readme.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \|/gm)].map((m) => m[1]));

describe("README configuration table", () => {
  it.each(VARIABLES.map((v) => v.name))("documents %s", (name) => {
    expect(documented.has(name)).toBe(true);
  });

  it("documents no variable the node does not read", () => {
    const known = new Set(VARIABLES.map((v) => v.name));
    expect([...documented].filter((name) => !known.has(name))).toEqual([]);
  });
});

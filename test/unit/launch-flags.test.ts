import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(__dirname, "..", "..");

/** The flags between `node` and the entry point in `npm start`. */
function startScriptFlags(): string[] {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: { start: string } };
  const match = /\bnode ((?:--\S+ )*)dist\/nodes\/node\.js/.exec(pkg.scripts.start);
  if (!match) throw new Error(`npm start does not run dist/nodes/node.js: ${pkg.scripts.start}`);
  return match[1]!.split(" ").filter(Boolean);
}

describe("the node's launch flags", () => {
  it("npm start runs the node with a 128 MB young generation", () => {
    expect(startScriptFlags()).toContain("--max-semi-space-size=128");
  });

  it("the Dockerfile's CMD runs the node with the same flags as npm start", () => {
    const dockerfile = readFileSync(join(ROOT, "Dockerfile"), "utf8");
    const cmd = /^CMD (\[.*\])$/m.exec(dockerfile);
    expect(cmd).not.toBeNull();
    const argv = JSON.parse(cmd![1]!) as string[];
    expect(argv[0]).toBe("node");
    expect(argv[argv.length - 1]).toBe("dist/nodes/node.js");
    expect(argv.slice(1, -1)).toEqual(startScriptFlags());
  });
});

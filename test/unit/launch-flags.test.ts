import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(__dirname, "..", "..");

/** The flags between `node` and the entry point in an npm script (`start`, `start:cluster`). */
function scriptFlags(script: string): string[] {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> };
  const command = pkg.scripts[script];
  if (command === undefined) throw new Error(`package.json has no ${script} script`);
  const match = /\bnode ((?:--\S+ )*)dist\/nodes\/node\.js/.exec(command);
  if (!match) throw new Error(`npm run ${script} does not run dist/nodes/node.js: ${command}`);
  return match[1]!.split(" ").filter(Boolean);
}

/** The flags of every `node ... dist/nodes/node.js` command in the README's cluster section. */
function readmeClusterFlags(): string[][] {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Cluster mode"), readme.indexOf("### Storage in ClickHouse"));
  return [...section.matchAll(/\bnode ((?:--\S+ )*)dist\/nodes\/node\.js/g)].map((m) => m[1]!.split(" ").filter(Boolean));
}

describe("the node's launch flags", () => {
  it("npm start (single-process) runs the node with a 128 MB young generation, start:cluster with 64 MB", () => {
    expect(scriptFlags("start")).toContain("--max-semi-space-size=128");
    expect(scriptFlags("start:cluster")).toContain("--max-semi-space-size=64");
  });

  it("the Dockerfile's CMD (the image docker-compose runs as cluster nodes) has start:cluster's flags", () => {
    const dockerfile = readFileSync(join(ROOT, "Dockerfile"), "utf8");
    const cmd = /^CMD (\[.*\])$/m.exec(dockerfile);
    expect(cmd).not.toBeNull();
    const argv = JSON.parse(cmd![1]!) as string[];
    expect(argv[0]).toBe("node");
    expect(argv[argv.length - 1]).toBe("dist/nodes/node.js");
    expect(argv.slice(1, -1)).toEqual(scriptFlags("start:cluster"));
  });

  it("the README's cluster commands have start:cluster's flags", () => {
    const commands = readmeClusterFlags();
    expect(commands.length).toBeGreaterThan(0);
    for (const flags of commands) expect(flags).toEqual(scriptFlags("start:cluster"));
  });
});

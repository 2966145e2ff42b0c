/**
 * TENANTS_FILE read again on SIGHUP by a real node: silent mode (the edge) and the privacy
 * policy (the validator) change without a restart, and a broken file keeps the settings in use.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readSegments } from "../../actors/storage-writer/file-sink";
import { configFileDir } from "../support/config-files";
import { postEvents, startNodeProcess, untilNode, type NodeProcess } from "../support/node-process";

describe("tenant settings reloaded on SIGHUP (single-process node)", () => {
  const { dir, writeFile } = configFileDir("tenants-reload-");
  let node: NodeProcess;
  const invalid = { event_name: "" };
  const withEmail = (id: string) => ({ event_id: id, event_name: "signup", properties: { contact: "jane.doe@example.com" } });

  beforeAll(async () => {
    node = await startNodeProcess({
      DATA_DIR: path.join(dir, "data"),
      INGEST_API_KEYS: "acme-key=acme,school-key=school",
      TENANTS_FILE: writeFile("tenants.json", { tenants: { acme: { silent: false } } }),
      BATCH_MAX_WAIT_MS: "5",
    });
  });
  afterAll(async () => {
    await node?.stop();
  });

  const until = (check: () => Promise<boolean>, what: string) => untilNode(node, check, what);

  it("applies a new file's silent mode and privacy policy, and keeps them when the next file is broken", async () => {
    expect((await postEvents(node.url, invalid, { "X-API-Key": "acme-key" })).status).toBe(400);
    expect((await postEvents(node.url, withEmail("before"), { "X-API-Key": "school-key" })).status).toBe(202);

    writeFile("tenants.json", { tenants: { acme: { silent: true }, school: { pii_policy: "drop" } } });
    node.child.kill("SIGHUP");
    await until(async () => (await postEvents(node.url, invalid, { "X-API-Key": "acme-key" })).status === 200, "acme to turn silent");
    expect((await postEvents(node.url, invalid, { "X-API-Key": "acme-key" })).body).toEqual({ success: true, processed: 0 });
    const dropped = await postEvents(node.url, withEmail("after"), { "X-API-Key": "school-key" });
    expect(dropped.status).toBe(400);
    expect(JSON.stringify(dropped.body)).toMatch(/contains an email address \(pii policy: drop\)/);
    expect(node.output()).toMatch(/"msg":"tenant settings reloaded"/);
    expect(node.output()).toMatch(/"msg":"validator checks rebuilt from the reloaded tenant settings"/);

    writeFile("tenants.json", "{ not json");
    node.child.kill("SIGHUP");
    await until(async () => /tenant settings not reloaded: the settings in use stay/.test(node.output()), "the failed reload to be logged");
    expect((await postEvents(node.url, invalid, { "X-API-Key": "acme-key" })).status).toBe(200);
    expect((await postEvents(node.url, withEmail("still-dropped"), { "X-API-Key": "school-key" })).status).toBe(400);

    await until(async () => (await readSegments(path.join(dir, "data"))).some((r) => r.event_id === "before"), "the first event stored");
    const stored = (await readSegments(path.join(dir, "data"))).map((r) => r.event_id);
    expect(stored).toEqual(["before"]);
  });
});

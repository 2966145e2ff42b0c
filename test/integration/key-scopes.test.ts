/**
 * API keys with scopes on a real node: a key that ships inside web pages may only send events, a
 * dashboard's key may only read counts, a key without scopes may do both (INGEST_API_KEYS keys).
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readSegments } from "../../actors/storage-writer/file-sink";
import { WsHandshakeError, WsSocket } from "../../nodes/client/ws-socket";
import { configFileDir } from "../support/config-files";
import { postEvents, startNodeProcess, untilNode, type NodeProcess } from "../support/node-process";

describe("API key scopes (single-process node)", () => {
  const { dir, writeFile } = configFileDir("key-scopes-");
  let node: NodeProcess;

  beforeAll(async () => {
    node = await startNodeProcess({
      DATA_DIR: path.join(dir, "data"),
      INGEST_API_KEYS: "env-key=acme",
      API_KEYS_FILE: writeFile("keys.json", {
        keys: [
          { key: "web-key", tenant: "acme", scopes: ["ingest"] },
          { key: "dash-key", tenant: "acme", scopes: ["counts"] },
        ],
      }),
      BATCH_MAX_WAIT_MS: "5",
    });
  });
  afterAll(async () => {
    await node?.stop();
  });

  const counts = (key: string) => fetch(`${node.url}/v1/metrics?event_name=view`, { headers: { "X-API-Key": key } });

  it("an ingest-only key sends events but may not read counts", async () => {
    expect((await postEvents(node.url, { event_id: "from-web", event_name: "view" }, { "X-API-Key": "web-key" })).status).toBe(202);
    const res = await counts("web-key");
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({ error: { code: "forbidden", message: "This API key may not read event counts (its scopes: ingest)" } });
  });

  it("a counts-only key may not send events, over HTTP or a WebSocket, and nothing of it is stored", async () => {
    const res = await postEvents(node.url, { event_id: "from-dash", event_name: "view" }, { "X-API-Key": "dash-key" });
    expect(res.status).toBe(403);
    expect(res.body.error).toEqual({ code: "forbidden", message: "This API key may not send events (its scopes: counts)" });
    const socket = await WsSocket.connect(`ws://127.0.0.1:${node.port}/v1/stream`, { headers: { "X-API-Key": "dash-key" } }).then(
      () => null,
      (error: unknown) => error,
    );
    expect((socket as WsHandshakeError).status).toBe(403);
    // Its counts request passes the key check (the file sink then says it cannot count).
    expect((await counts("dash-key")).status).toBe(501);

    const ids = (await readSegments(path.join(dir, "data"))).map((r) => r.event_id);
    expect(ids).toContain("from-web");
    expect(ids).not.toContain("from-dash");
  });

  it("a key without scopes (INGEST_API_KEYS) may do both", async () => {
    expect((await postEvents(node.url, { event_name: "view" }, { "X-API-Key": "env-key" })).status).toBe(202);
    expect((await counts("env-key")).status).toBe(501);
  });
});

describe("API keys reloaded on SIGHUP", () => {
  const { dir, writeFile } = configFileDir("key-reload-");
  let node: NodeProcess;
  const post = (key: string, id: string) => postEvents(node.url, { event_id: id, event_name: "view" }, { "X-API-Key": key });

  beforeAll(async () => {
    node = await startNodeProcess({
      DATA_DIR: path.join(dir, "data"),
      API_KEYS_FILE: writeFile("keys.json", { keys: [{ key: "old-key", tenant: "acme" }, { key: "kept-key", tenant: "acme" }] }),
      BATCH_MAX_WAIT_MS: "5",
    });
  });
  afterAll(async () => {
    await node?.stop();
  });

  const until = (check: () => Promise<boolean>, what: string) => untilNode(node, check, what);

  it("takes new keys, drops removed ones (closing their streams) and keeps a kept key working throughout", async () => {
    const stream = await WsSocket.connect(`ws://127.0.0.1:${node.port}/v1/stream`, { headers: { "X-API-Key": "old-key" } });
    const closed = new Promise<number>((resolve) => stream.on("close", (code) => resolve(code)));
    const kept = await WsSocket.connect(`ws://127.0.0.1:${node.port}/v1/stream`, { headers: { "X-API-Key": "kept-key" } });
    let keptClosed = false;
    kept.on("close", () => (keptClosed = true));
    expect((await post("new-key", "before")).status).toBe(401);

    writeFile("keys.json", { keys: [{ key: "new-key", tenant: "acme" }, { key: "kept-key", tenant: "acme" }] });
    node.child.kill("SIGHUP");
    await until(async () => (await post("new-key", `new-${Date.now()}`)).status === 202, "the new key to work");
    expect((await post("old-key", "after")).status).toBe(401);
    expect(await closed).toBe(1008);
    expect((await post("kept-key", "kept")).status).toBe(202);
    expect(keptClosed).toBe(false);
    kept.close();
    expect(node.output()).toMatch(/"msg":"API keys reloaded"/);
  });

  it("keeps the keys in use when the file is broken, and says so", async () => {
    writeFile("keys.json", "{ not json");
    node.child.kill("SIGHUP");
    await until(async () => /API keys not reloaded: the keys in use stay/.test(node.output()), "the failed reload to be logged");
    expect((await post("new-key", "still")).status).toBe(202);
    expect((await post("kept-key", "still-kept")).status).toBe(202);
  });
});

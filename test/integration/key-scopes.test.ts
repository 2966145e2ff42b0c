/**
 * API keys with scopes on a real node: a key that ships inside web pages may only send events, a
 * dashboard's key may only read counts, a key without scopes may do both (INGEST_API_KEYS keys).
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readSegments } from "../../actors/storage-writer/file-sink";
import { WsHandshakeError, WsSocket } from "../../nodes/client/ws-socket";
import { configFileDir } from "../support/config-files";
import { postEvents, startNodeProcess, type NodeProcess } from "../support/node-process";

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

/**
 * Browsers on a real node: preflights on the ingest and count paths, marked answers, and with an
 * origin list, requests (HTTP and WebSocket) from other origins refused without storing anything.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readSegments } from "../../actors/storage-writer/file-sink";
import { WsHandshakeError, WsSocket } from "../../nodes/client/ws-socket";
import { configFileDir } from "../support/config-files";
import { startNodeProcess, type NodeProcess } from "../support/node-process";

const SHOP = "https://shop.example";

async function call(node: NodeProcess, method: string, path_: string, headers: Record<string, string>, body?: unknown) {
  const res = await fetch(`${node.url}${path_}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

describe("CORS with the default policy (any origin)", () => {
  const { dir } = configFileDir("cors-any-");
  let node: NodeProcess;

  beforeAll(async () => {
    node = await startNodeProcess({ DATA_DIR: path.join(dir, "data"), INGEST_API_KEYS: "k=t", BATCH_MAX_WAIT_MS: "5" });
  });
  afterAll(async () => {
    await node?.stop();
  });

  it("answers a browser's preflight on every ingest path and on the count paths", async () => {
    const preflight = { Origin: SHOP, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-api-key" };
    for (const p of ["/v1/events", "/events", "/events/bulk", "/api/v1/events/attempt"]) {
      const res = await call(node, "OPTIONS", p, preflight);
      expect({ p, status: res.status }).toEqual({ p, status: 204 });
      expect(res.headers.get("access-control-allow-origin")).toBe("*");
      expect(res.headers.get("access-control-allow-methods")).toBe("POST, OPTIONS");
      expect(res.headers.get("access-control-allow-headers")).toMatch(/X-API-Key/);
      expect(res.headers.get("access-control-max-age")).toBe("86400");
      // A 204 has no body: no length, no type (RFC 9110).
      expect(res.headers.get("content-length")).toBeNull();
      expect(res.headers.get("content-type")).toBeNull();
    }
    for (const p of ["/v1/metrics", "/metrics"]) {
      const res = await call(node, "OPTIONS", p, { ...preflight, "Access-Control-Request-Method": "GET" });
      expect(res.status).toBe(204);
      expect(res.headers.get("access-control-allow-methods")).toBe("GET, OPTIONS");
    }
    // OPTIONS without an Origin is no preflight.
    expect((await call(node, "OPTIONS", "/v1/events", {})).status).toBe(405);
  });

  it("marks the answers a page may read, errors included, and leaves server-to-server answers alone", async () => {
    const ok = await call(node, "POST", "/v1/events", { Origin: SHOP, "Content-Type": "application/json", "X-API-Key": "k" }, { event_name: "view", user_id: "u" });
    expect(ok.status).toBe(202);
    expect(ok.headers.get("access-control-allow-origin")).toBe("*");
    expect(ok.headers.get("access-control-expose-headers")).toBe("Retry-After");
    const bad = await call(node, "POST", "/v1/events", { Origin: SHOP, "Content-Type": "application/json" }, { event_name: "view" });
    expect(bad.status).toBe(401);
    expect(bad.headers.get("access-control-allow-origin")).toBe("*");
    const counts = await call(node, "GET", "/v1/metrics?event_name=view", { Origin: SHOP, "X-API-Key": "k" });
    expect(counts.status).toBe(501); // the file sink cannot count; the page can still read why
    expect(counts.headers.get("access-control-allow-origin")).toBe("*");
    const server = await call(node, "POST", "/v1/events", { "Content-Type": "application/json", "X-API-Key": "k" }, { event_name: "view" });
    expect(server.status).toBe(202);
    expect(server.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("CORS with an origin list", () => {
  const { dir } = configFileDir("cors-list-");
  let node: NodeProcess;

  beforeAll(async () => {
    node = await startNodeProcess({
      DATA_DIR: path.join(dir, "data"),
      INGEST_API_KEYS: "k=t",
      BATCH_MAX_WAIT_MS: "5",
      CORS_ALLOWED_ORIGINS: `${SHOP}, https://*.example.org`,
    });
  });
  afterAll(async () => {
    await node?.stop();
  });

  it("names an allowed origin, refuses another with 403 and stores nothing from it", async () => {
    const json = { "Content-Type": "application/json", "X-API-Key": "k" };
    const allowed = await call(node, "POST", "/v1/events", { ...json, Origin: "https://blog.example.org" }, { event_id: "from-blog", event_name: "view" });
    expect(allowed.status).toBe(202);
    expect(allowed.headers.get("access-control-allow-origin")).toBe("https://blog.example.org");
    expect(allowed.headers.get("vary")).toBe("Origin");

    const refused = await call(node, "POST", "/v1/events", { ...json, Origin: "https://copycat.example" }, { event_id: "from-copycat", event_name: "view" });
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.text).error.code).toBe("origin_not_allowed");
    expect(refused.headers.get("access-control-allow-origin")).toBeNull();
    // A beacon (text/plain, never preflighted) from there is refused as well.
    const beacon = await call(node, "POST", "/v1/events", { "Content-Type": "text/plain", "X-API-Key": "k", Origin: "https://copycat.example" }, { event_id: "beacon", event_name: "view" });
    expect(beacon.status).toBe(403);
    expect((await call(node, "OPTIONS", "/v1/events", { Origin: "https://copycat.example" })).status).toBe(403);
    expect((await call(node, "GET", "/v1/metrics?event_name=view", { "X-API-Key": "k", Origin: "https://copycat.example" })).status).toBe(403);
    // Without an Origin (a server) nothing changes.
    expect((await call(node, "POST", "/v1/events", json, { event_id: "from-server", event_name: "view" })).status).toBe(202);

    const ids = (await readSegments(path.join(dir, "data"))).map((r) => r.event_id);
    expect(ids.sort()).toEqual(["from-blog", "from-server"]);
  });

  it("refuses a WebSocket from an origin outside the list, and opens one from inside it", async () => {
    const url = `ws://127.0.0.1:${node.port}/v1/stream`;
    const refused = await WsSocket.connect(url, { headers: { "X-API-Key": "k", Origin: "https://copycat.example" } }).then(
      () => null,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(WsHandshakeError);
    expect((refused as WsHandshakeError).status).toBe(403);
    const ok = await WsSocket.connect(url, { headers: { "X-API-Key": "k", Origin: SHOP } });
    ok.close();
  });
});

/**
 * ClickHouseSink, migrations and retention against a real clickhouse-server (18.16 on Debian),
 * started by the harness in a temp dir and stopped in afterAll: the engine-independent suite
 * (test/support/clickhouse-sink-suite.ts, also run against current ClickHouse by
 * clickhouse-current.test.ts), then what needs a server process: a hung server, a stopped one,
 * a crash.
 */
import { createServer, type Server, type Socket, connect } from "node:net";
import { describe, expect, it } from "vitest";
import { ClickHouseSink } from "../../actors/storage-writer/clickhouse/clickhouse-sink";
import { startClickHouse, type ClickHouseTestServer } from "../support/clickhouse-server";
import { clickHouseSinkSuite, DB, makeEvents } from "../support/clickhouse-sink-suite";

let server: ClickHouseTestServer;

const suite = clickHouseSinkSuite(async () => {
  server = await startClickHouse();
  return { engine: () => ({ url: server.url }), close: () => server.destroy() };
});

describe("ClickHouseSink against a server process", () => {
  it("is 18.16, which knows neither of the newer insert settings, so inserts carry none", () => {
    expect(suite.sink.serverVersion).toMatch(/^18\.16\./);
    expect(suite.sink.insertSettings).toEqual({});
  });

  it("refuses an unsafe database name at construction", () => {
    expect(() => new ClickHouseSink({ url: server.url, database: "ingest; DROP" })).toThrow(/must match/);
  });

  it("rejects within two request timeouts (the insert's, then the look for its lost answer) when the server does not answer", async () => {
    const proxy = await startProxy(server.httpPort);
    const slow = new ClickHouseSink({ url: `http://127.0.0.1:${proxy.port}`, database: DB, requestTimeoutMs: 800 });
    try {
      await slow.start();
      proxy.blackhole(true);
      const t0 = Date.now();
      await expect(slow.write(makeEvents("timeout", 10, Date.now()))).rejects.toThrow();
      const elapsed = Date.now() - t0;
      expect(elapsed).toBeLessThan(3_000);
      expect(await suite.count("tenant_id = 'timeout'")).toBe(0);
      proxy.blackhole(false);
      await slow.write(makeEvents("timeout", 10, Date.now()));
      expect(await suite.count("tenant_id = 'timeout'")).toBe(10);
    } finally {
      proxy.blackhole(false);
      await slow.close();
      await proxy.close();
    }
  });

  it("takes an insert whose answer was lost as inserted once all its rows are found, and refuses one that never arrived", async () => {
    const proxy = await startProxy(server.httpPort);
    const lossy = new ClickHouseSink({ url: `http://127.0.0.1:${proxy.port}`, database: DB, requestTimeoutMs: 2_000 });
    try {
      await lossy.start();
      // The server commits the insert; its answer is cut off on the way back.
      proxy.loseNextAnswer();
      await lossy.write(makeEvents("lost-answer", 25, Date.now()));
      expect(lossy.lostAnswers).toBe(1);
      expect(await suite.count("tenant_id = 'lost-answer'", false)).toBe(25);
      // The request is cut off on the way there: nothing to find, so the batch is refused.
      proxy.dropNextRequest();
      await expect(lossy.write(makeEvents("never-arrived", 25, Date.now()))).rejects.toThrow();
      expect(lossy.lostAnswers).toBe(1);
      expect(await suite.count("tenant_id = 'never-arrived'", false)).toBe(0);
    } finally {
      await lossy.close();
      await proxy.close();
    }
  });

  it("rejects promptly while the server is down and succeeds after it is back", async () => {
    await server.stop();
    try {
      const t0 = Date.now();
      await expect(suite.sink.write(makeEvents("restart", 50, Date.now()))).rejects.toThrow();
      expect(Date.now() - t0).toBeLessThan(2_500);
      expect(await suite.sink.ready()).toMatchObject({ ok: false });
    } finally {
      await server.start();
    }
    await suite.sink.write(makeEvents("restart", 50, Date.now()));
    expect(await suite.sink.ready()).toEqual({ ok: true });
    expect(await suite.count("tenant_id = 'restart'")).toBe(50);
    // Data written before the restart is still there.
    expect(await suite.count("tenant_id = 'bulk'")).toBe(10_000);
  }, 20_000);

  it("keeps acknowledged rows across a server crash (kill -9)", async () => {
    await suite.sink.write(makeEvents("crash", 100, Date.now()));
    server.kill9();
    await server.start();
    expect(await suite.count("tenant_id = 'crash'")).toBe(100);
  }, 20_000);
});

/**
 * A TCP proxy to the server that can be switched into a black hole (accepts, never answers),
 * to see what the sink does when ClickHouse hangs rather than refuses; or made to cut the next
 * INSERT's connection, after the server answered (the answer is lost) or before the request
 * reaches it.
 */
async function startProxy(targetPort: number): Promise<{
  port: number;
  blackhole(on: boolean): void;
  loseNextAnswer(): void;
  dropNextRequest(): void;
  close(): Promise<void>;
}> {
  let hole = false;
  let next: "lose-answer" | "drop-request" | null = null;
  const sockets = new Set<Socket>();
  const srv: Server = createServer((client) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.on("error", () => undefined);
    if (hole) return; // hold it open, say nothing
    const upstream = connect(targetPort, "127.0.0.1");
    sockets.add(upstream);
    upstream.on("close", () => sockets.delete(upstream));
    upstream.on("error", () => client.destroy());
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
    // A fault waits for the next INSERT, on whichever connection the client sends it (a new one
    // or one it keeps alive); the lookups around it are SELECTs and pass.
    let answerLost = false;
    client.on("data", (chunk: Buffer) => {
      if (next !== null && chunk.includes("query=INSERT")) {
        const fault = next;
        next = null;
        if (fault === "drop-request") {
          client.destroy();
          return;
        }
        answerLost = true;
      }
      upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => {
      if (answerLost) {
        upstream.destroy();
        client.destroy();
        return;
      }
      client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const addr = srv.address();
  if (addr === null || typeof addr === "string") throw new Error("no proxy address");
  const dropAll = (): void => {
    for (const s of sockets) s.destroy();
  };
  return {
    port: addr.port,
    blackhole(on) {
      hole = on;
      // Existing keep-alive connections would still forward; cut them so every new request
      // goes through the switched behaviour.
      dropAll();
    },
    loseNextAnswer() {
      next = "lose-answer";
    },
    dropNextRequest() {
      next = "drop-request";
    },
    async close() {
      dropAll();
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    },
  };
}

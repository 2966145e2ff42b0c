/**
 * The minimal WebSocket client against a real uWS server (the edge's own library) and, for what
 * uWS never sends (fragmented messages, pings between fragments, protocol violations), against
 * a hand-written server that writes raw frames.
 */
import { createHash } from "node:crypto";
import fc from "fast-check";
import net from "node:net";
import uWS from "uWebSockets.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { maskInto, WsHandshakeError, WsSocket } from "../../nodes/client/ws-socket";

function nextEvent<T extends unknown[]>(emitter: WsSocket, event: "message" | "close" | "pong"): Promise<T> {
  return new Promise((resolve) => emitter.once(event, (...args: unknown[]) => resolve(args as T)));
}

describe("WsSocket against uWS", () => {
  let app: uWS.TemplatedApp;
  let listen: uWS.us_listen_socket;
  let base: string;
  const serverClosed: Array<{ code: number; reason: string }> = [];
  const serverPongs: string[] = [];

  beforeAll(async () => {
    app = uWS.App();
    app.ws<{ path: string }>("/*", {
      maxPayloadLength: 4 * 1024 * 1024,
      upgrade: (res, req, context) => {
        const url = req.getUrl();
        const protocols = req.getHeader("sec-websocket-protocol");
        if (url === "/refuse") {
          res.cork(() => res.writeStatus("401 Unauthorized").writeHeader("Content-Type", "application/json").end('{"error":{"code":"unauthorized"}}', true));
          return;
        }
        // /protocol picks the last offered one; /rogue picks one nobody offered.
        const chosen = url === "/protocol" ? (protocols.split(",").pop() ?? "").trim() : url === "/rogue" ? "other" : "";
        res.upgrade({ path: url }, req.getHeader("sec-websocket-key"), chosen, req.getHeader("sec-websocket-extensions"), context);
      },
      open: (ws) => {
        const { path } = ws.getUserData();
        if (path === "/ping") ws.ping("hi");
        if (path === "/kick") ws.end(1008, "policy");
      },
      message: (ws, message, isBinary) => {
        ws.send(message, isBinary);
      },
      pong: (_ws, message) => {
        serverPongs.push(Buffer.from(message).toString());
      },
      close: (_ws, code, message) => {
        serverClosed.push({ code, reason: Buffer.from(message).toString() });
      },
    });
    listen = await new Promise<uWS.us_listen_socket>((resolve, reject) =>
      app.listen("127.0.0.1", 0, (socket) => (socket ? resolve(socket) : reject(new Error("listen failed")))),
    );
    base = `ws://127.0.0.1:${uWS.us_socket_local_port(listen)}`;
  });

  afterAll(() => {
    uWS.us_listen_socket_close(listen);
    app.close();
  });

  it("echoes text and binary messages of every length encoding", async () => {
    const ws = await WsSocket.connect(`${base}/echo`);
    expect(ws.protocol).toBe("");
    for (const size of [0, 125, 126, 300, 65535, 65536, 300_000]) {
      ws.send("t".repeat(size));
      expect((await nextEvent<[string]>(ws, "message"))[0]).toBe("t".repeat(size));
      const bytes = Buffer.alloc(size, 7);
      ws.send(bytes);
      const [echo] = await nextEvent<[Buffer]>(ws, "message");
      expect(Buffer.isBuffer(echo) && echo.equals(bytes)).toBe(true);
    }
    ws.send("héllo ✓");
    expect((await nextEvent<[string]>(ws, "message"))[0]).toBe("héllo ✓");
    ws.close();
    await nextEvent(ws, "close");
  });

  it("sends a message in fragments that the server reassembles", async () => {
    const ws = await WsSocket.connect(`${base}/echo`);
    const payload = Buffer.from(Array.from({ length: 100_000 }, (_, i) => i % 251));
    ws.send(payload, 999);
    const [echo] = await nextEvent<[Buffer]>(ws, "message");
    expect(echo.equals(payload)).toBe(true);
    ws.close();
    await nextEvent(ws, "close");
  });

  it("negotiates a subprotocol and refuses one that was not offered", async () => {
    const ws = await WsSocket.connect(`${base}/protocol`, { protocols: ["ingest.v1", "key.abc"] });
    expect(ws.protocol).toBe("key.abc");
    ws.terminate();
    await expect(WsSocket.connect(`${base}/rogue`, { protocols: ["ingest.v1"] })).rejects.toThrow(/unoffered subprotocol/);
  });

  it("reports a refused upgrade with its status and body", async () => {
    const error = await WsSocket.connect(`${base}/refuse`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WsHandshakeError);
    expect((error as WsHandshakeError).status).toBe(401);
    expect(JSON.parse((error as WsHandshakeError).body)).toEqual({ error: { code: "unauthorized" } });
  });

  it("closes with a handshake in both directions", async () => {
    const ws = await WsSocket.connect(`${base}/echo`);
    const closed = nextEvent<[number, string]>(ws, "close");
    ws.close(4000, "bye");
    expect(ws.readyState).toBe("closing");
    expect(await closed).toEqual([4000, "bye"]);
    expect(ws.readyState).toBe("closed");
    expect(serverClosed).toContainEqual({ code: 4000, reason: "bye" });

    const kicked = await WsSocket.connect(`${base}/kick`);
    expect(await nextEvent<[number, string]>(kicked, "close")).toEqual([1008, "policy"]);
    expect(kicked.send("late")).toBe(false);
  });

  it("answers the server's ping with a pong", async () => {
    const ws = await WsSocket.connect(`${base}/ping`);
    for (let i = 0; i < 100 && !serverPongs.includes("hi"); i++) await new Promise((r) => setTimeout(r, 10));
    expect(serverPongs).toContain("hi");
    ws.terminate();
  });

  it("reports 1006 when the connection drops without a close frame", async () => {
    const ws = await WsSocket.connect(`${base}/echo`);
    const closed = nextEvent<[number, string]>(ws, "close");
    ws.socket.destroy();
    expect((await closed)[0]).toBe(1006);
  });
});

/** A server that completes the handshake and then lets the test write raw frames. */
async function rawServer(): Promise<{ url: string; next(): Promise<RawPeer>; close(): void }> {
  const peers: RawPeer[] = [];
  const waiting: Array<(peer: RawPeer) => void> = [];
  const server = net.createServer((socket) => {
    let head = Buffer.alloc(0);
    const onHead = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      socket.off("data", onHead);
      const key = /sec-websocket-key: (.+)\r\n/i.exec(head.toString())![1]!.trim();
      const accept = createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      const peer = new RawPeer(socket);
      const waiter = waiting.shift();
      if (waiter) waiter(peer);
      else peers.push(peer);
    };
    socket.on("data", onHead);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}/`,
    next: () => (peers.length > 0 ? Promise.resolve(peers.shift()!) : new Promise((r) => waiting.push(r))),
    close: () => server.close(),
  };
}

class RawPeer {
  private buffer = Buffer.alloc(0);
  readonly frames: Array<{ opcode: number; payload: Buffer; masked: boolean; key: string }> = [];
  constructor(readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.parse();
    });
  }

  /** An unmasked server frame. */
  send(opcode: number, payload: Buffer | string, fin = true, mask = false): void {
    const data = Buffer.from(payload);
    const header = Buffer.from([(fin ? 0x80 : 0) | opcode, (mask ? 0x80 : 0) | data.length]);
    this.socket.write(mask ? Buffer.concat([header, Buffer.alloc(4), data]) : Buffer.concat([header, data]));
  }

  async frame(opcode: number): Promise<Buffer> {
    for (let i = 0; i < 200; i++) {
      const found = this.frames.find((f) => f.opcode === opcode);
      if (found) return found.payload;
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error(`no frame with opcode ${opcode}`);
  }

  private parse(): void {
    while (this.buffer.length >= 2) {
      let length = this.buffer[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        length = this.buffer.readUInt16BE(2);
        offset = 4;
      }
      const masked = (this.buffer[1]! & 0x80) !== 0;
      const total = offset + (masked ? 4 : 0) + length;
      if (this.buffer.length < total) return;
      const mask = this.buffer.subarray(offset, offset + 4);
      const payload = Buffer.from(this.buffer.subarray(offset + 4, total));
      for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ mask[i & 3]!;
      this.frames.push({ opcode: this.buffer[0]! & 0x0f, payload, masked, key: mask.toString("hex") });
      this.buffer = this.buffer.subarray(total);
    }
  }
}

describe("WsSocket against raw frames", () => {
  it("reassembles a fragmented message and answers a ping sent between its fragments", async () => {
    const server = await rawServer();
    const ws = await WsSocket.connect(server.url);
    const peer = await server.next();
    const message = nextEvent<[string]>(ws, "message");
    peer.send(0x1, "hel", false);
    peer.send(0x9, "p1");
    peer.send(0x0, "lo ", false);
    peer.send(0x0, "world", true);
    expect((await message)[0]).toBe("hello world");
    expect((await peer.frame(0xa)).toString()).toBe("p1");
    // Every client frame was masked.
    expect(peer.frames.every((f) => f.masked)).toBe(true);
    ws.terminate();
    server.close();
  });

  it("masks each client frame with a key of its own (from the pooled random bytes)", async () => {
    const server = await rawServer();
    const ws = await WsSocket.connect(server.url);
    const peer = await server.next();
    const sent = Array.from({ length: 1500 }, (_, i) => `message ${i} ${"x".repeat(i % 7)}`);
    for (const text of sent) ws.send(text);
    for (let i = 0; i < 400 && peer.frames.length < sent.length; i++) await new Promise((r) => setTimeout(r, 5));
    // More frames than one refill of the key pool holds (1,024), each unmasked correctly.
    expect(peer.frames.map((f) => f.payload.toString())).toEqual(sent);
    const keys = new Set(peer.frames.map((f) => f.key));
    // 32 random bits per key: 1,500 keys collide with probability ~2.6e-4; allow one collision.
    expect(keys.size).toBeGreaterThanOrEqual(sent.length - 1);
    expect(keys.has("00000000")).toBe(false);
    ws.terminate();
    server.close();
  });

  it.each([
    ["a masked server frame", (peer: RawPeer) => peer.send(0x1, "x", true, true), 1002],
    ["a continuation without a message", (peer: RawPeer) => peer.send(0x0, "x"), 1002],
    ["an unknown opcode", (peer: RawPeer) => peer.send(0x3, "x"), 1002],
    ["invalid UTF-8 in a text message", (peer: RawPeer) => peer.send(0x1, Buffer.from([0xc3, 0x28])), 1007],
  ] as const)("closes on %s with the matching code", async (_name, write, code) => {
    const server = await rawServer();
    const ws = await WsSocket.connect(server.url);
    const peer = await server.next();
    const messages: unknown[] = [];
    ws.on("message", (m) => messages.push(m));
    const closed = nextEvent<[number, string]>(ws, "close");
    write(peer);
    const close = await peer.frame(0x8);
    expect(close.readUInt16BE(0)).toBe(code);
    expect(messages).toEqual([]);
    peer.socket.destroy();
    expect((await closed)[0]).toBe(code);
    server.close();
  });

  it("echoes the server's close frame", async () => {
    const server = await rawServer();
    const ws = await WsSocket.connect(server.url);
    const peer = await server.next();
    const closed = nextEvent<[number, string]>(ws, "close");
    const payload = Buffer.alloc(2 + 4);
    payload.writeUInt16BE(1001, 0);
    payload.write("gone", 2);
    peer.send(0x8, payload);
    expect((await peer.frame(0x8)).readUInt16BE(0)).toBe(1001);
    peer.socket.end();
    expect(await closed).toEqual([1001, "gone"]);
    server.close();
  });
});

describe("maskInto", () => {
  it("XORs every payload byte with the key byte at its position mod 4, for any length and offset", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 70 }),
        fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 })),
        fc.integer({ min: 0, max: 9 }),
        (payload, key, at) => {
          const out = Buffer.alloc(at + payload.length + 3, 0xee);
          maskInto(out, at, payload, key[0], key[1], key[2], key[3]);
          const expected = Buffer.alloc(out.length, 0xee);
          for (let i = 0; i < payload.length; i++) expected[at + i] = payload[i]! ^ key[i % 4]!;
          expect(out).toEqual(expected);
        },
      ),
      { numRuns: 500 },
    );
  });
});

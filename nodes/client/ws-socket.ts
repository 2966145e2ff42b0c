/**
 * A minimal RFC 6455 WebSocket client over node:net / node:tls, because Node 20's global
 * WebSocket is still experimental (behind --experimental-websocket).
 *
 * What it does: the HTTP/1.1 upgrade (with Sec-WebSocket-Accept and subprotocol checks),
 * masked client frames (optionally fragmented), reassembly of fragmented server messages,
 * ping → pong, and the close handshake. What it does not: extensions (permessage-deflate is never
 * offered, so RSV bits must be zero), redirects, proxies.
 */
import { createHash, randomBytes, randomFillSync } from "node:crypto";
import { EventEmitter } from "node:events";
import net from "node:net";
import tls from "node:tls";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const MAX_HEADER_BYTES = 16 * 1024;

const UTF8 = new TextDecoder("utf-8", { fatal: true });
const EMPTY = Buffer.alloc(0);
const OP = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

export interface WsConnectOptions {
  headers?: Record<string, string>;
  protocols?: string[];
  /** Largest message accepted from the server (close 1009 above). */
  maxMessageBytes?: number;
  handshakeTimeoutMs?: number;
  /** How long to wait for the server's close after sending ours before dropping the TCP socket. */
  closeTimeoutMs?: number;
  tls?: tls.ConnectionOptions;
}

/** The server answered the upgrade with something other than 101. */
export class WsHandshakeError extends Error {
  constructor(
    readonly status: number,
    readonly headers: Record<string, string>,
    readonly body: string,
  ) {
    super(`WebSocket upgrade refused: HTTP ${status} ${body.slice(0, 200)}`);
    this.name = "WsHandshakeError";
  }
}

export type WsState = "open" | "closing" | "closed";

export interface WsSocketEvents {
  message: [data: string | Buffer];
  close: [code: number, reason: string];
  error: [error: Error];
  drain: [];
  pong: [data: Buffer];
}

export class WsSocket extends EventEmitter<WsSocketEvents> {
  private state: WsState = "open";
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Fragments of the message being reassembled, and its opcode. */
  private fragments: Buffer[] = [];
  private fragmentBytes = 0;
  private fragmentOp = 0;
  /** Set once a close frame was received or sent for a violation: later bytes are ignored. */
  private done = false;
  private closeCode = 1006;
  private closeReason = "";
  private closeTimer: NodeJS.Timeout | null = null;
  private readonly maxMessageBytes: number;
  private readonly closeTimeoutMs: number;

  private constructor(
    /** The TCP (or TLS) socket: tests destroy it to simulate a dropped connection. */
    readonly socket: net.Socket,
    /** The subprotocol the server chose ("" when none). */
    readonly protocol: string,
    leftover: Buffer,
    options: WsConnectOptions,
  ) {
    super();
    this.maxMessageBytes = options.maxMessageBytes ?? 64 * 1024 * 1024;
    this.closeTimeoutMs = options.closeTimeoutMs ?? 2000;
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("drain", () => this.emit("drain"));
    socket.on("error", (error) => {
      if (this.listenerCount("error") > 0) this.emit("error", error);
    });
    socket.on("close", () => {
      if (this.closeTimer) clearTimeout(this.closeTimer);
      this.state = "closed";
      this.emit("close", this.closeCode, this.closeReason);
    });
    // Frames that arrived together with the 101 response; parsed once listeners can attach.
    if (leftover.length > 0) setImmediate(() => this.onData(leftover));
  }

  static connect(url: string, options: WsConnectOptions = {}): Promise<WsSocket> {
    const target = new URL(url);
    if (target.protocol !== "ws:" && target.protocol !== "wss:") {
      return Promise.reject(new Error(`not a ws:// or wss:// URL: ${url}`));
    }
    const secure = target.protocol === "wss:";
    const port = Number(target.port || (secure ? 443 : 80));
    const host = target.hostname.replace(/^\[|\]$/g, "");
    const key = randomBytes(16).toString("base64");

    return new Promise<WsSocket>((resolve, reject) => {
      const socket = secure
        ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, ...options.tls })
        : net.connect({ host, port });
      socket.setNoDelay(true);
      let head = Buffer.alloc(0);
      let settled = false;
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        reject(error);
      };
      const timer = setTimeout(() => fail(new Error("WebSocket handshake timed out")), options.handshakeTimeoutMs ?? 10_000);
      const onEarlyClose = () => fail(new Error("connection closed during the WebSocket handshake"));
      socket.once("error", fail);
      socket.once("close", onEarlyClose);
      socket.once(secure ? "secureConnect" : "connect", () => {
        const lines = [
          `GET ${target.pathname || "/"}${target.search} HTTP/1.1`,
          `Host: ${target.host}`,
          "Upgrade: websocket",
          "Connection: Upgrade",
          `Sec-WebSocket-Key: ${key}`,
          "Sec-WebSocket-Version: 13",
        ];
        if (options.protocols?.length) lines.push(`Sec-WebSocket-Protocol: ${options.protocols.join(", ")}`);
        for (const [name, value] of Object.entries(options.headers ?? {})) lines.push(`${name}: ${value}`);
        socket.write(lines.join("\r\n") + "\r\n\r\n");
      });

      const onHead = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf("\r\n\r\n");
        if (end < 0) {
          if (head.length > MAX_HEADER_BYTES) fail(new Error("WebSocket handshake response headers too large"));
          return;
        }
        const [statusLine = "", ...headerLines] = head.subarray(0, end).toString("latin1").split("\r\n");
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
        const headers: Record<string, string> = {};
        for (const line of headerLines) {
          const colon = line.indexOf(":");
          if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
        }
        const rest = head.subarray(end + 4);
        if (status !== 101) {
          socket.off("data", onHead);
          socket.off("close", onEarlyClose);
          readBody(socket, rest, headers).then((body) => fail(new WsHandshakeError(status, headers, body)));
          return;
        }
        const accept = createHash("sha1").update(key + GUID).digest("base64");
        if (headers["upgrade"]?.toLowerCase() !== "websocket" || !/\bupgrade\b/i.test(headers["connection"] ?? "")) {
          return fail(new Error("server did not upgrade to websocket"));
        }
        if (headers["sec-websocket-accept"] !== accept) return fail(new Error("bad Sec-WebSocket-Accept"));
        const protocol = headers["sec-websocket-protocol"] ?? "";
        if (protocol && !options.protocols?.includes(protocol)) return fail(new Error(`server chose an unoffered subprotocol "${protocol}"`));
        if (headers["sec-websocket-extensions"]) return fail(new Error("server enabled an extension that was not offered"));
        settled = true;
        clearTimeout(timer);
        socket.off("data", onHead);
        socket.off("error", fail);
        socket.off("close", onEarlyClose);
        resolve(new WsSocket(socket, protocol, rest, options));
      };
      socket.on("data", onHead);
    });
  }

  get readyState(): WsState {
    return this.state;
  }

  /** Bytes written but not yet handed to the kernel (compare with the 'drain' event). */
  get bufferedAmount(): number {
    return this.socket.writableLength;
  }

  /**
   * Sends a text (string) or binary message. Returns false when the socket's write buffer is
   * full: wait for 'drain' before sending more. `fragmentBytes` splits it into frames of that size.
   */
  send(data: string | Uint8Array, fragmentBytes = Infinity): boolean {
    if (this.state !== "open") return false;
    const payload = typeof data === "string" ? Buffer.from(data, "utf8") : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const opcode = typeof data === "string" ? OP.text : OP.binary;
    if (!(fragmentBytes < payload.length)) return this.writeFrame(opcode, payload, true);
    let ok = true;
    for (let offset = 0; offset < payload.length; offset += fragmentBytes) {
      const end = Math.min(payload.length, offset + fragmentBytes);
      ok = this.writeFrame(offset === 0 ? opcode : OP.continuation, payload.subarray(offset, end), end === payload.length);
    }
    return ok;
  }

  ping(data: Uint8Array = Buffer.alloc(0)): void {
    if (this.state === "open") this.writeFrame(OP.ping, Buffer.from(data), true);
  }

  /** Starts the close handshake; the TCP socket is dropped if the server does not answer in time. */
  close(code = 1000, reason = ""): void {
    if (this.state !== "open") return;
    const reasonBytes = Buffer.from(reason, "utf8").subarray(0, 123);
    const payload = Buffer.alloc(2 + reasonBytes.length);
    payload.writeUInt16BE(code, 0);
    reasonBytes.copy(payload, 2);
    this.writeFrame(OP.close, payload, true);
    this.state = "closing";
    this.closeTimer = setTimeout(() => this.socket.destroy(), this.closeTimeoutMs);
    this.closeTimer.unref();
  }

  /** Drops the connection without a close handshake. */
  terminate(): void {
    this.socket.destroy();
  }

  private writeFrame(opcode: number, payload: Buffer, fin: boolean): boolean {
    const length = payload.length;
    const headerLength = 2 + (length < 126 ? 0 : length < 65536 ? 2 : 8) + 4;
    const frame = Buffer.allocUnsafe(headerLength + length);
    frame[0] = (fin ? 0x80 : 0) | opcode;
    let offset = 2;
    if (length < 126) {
      frame[1] = 0x80 | length;
    } else if (length < 65536) {
      frame[1] = 0x80 | 126;
      frame.writeUInt16BE(length, 2);
      offset = 4;
    } else {
      frame[1] = 0x80 | 127;
      frame.writeBigUInt64BE(BigInt(length), 2);
      offset = 10;
    }
    // Client frames are always masked (RFC 6455 §5.3), with a fresh random key per frame.
    nextMaskKey(frame, offset);
    maskInto(frame, offset + 4, payload, frame[offset]!, frame[offset + 1]!, frame[offset + 2]!, frame[offset + 3]!);
    return this.socket.write(frame);
  }

  private onData(chunk: Buffer): void {
    if (this.done) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    while (!this.done && this.parseFrame());
  }

  /** Looks at the first `n` buffered bytes without consuming them (null when fewer are there). */
  private peek(n: number): Buffer | null {
    if (this.buffered < n) return null;
    if (n === 0) return EMPTY;
    if (this.chunks[0]!.length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!.subarray(0, n);
  }

  private consume(n: number): Buffer {
    if (n === 0) return EMPTY;
    const data = this.peek(n)!;
    const first = this.chunks[0]!;
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.buffered -= n;
    return data;
  }

  /** Handles one complete frame if buffered; false when more bytes are needed. */
  private parseFrame(): boolean {
    const start = this.peek(2);
    if (!start) return false;
    const fin = (start[0]! & 0x80) !== 0;
    const opcode = start[0]! & 0x0f;
    const masked = (start[1]! & 0x80) !== 0;
    let length = start[1]! & 0x7f;
    let headerLength = 2;
    if (length === 126) {
      const header = this.peek(4);
      if (!header) return false;
      length = header.readUInt16BE(2);
      headerLength = 4;
    } else if (length === 127) {
      const header = this.peek(10);
      if (!header) return false;
      const big = header.readBigUInt64BE(2);
      if (big > BigInt(this.maxMessageBytes)) return this.fail(1009, "message too big");
      length = Number(big);
      headerLength = 10;
    }
    if ((start[0]! & 0x70) !== 0) return this.fail(1002, "reserved bits set");
    if (masked) return this.fail(1002, "server frames must not be masked");
    const control = opcode >= 0x8;
    if (control && (!fin || length > 125)) return this.fail(1002, "bad control frame");
    if (!control && this.fragmentBytes + length > this.maxMessageBytes) return this.fail(1009, "message too big");
    if (this.buffered < headerLength + length) return false;
    this.consume(headerLength);
    // Copied: the chunk it may point into is released as parsing moves on.
    const payload = Buffer.from(this.consume(length));

    switch (opcode) {
      case OP.text:
      case OP.binary:
        if (this.fragmentOp !== 0) return this.fail(1002, "new message inside a fragmented one");
        if (fin) return this.deliver(opcode, payload);
        this.fragmentOp = opcode;
        this.fragments = [payload];
        this.fragmentBytes = payload.length;
        return true;
      case OP.continuation:
        if (this.fragmentOp === 0) return this.fail(1002, "continuation without a message");
        this.fragments.push(payload);
        this.fragmentBytes += payload.length;
        if (!fin) return true;
        {
          const op = this.fragmentOp;
          const whole = Buffer.concat(this.fragments);
          this.fragmentOp = 0;
          this.fragments = [];
          this.fragmentBytes = 0;
          return this.deliver(op, whole);
        }
      case OP.ping:
        if (this.state === "open") this.writeFrame(OP.pong, payload, true);
        return true;
      case OP.pong:
        this.emit("pong", payload);
        return true;
      case OP.close:
        return this.onClose(payload);
      default:
        return this.fail(1002, `unknown opcode ${opcode}`);
    }
  }

  private deliver(opcode: number, payload: Buffer): boolean {
    if (opcode === OP.binary) {
      this.emit("message", payload);
      return true;
    }
    let text: string;
    try {
      text = UTF8.decode(payload);
    } catch {
      return this.fail(1007, "text message is not valid UTF-8");
    }
    this.emit("message", text);
    return true;
  }

  private onClose(payload: Buffer): boolean {
    if (payload.length === 1) return this.fail(1002, "bad close payload");
    this.done = true;
    this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
    this.closeReason = payload.subarray(2).toString("utf8");
    if (this.state === "open") {
      // Echo the close (§5.5.1); the server then closes the TCP connection.
      const echo = Buffer.alloc(payload.length >= 2 ? 2 : 0);
      if (payload.length >= 2) echo.writeUInt16BE(this.closeCode, 0);
      this.writeFrame(OP.close, echo, true);
      this.state = "closing";
    }
    this.socket.end();
    this.closeTimer ??= setTimeout(() => this.socket.destroy(), this.closeTimeoutMs).unref();
    return false;
  }

  /** A protocol violation by the server: close with `code` and drop the connection. */
  private fail(code: number, reason: string): boolean {
    this.done = true;
    if (this.state === "open") {
      const payload = Buffer.alloc(2 + Buffer.byteLength(reason));
      payload.writeUInt16BE(code, 0);
      payload.write(reason, 2);
      this.writeFrame(OP.close, payload, true);
    }
    this.closeCode = code;
    this.closeReason = reason;
    this.state = "closing";
    this.socket.end();
    this.closeTimer ??= setTimeout(() => this.socket.destroy(), this.closeTimeoutMs).unref();
    return false;
  }
}

/** The body of a refused upgrade: Content-Length bytes, or up to the connection's end (bounded). */
function readBody(socket: net.Socket, first: Buffer, headers: Record<string, string>): Promise<string> {
  const expected = Number(headers["content-length"] ?? NaN);
  return new Promise((resolve) => {
    let body = first;
    const done = () => {
      socket.off("data", onData);
      resolve(body.toString("utf8"));
    };
    const onData = (chunk: Buffer) => {
      body = Buffer.concat([body, chunk]);
      if (body.length >= expected || body.length > 64 * 1024) done();
    };
    if (body.length >= expected) return done();
    socket.on("data", onData);
    socket.once("end", done);
    socket.once("close", done);
  });
}

/**
 * Mask keys come from a pool of CSPRNG bytes (RFC 6455 §5.3 wants them unpredictable, which
 * `randomFillSync` is), refilled 1,024 keys at a time: one native call per frame for 4 bytes
 * was 3% of the bench's WebSocket load generator.
 */
const MASK_KEYS_PER_REFILL = 1024;
const maskKeys = Buffer.allocUnsafe(MASK_KEYS_PER_REFILL * 4);
let nextMaskKeyAt = maskKeys.length;

/** Writes the next unused 4-byte mask key at `at` in `frame`. */
function nextMaskKey(frame: Buffer, at: number): void {
  if (nextMaskKeyAt === maskKeys.length) {
    randomFillSync(maskKeys);
    nextMaskKeyAt = 0;
  }
  maskKeys.copy(frame, at, nextMaskKeyAt, nextMaskKeyAt + 4);
  // Each key is used once: forget it.
  maskKeys.fill(0, nextMaskKeyAt, nextMaskKeyAt + 4);
  nextMaskKeyAt += 4;
}

/** `out[at + i] = payload[i] ^ key[i % 4]` for the whole payload, four bytes per step. */
export function maskInto(out: Buffer, at: number, payload: Uint8Array, k0: number, k1: number, k2: number, k3: number): void {
  const length = payload.length;
  const whole = length - (length & 3);
  let i = 0;
  for (; i < whole; i += 4) {
    out[at + i] = payload[i]! ^ k0;
    out[at + i + 1] = payload[i + 1]! ^ k1;
    out[at + i + 2] = payload[i + 2]! ^ k2;
    out[at + i + 3] = payload[i + 3]! ^ k3;
  }
  // At most three bytes are left, so the key's fourth byte is never needed here.
  for (; i < length; i++) out[at + i] = payload[i]! ^ ((i & 3) === 0 ? k0 : (i & 3) === 1 ? k1 : k2);
}

/**
 * The body of one stored batch: a MessagePack array of events. The session actor publishes it
 * to JetStream, the storage writers and forwarders decode it; in a cluster the edge also packs
 * the events it sends to a remote session actor this way, so that actor can publish the bytes
 * it received instead of packing the same events a second time (see session-wire.ts).
 *
 * Stored messages outlive the process that wrote them, so the format must decode without any
 * state from the writer: msgpackr records WITHOUT shared `structures` and without `sequential`
 * (the same choice as msgpack-serializer.ts, not imported to keep Moleculer out of this module):
 * each pack writes a record's key list once, inline, before the first record that uses it.
 * `mapsAsObjects`: maps decode to plain objects, as JSON would. `copyBuffers`: message data is
 * a view of the client's socket read buffer; a `bin` value in an event must not pin it.
 */
import type { IngestEvent } from "./event";
import { ownMsgpackr } from "./own-msgpackr";

// A msgpackr of its own: Moleculer's serializer would otherwise share (and spoil) its type feedback.
const { Packr } = ownMsgpackr();
const batchCodec = new Packr({ useRecords: true, mapsAsObjects: true, copyBuffers: true });

/**
 * A batch -> one message body: a MessagePack array of events. A future format change should
 * add a header (e.g. a content type) rather than guess from the bytes.
 */
export function encodeBatch(events: readonly IngestEvent[]): Uint8Array {
  return batchCodec.pack(events);
}

/** One message body -> its events. Throws on bytes that are not a batch. */
export function decodeBatch(data: Uint8Array): IngestEvent[] {
  const value: unknown = batchCodec.unpack(data);
  if (!Array.isArray(value)) {
    throw new TypeError(`decodeBatch: expected an array of events, got ${typeof value}`);
  }
  // Shallow check only: the producer is our own encodeBatch; full validation happened at the edge.
  for (const e of value) {
    if (e === null || typeof e !== "object" || typeof (e as { event_id?: unknown }).event_id !== "string") {
      throw new TypeError("decodeBatch: element is not an IngestEvent");
    }
  }
  return value as IngestEvent[];
}

/** The element count of a body's top-level array and where its first element starts. */
function arrayHeader(body: Uint8Array): { count: number; start: number } {
  const tag = body[0];
  if (tag !== undefined && tag >= 0x90 && tag <= 0x9f) return { count: tag & 0x0f, start: 1 };
  if (tag === 0xdc && body.length >= 3) return { count: (body[1]! << 8) | body[2]!, start: 3 };
  if (tag === 0xdd && body.length >= 5) return { count: ((body[1]! << 24) | (body[2]! << 16) | (body[3]! << 8) | body[4]!) >>> 0, start: 5 };
  throw new TypeError(`joinBatches: a body must be a MessagePack array (starts with 0x${(tag ?? 0).toString(16)})`);
}

/**
 * Bodies made by `encodeBatch` -> the body of their events in one array, in order, by copying
 * bytes: no event is decoded or packed again. Sound because each body defines every record it
 * uses before using it (see above): the reader meets a record id's definition again at the
 * start of each part and takes the newer one, so each part reads as it did on its own.
 */
export function joinBatches(bodies: readonly Uint8Array[]): Uint8Array {
  if (bodies.length === 1) return bodies[0]!;
  let count = 0;
  let bytes = 5;
  const headers = bodies.map((body) => {
    const header = arrayHeader(body);
    count += header.count;
    bytes += body.length - header.start;
    return header;
  });
  // array 32 always: the total is only known here, and 4 spare bytes are cheaper than a second pass.
  const out = Buffer.allocUnsafe(bytes);
  out[0] = 0xdd;
  out.writeUInt32BE(count, 1);
  let at = 5;
  for (let i = 0; i < bodies.length; i++) {
    const body = bodies[i]!;
    out.set(body.subarray(headers[i]!.start), at);
    at += body.length - headers[i]!.start;
  }
  return out;
}

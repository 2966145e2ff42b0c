/**
 * How a session batch crosses the network from an edge to the session actor that owns it on
 * another node.
 *
 * The events travel as one stored-batch body (batch-codec.ts), not as structured call params:
 * the owning actor decodes them for its duplicate check and, when it keeps every event, publishes
 * those same bytes to JetStream. Before, Moleculer's serializer packed the events for the call
 * and the actor packed them again for the stream: in the 3-node benchmark msgpack packing was
 * the largest single cost of a node after the work itself (bench/README.md).
 *
 * The in-memory mark of an id the server assigned (SERVER_ASSIGNED_ID, a symbol that no codec
 * writes) travels beside the body as a bitmap: without it the remote actor looked every such
 * id up in its duplicate window and remembered it there, which costs a lookup per event and
 * shortens how long the window remembers the ids clients send (the ones that can come back).
 */
import { decodeBatch, encodeBatch } from "./batch-codec";
import { SERVER_ASSIGNED_ID, hasServerAssignedId, type SessionBatch } from "./event";

/** A session batch on the wire. */
export interface WireSessionBatch {
  session_id: string;
  /** The events, as `encodeBatch` writes them. */
  body: Uint8Array;
  /** Bit i (byte i >> 3, bit i & 7) set: event i's id was assigned by the server. Absent when none was. */
  assigned?: Uint8Array;
}

export function toWire(batch: SessionBatch): WireSessionBatch {
  const { events } = batch;
  let assigned: Uint8Array | undefined;
  for (let i = 0; i < events.length; i++) {
    if (!hasServerAssignedId(events[i]!)) continue;
    assigned ??= new Uint8Array((events.length + 7) >> 3);
    assigned[i >> 3]! |= 1 << (i & 7);
  }
  const wire: WireSessionBatch = { session_id: batch.session_id, body: encodeBatch(events) };
  if (assigned) wire.assigned = assigned;
  return wire;
}

/** What an edge sends to a session actor on another node (in-process: SessionIngestRequest). */
export interface WireSessionIngestRequest {
  tenant_id: string;
  wire: WireSessionBatch[];
}

/**
 * The batch again, its events marked as they were, and `body` kept as the batch's `encoded`
 * form. Throws (TypeError) on a body that is not a batch; like decodeBatch it trusts the rest,
 * since only our own edges call a session actor.
 */
export function fromWire(wire: WireSessionBatch): SessionBatch {
  const events = decodeBatch(wire.body);
  const assigned = wire.assigned;
  if (assigned) {
    for (let i = 0; i < events.length; i++) {
      if ((assigned[i >> 3]! & (1 << (i & 7))) !== 0) (events[i] as { [SERVER_ASSIGNED_ID]?: true })[SERVER_ASSIGNED_ID] = true;
    }
  }
  // A copy: the body may be a view of the transport's read buffer, and it is published later.
  return { session_id: wire.session_id, events, encoded: Uint8Array.prototype.slice.call(wire.body) };
}

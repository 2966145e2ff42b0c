/**
 * Cluster-mode durability for the session actor: events become durable when JetStream
 * acknowledges their publish. Turns that end in the same tick are coalesced, split by partition
 * subject, and each partition's share is one publish (split further only if it would exceed the
 * server's max payload). The `Nats-Msg-Id` is a digest of the batch's (tenant, event_id) keys, so
 * a publish retried after a lost PubAck is a JetStream duplicate, not a second copy.
 *
 * A turn's events that came from another node as a stored-batch body (session-wire.ts) are not
 * packed again: the message body joins those bytes with the packing of the others (joinBatches).
 */
import { createHash } from "node:crypto";
import type { JetStreamClient } from "nats";
import { encodeBatch, joinBatches } from "../common/batch-codec";
import type { IngestEvent } from "../common/event";
import { partitionOf, partitionSubject } from "../common/event-stream";
import { publishEncodedBatch } from "../common/jetstream";
import { Coalescer } from "./coalescer";

export interface StreamPersisterOptions {
  js: () => JetStreamClient;
  partitions: number;
  /** Largest message the server takes (NATS max_payload); we stay under it. */
  maxPayloadBytes: number;
  publishTimeoutMs: number;
  maxCoalescedEvents: number;
}

/** One turn's events (one session's), and their body when it arrived made. */
interface Piece {
  events: IngestEvent[];
  encoded?: Uint8Array;
}

export function batchMessageId(events: readonly IngestEvent[]): string {
  // One update over the joined keys: the same bytes, so the same digest, as an update per
  // field, without four native calls per event.
  let keys = "";
  for (const event of events) keys += `${event.tenant_id}\u0000${event.event_id}\u0001`;
  return createHash("sha1").update(keys).digest("base64url");
}

/**
 * The message body of `pieces`, their events in order: bodies that came made are copied, each
 * run of pieces between them is packed in one go.
 */
export function encodePieces(pieces: readonly Piece[]): Uint8Array {
  const bodies: Uint8Array[] = [];
  let run: IngestEvent[] = [];
  for (const piece of pieces) {
    if (piece.encoded === undefined) {
      for (const event of piece.events) run.push(event);
      continue;
    }
    if (run.length > 0) {
      bodies.push(encodeBatch(run));
      run = [];
    }
    bodies.push(piece.encoded);
  }
  if (run.length > 0 || bodies.length === 0) bodies.push(encodeBatch(run));
  return joinBatches(bodies);
}

export class StreamPersister {
  private readonly coalescer: Coalescer<Piece>;

  constructor(private readonly options: StreamPersisterOptions) {
    this.coalescer = new Coalescer((pieces) => this.publishAll(pieces), options.maxCoalescedEvents, (piece) => piece.events.length);
  }

  /** `encoded`: the same events as made by `encodeBatch`, to publish as they are. */
  persist(events: IngestEvent[], encoded?: Uint8Array): Promise<void> {
    return this.coalescer.add([encoded === undefined ? { events } : { events, encoded }]);
  }

  private async publishAll(pieces: Piece[]): Promise<void> {
    const byPartition = new Map<number, Piece[]>();
    for (const piece of pieces) {
      // Every event of a piece has the piece's tenant and session, so its partition.
      const first = piece.events[0]!;
      const p = partitionOf(first.tenant_id, first.session_id, this.options.partitions);
      const list = byPartition.get(p);
      if (list) list.push(piece);
      else byPartition.set(p, [piece]);
    }
    const publishes: Promise<void>[] = [];
    for (const [partition, list] of byPartition) publishes.push(this.publishSized(partitionSubject(partition), list));
    await Promise.all(publishes);
  }

  /** Publishes `pieces` as one message, or as halves (in order) when that would be too large. */
  private async publishSized(subject: string, pieces: Piece[]): Promise<void> {
    const data = encodePieces(pieces);
    if (data.length > this.options.maxPayloadBytes) {
      const halves = halve(pieces);
      if (halves !== null) {
        // Sequential, not parallel: the halves must enter the stream in session order.
        await this.publishSized(subject, halves[0]);
        await this.publishSized(subject, halves[1]);
        return;
      }
    }
    const events = pieces.length === 1 ? pieces[0]!.events : pieces.flatMap((piece) => piece.events);
    await publishEncodedBatch(this.options.js(), subject, data, batchMessageId(events), {
      timeoutMs: this.options.publishTimeoutMs,
    });
  }
}

/** Two halves of `pieces` in order (a lone piece's events split, unmade), or null for one event. */
function halve(pieces: Piece[]): [Piece[], Piece[]] | null {
  if (pieces.length > 1) {
    const middle = pieces.length >> 1;
    return [pieces.slice(0, middle), pieces.slice(middle)];
  }
  const events = pieces[0]!.events;
  if (events.length < 2) return null;
  const middle = events.length >> 1;
  return [[{ events: events.slice(0, middle) }], [{ events: events.slice(middle) }]];
}

/**
 * The canonical event and the batch shapes that travel between services.
 *
 * Every hop carries a batch: the edge sends one call per owning session actor, the session
 * actor hands one batch per mailbox turn to the durable path, the storage writer inserts one
 * batch per flush. These types are the contract between those hops.
 */

/** An event after normalisation: every field the storage schema knows, in snake_case. */
export interface IngestEvent {
  tenant_id: string;
  /** Client idempotency key, or a server-assigned UUID when the client sent none. */
  event_id: string;
  event_name: string;
  /**
   * The effective session key (the routing key). The client's `session_id` when it sent one;
   * otherwise `user:<user_id>`; otherwise `event:<event_id>` (the event is its own session).
   * The prefixes keep a user id from colliding with a session id of the same text.
   */
  session_id: string;
  /** Order within the session as the client numbered it; null when the client sent none. */
  seq: number | null;
  user_id: string | null;
  channel: string | null;
  /** Event time, epoch milliseconds. */
  timestamp: number;
  /** Time the edge received the request, epoch milliseconds. */
  received_at: number;
  properties: Record<string, unknown>;
}

/**
 * Marks, in memory only, an event whose `event_id` the server assigned (the client sent none).
 * Such an id cannot come back in a resend, so the session actor skips the duplicate window for
 * it. A symbol key is invisible to JSON and msgpack: the mark never reaches storage or the
 * forwarder. To a session actor on another node it travels beside the events (session-wire.ts);
 * an event that arrives without it is checked like any other (slower, never wrong).
 */
export const SERVER_ASSIGNED_ID: unique symbol = Symbol("serverAssignedId");

/** Whether the server assigned `event`'s id in this process (see SERVER_ASSIGNED_ID). */
export function hasServerAssignedId(event: IngestEvent): boolean {
  return (event as { [SERVER_ASSIGNED_ID]?: true })[SERVER_ASSIGNED_ID] === true;
}

/** One rejected event of a request, by its index in the request's `events` array. */
export interface RejectedEvent {
  index: number;
  errors: string[];
  /** Only on an event refused by its user's rate limit: ms until it may be sent again (the others are refused for good). */
  retry_after_ms?: number;
}

/** A session's share of a request: the events of one session, in request order. */
export interface SessionBatch {
  session_id: string;
  events: IngestEvent[];
  /**
   * The same events as a stored-batch body (batch-codec.ts), when they came from another node
   * that way (session-wire.ts): published as they are if the session actor keeps every event.
   */
  encoded?: Uint8Array;
}

/** What the edge sends to a session actor: every session of one request that this actor owns. */
export interface SessionIngestRequest {
  tenant_id: string;
  sessions: SessionBatch[];
}

/** What a session actor answers once the accepted events are durable. */
export interface SessionIngestResult {
  accepted: number;
  duplicates: number;
}

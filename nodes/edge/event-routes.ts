/**
 * The HTTP paths that take events, and what each says about the events it carries.
 *
 * `POST /v1/events` is the native API: every event names itself (`event_name` or a spelling of
 * it). The learning platform's service (`../shared/seeds/002_*.txt`) has one path per event type
 * and bodies without a name: `POST /api/v1/events/attempt` with an attempt's fields, and the same
 * for `session` and `placement`; its SDKs work against this node unchanged. Such an event gets
 * the path's type as its `event_name`, and as its `event_id` the client-generated UUID the seed
 * uses for idempotency (`client_attempt_id`, the session's `session_id`, `placement_id`), so a
 * resent event is a duplicate; an event that carries its own name or id keeps it.
 * `POST /api/v1/events/batch` takes events that name themselves, as `/v1/events` does, and so
 * do `POST /events` and `POST /events/bulk`, the paths of the services of
 * `../shared/seeds/003_*.txt` and `004_*.txt` (one event per request to `/events`, its idempotency
 * key in the `Idempotency-Key` header, which every path reads; several to `/events/bulk`).
 */
import { hasField } from "../../actors/validator/normalize";

export interface EventRoute {
  /** The path, also the `route` label of the request metric (a fixed set: no label per URL). */
  path: string;
  /** The name its events get when they carry none. */
  eventName: string | null;
  /** The body field whose text becomes the event's id when it carries none. */
  idField: string | null;
}

const ROUTES: ReadonlyMap<string, EventRoute> = new Map(
  (
    [
      ["/v1/events", null, null],
      ["/events", null, null],
      ["/events/bulk", null, null],
      ["/api/v1/events/batch", null, null],
      ["/api/v1/events/attempt", "attempt", "client_attempt_id"],
      ["/api/v1/events/session", "session", "session_id"],
      ["/api/v1/events/placement", "placement", "placement_id"],
    ] as const
  ).map(([path, eventName, idField]) => [path, { path, eventName, idField }]),
);

/**
 * The URL patterns the HTTP server hands to the ingest route: every path above, plus the rest
 * under `/api/v1/events/`, which the routes answer 404 themselves (so a silent tenant gets its
 * answer and the request metric counts it under `other`).
 */
export const INGEST_URL_PATTERNS: readonly string[] = ["/v1/events", "/events", "/events/bulk", "/api/v1/events/*"];

/** The metric label of a request to a path that takes no events. */
export const UNKNOWN_ROUTE = "other";

/** The route of a request path (without its query), or undefined for a path that takes no events. */
export function eventRouteOf(path: string): EventRoute | undefined {
  return ROUTES.get(path);
}

/**
 * Gives the route's name and id to each event object that lacks them, in place (the objects
 * are the request's own, just parsed). Anything else passes as it is, for validation to judge.
 */
export function applyEventRoute(route: EventRoute, events: unknown[]): unknown[] {
  const { eventName, idField } = route;
  if (eventName === null) return events;
  for (const event of events) {
    if (typeof event !== "object" || event === null || Array.isArray(event)) continue;
    const raw = event as Record<string, unknown>;
    if (!hasField(raw, "event_name")) raw.event_name = eventName;
    const id = idField === null ? undefined : raw[idField];
    if (!hasField(raw, "event_id") && typeof id === "string" && id.length > 0) raw.event_id = id;
  }
  return events;
}

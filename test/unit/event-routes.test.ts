import { describe, expect, it } from "vitest";
import { applyEventRoute, eventRouteOf } from "../../nodes/edge/event-routes";

describe("event routes", () => {
  it("knows the native path, seed 002's typed paths and batch path, seeds 003 and 004's paths, nothing else", () => {
    expect(eventRouteOf("/v1/events")).toMatchObject({ eventName: null, idField: null });
    expect(eventRouteOf("/api/v1/events/batch")).toMatchObject({ eventName: null, idField: null });
    expect(eventRouteOf("/events")).toMatchObject({ eventName: null, idField: null });
    expect(eventRouteOf("/events/bulk")).toMatchObject({ eventName: null, idField: null });
    expect(eventRouteOf("/api/v1/events/attempt")).toMatchObject({ eventName: "attempt", idField: "client_attempt_id" });
    expect(eventRouteOf("/api/v1/events/session")).toMatchObject({ eventName: "session", idField: "session_id" });
    expect(eventRouteOf("/api/v1/events/placement")).toMatchObject({ eventName: "placement", idField: "placement_id" });
    for (const path of ["/api/v1/events/Attempt", "/api/v1/events/", "/api/v1/events/attempt/x", "/v1/events/", "/api/v2/events/attempt"]) {
      expect(eventRouteOf(path)).toBeUndefined();
    }
  });

  it("names an unnamed event after its path and takes the seed's client UUID as its id", () => {
    const events: unknown[] = [{ client_attempt_id: "a-1", user_id: "u" }, { user_id: "u" }];
    expect(applyEventRoute(eventRouteOf("/api/v1/events/attempt")!, events)).toEqual([
      { client_attempt_id: "a-1", user_id: "u", event_name: "attempt", event_id: "a-1" },
      { user_id: "u", event_name: "attempt" },
    ]);
    expect(applyEventRoute(eventRouteOf("/api/v1/events/session")!, [{ session_id: "s-1" }])).toEqual([
      { session_id: "s-1", event_name: "session", event_id: "s-1" },
    ]);
  });

  it("keeps a name or id the event carries, under any accepted spelling", () => {
    const route = eventRouteOf("/api/v1/events/placement")!;
    const events: unknown[] = [
      { eventType: "custom", placement_id: "p-1" },
      { event: "other", messageId: "m-1", placement_id: "p-2" },
      { event_name: "x", eventId: "e-1", placement_id: "p-3" },
    ];
    expect(applyEventRoute(route, events)).toEqual([
      { eventType: "custom", placement_id: "p-1", event_id: "p-1" },
      { event: "other", messageId: "m-1", placement_id: "p-2" },
      { event_name: "x", eventId: "e-1", placement_id: "p-3" },
    ]);
  });

  it("leaves what is not an event object, an empty or non-string id, and generic paths alone", () => {
    const route = eventRouteOf("/api/v1/events/attempt")!;
    const odd: unknown[] = [null, 7, "text", [1], { client_attempt_id: "" }, { client_attempt_id: 42 }];
    expect(applyEventRoute(route, odd)).toEqual([null, 7, "text", [1], { client_attempt_id: "", event_name: "attempt" }, { client_attempt_id: 42, event_name: "attempt" }]);
    const native: unknown[] = [{ user_id: "u" }];
    expect(applyEventRoute(eventRouteOf("/v1/events")!, native)).toEqual([{ user_id: "u" }]);
  });
});

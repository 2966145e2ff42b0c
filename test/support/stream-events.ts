import type { IngestEvent } from "../../actors/common/event";

/**
 * `n` normalised events with ids `<tag>-<i>`, of mixed shapes (null seq and user, empty and
 * nested properties, non-ASCII text), for the stream codec and JetStream tests. `session` picks
 * each event's session (three sessions by default).
 */
export function makeStreamEvents(n: number, tag: string, session = (i: number) => `sess-${i % 3}`): IngestEvent[] {
  return Array.from({ length: n }, (_, i) => ({
    tenant_id: "tenant-1",
    event_id: `${tag}-${i}`,
    event_name: "purchase",
    session_id: session(i),
    seq: i % 4 === 0 ? null : i,
    user_id: i % 2 === 0 ? null : `u-${i}`,
    channel: "web",
    timestamp: 1_700_000_000_000 + i,
    received_at: 1_700_000_000_900 + i,
    properties: i % 2 === 0 ? {} : { price: i / 4, items: [{ sku: `s${i}`, qty: i }], note: "ünï ✓" },
  }));
}

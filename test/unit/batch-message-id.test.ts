import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import type { IngestEvent } from "../../actors/common/event";
import { batchMessageId } from "../../actors/session/stream-persister";

/** The digest as first specified: one update per field. */
function perFieldDigest(events: Array<Pick<IngestEvent, "tenant_id" | "event_id">>): string {
  const hash = createHash("sha1");
  for (const e of events) hash.update(e.tenant_id).update("\u0000").update(e.event_id).update("\u0001");
  return hash.digest("base64url");
}

describe("batchMessageId", () => {
  it("is the sha1 of every (tenant, event_id) key in order, whatever the strings hold", () => {
    fc.assert(
      fc.property(fc.array(fc.record({ tenant_id: fc.string({ unit: "binary" }), event_id: fc.string({ unit: "binary" }) }), { maxLength: 30 }), (keys) => {
        expect(batchMessageId(keys as IngestEvent[])).toBe(perFieldDigest(keys));
      }),
      { numRuns: 300 },
    );
  });

  it("differs when the order or a key differs", () => {
    const a = { tenant_id: "t", event_id: "a" } as IngestEvent;
    const b = { tenant_id: "t", event_id: "b" } as IngestEvent;
    expect(batchMessageId([a, b])).not.toBe(batchMessageId([b, a]));
    expect(batchMessageId([a])).not.toBe(batchMessageId([b]));
  });
});

import fc from "fast-check";
import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import { decodeBatch, encodeBatch, joinBatches } from "../../actors/common/batch-codec";
import { SERVER_ASSIGNED_ID, hasServerAssignedId, type IngestEvent } from "../../actors/common/event";
import { fromWire, toWire } from "../../actors/common/session-wire";
import { encodePieces } from "../../actors/session/stream-persister";
import { makeStreamEvents } from "../support/stream-events";


/** Events whose properties take many shapes: more record definitions than one byte of ids holds. */
const arbitraryEvents = fc.array(
  fc.record({
    id: fc.string({ minLength: 1, maxLength: 8 }),
    keys: fc.array(fc.constantFrom("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"), { maxLength: 5 }),
    nested: fc.boolean(),
  }),
  { maxLength: 40 },
).map((specs) =>
  specs.map(({ id, keys, nested }, i): IngestEvent => {
    const properties: Record<string, unknown> = {};
    for (const k of keys) properties[`${k}${i % 7}`] = nested ? { [`n${k}`]: [i, { z: k }] } : i;
    return { ...makeStreamEvents(1, id)[0]!, properties };
  }),
);

describe("batch codec", () => {
  it("round-trips events exactly and rejects non-batches", () => {
    const events = makeStreamEvents(500, "codec");
    expect(decodeBatch(encodeBatch(events))).toStrictEqual(events);
    expect(decodeBatch(encodeBatch([]))).toStrictEqual([]);
    expect(() => decodeBatch(encodeBatch({ not: "a batch" } as unknown as IngestEvent[]))).toThrow(TypeError);
    expect(() => decodeBatch(encodeBatch([{ x: 1 }] as unknown as IngestEvent[]))).toThrow(TypeError);
  });

  it("joinBatches: bodies packed one by one read as one batch of all their events, in order", () => {
    fc.assert(
      fc.property(fc.array(arbitraryEvents, { minLength: 1, maxLength: 6 }), (batches) => {
        const joined = joinBatches(batches.map((events) => encodeBatch(events)));
        expect(decodeBatch(joined)).toStrictEqual(batches.flat());
        // Also for a reader that has decoded other bodies before (its record ids are taken).
        const reader = new Packr({ useRecords: true, mapsAsObjects: true });
        reader.unpack(encodeBatch(makeStreamEvents(3, "before")) as Buffer);
        expect(reader.unpack(joined as Buffer)).toStrictEqual(batches.flat());
      }),
      { numRuns: 300 },
    );
  });

  it.each([0, 1, 15, 16, 65_535, 65_536])("joinBatches reads each array header size (%i events in a body)", (n) => {
    const events = makeStreamEvents(n, "h");
    const tail = makeStreamEvents(2, "tail");
    expect(decodeBatch(joinBatches([encodeBatch(events), encodeBatch(tail)]))).toStrictEqual([...events, ...tail]);
  });

  it("joinBatches hands a lone body back as it is, and refuses bytes that are not an array", () => {
    const body = encodeBatch(makeStreamEvents(3, "one"));
    expect(joinBatches([body])).toBe(body);
    expect(() => joinBatches([body, new Packr().pack({ not: "an array" })])).toThrow(/must be a MessagePack array/);
    expect(() => joinBatches([body, new Uint8Array(0)])).toThrow(TypeError);
  });
});

describe("session wire form", () => {
  it("round-trips a session batch, with the server-assigned marks, and keeps the body as the batch's encoded form", () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { maxLength: 70 }), (marks) => {
        const events = makeStreamEvents(marks.length, "w", () => "s1");
        events.forEach((event, i) => {
          if (marks[i]) (event as { [SERVER_ASSIGNED_ID]?: true })[SERVER_ASSIGNED_ID] = true;
        });
        const wire = toWire({ session_id: "s1", events });
        expect(wire.assigned === undefined).toBe(!marks.includes(true));
        const back = fromWire(wire);
        expect(back.session_id).toBe("s1");
        // As JSON: the marks are symbol keys, compared on their own.
        expect(JSON.parse(JSON.stringify(back.events))).toStrictEqual(JSON.parse(JSON.stringify(events)));
        expect(back.events.map(hasServerAssignedId)).toEqual(marks);
        expect(decodeBatch(back.encoded!)).toStrictEqual(decodeBatch(encodeBatch(events)));
      }),
    );
  });

  it("fromWire copies the body: the transport may reuse the bytes it read", () => {
    const wire = toWire({ session_id: "s1", events: makeStreamEvents(5, "copy", () => "s1") });
    const back = fromWire(wire);
    wire.body.fill(0);
    expect(decodeBatch(back.encoded!)).toStrictEqual(makeStreamEvents(5, "copy", () => "s1"));
  });

  it("fromWire refuses a body that is not a batch", () => {
    expect(() => fromWire({ session_id: "s1", body: new Packr().pack({ x: 1 }) })).toThrow(TypeError);
  });
});

describe("encodePieces", () => {
  it("is the batch of every piece's events in order, made or not, reusing made bodies", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(arbitraryEvents, fc.boolean()), { maxLength: 8 }), (specs) => {
        const pieces = specs.map(([events, made]) => (made ? { events, encoded: encodeBatch(events).slice() } : { events }));
        expect(decodeBatch(encodePieces(pieces))).toStrictEqual(specs.flatMap(([events]) => events));
      }),
      { numRuns: 300 },
    );
  });

  it("does not pack a made piece again: its bytes are what the message carries", () => {
    const events = makeStreamEvents(4, "made", () => "s1");
    // Bytes that decode to different events than `events` show which ones were used.
    const stand_in = makeStreamEvents(4, "stand-in", () => "s1");
    const body = encodePieces([{ events, encoded: encodeBatch(stand_in).slice() }]);
    expect(decodeBatch(body)).toStrictEqual(stand_in);
  });
});

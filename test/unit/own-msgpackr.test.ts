import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import type * as Msgpackr from "msgpackr";
import { ownMsgpackr } from "../../actors/common/own-msgpackr";

/** Node's own require (the one Moleculer's serializer and the product's modules load msgpackr with). */
const nodeRequire = createRequire(__filename);
const shared = nodeRequire("msgpackr") as typeof Msgpackr;

describe("ownMsgpackr", () => {
  it("is a module instance of its own, and leaves everyone else the shared one", () => {
    const own = ownMsgpackr();
    expect(own.Packr).not.toBe(shared.Packr);
    expect(ownMsgpackr().Packr).not.toBe(own.Packr);
    // A later plain require still gets the shared instance.
    expect((nodeRequire("msgpackr") as typeof Msgpackr).Packr).toBe(shared.Packr);
  });

  it("reads what the shared instance writes and the other way round, records included", () => {
    const own = ownMsgpackr();
    const options = { useRecords: true, mapsAsObjects: true };
    const value = [{ a: 1, b: "x", c: { d: [1, 2] } }, { a: 2, b: "y", c: { d: [] } }];
    expect(new own.Packr(options).unpack(new shared.Packr(options).pack(value))).toEqual(value);
    expect(new shared.Packr(options).unpack(new own.Packr(options).pack(value))).toEqual(value);
  });
});

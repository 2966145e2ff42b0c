/**
 * A copy of the msgpackr module that no other code in the process packs through.
 *
 * Why: msgpackr builds each Packr's `pack` and record writer as closures inside its constructor,
 * and V8 keeps type feedback per closure creation site, so every Packr in a process shares one
 * set of inline caches. In a cluster node, Moleculer's serializer packs packets of dozens of
 * shapes through them, and the event codec's property loads went megamorphic: packing a batch of
 * events cost 2.9-4.5 µs of CPU per event inside the node against ~1.3-2 in a process of its own.
 * Loaded again as a module of its own (the same file, fresh closures), the codec packs at
 * 2.25-2.47 µs per event in the same 3-node bench (bench/README.md, seventh round).
 *
 * The shared instance in `require.cache` is left as it was, so everyone else still gets it.
 */
import type * as Msgpackr from "msgpackr";

export function ownMsgpackr(): typeof Msgpackr {
  const path = require.resolve("msgpackr");
  const shared = require.cache[path];
  delete require.cache[path];
  try {
    return require("msgpackr") as typeof Msgpackr;
  } finally {
    if (shared) require.cache[path] = shared;
    else delete require.cache[path];
  }
}

/**
 * A bounded map from (scope, key) pairs of strings that forgets its least recently used pair,
 * for the hot path's bookkeeping (the session actor's last `seq` per tenant and session; its
 * duplicate window is an EventIdWindow, see there). Same contract as an lru-cache with only `max`
 * set, keyed by `${scope}\u0000${key}`: `get` and `set` make a pair the most recently used,
 * `has` does not, and `set` past `max` evicts the least recently used pair. One window across
 * all scopes.
 *
 * Two levels (scope → key → slot) instead of one concatenated key: the key strings (a session
 * id) come straight from the event, so V8 hashes each once and caches the hash in the string,
 * where a concatenation per lookup was a new string to flatten and hash every time (the lookups
 * of a concatenated key were most of this structure's cost in the profile).
 *
 * Why not lru-cache: when both of the session actor's windows were lru-caches, consulted once
 * or twice per event, lru-cache's general machinery (TTLs, sizes, disposers, stale checks) made
 * its has/set about an eighth of the node's CPU in the batch benchmark (bench/README.md).
 * Layout: a Map from key to slot, and the recency order as a doubly linked list of slot numbers
 * in typed arrays (no per-entry objects, nothing for the garbage collector to trace). The
 * arrays grow by doubling up to `max`, so a large window costs memory only once it fills. (A
 * bare Map used as an insertion-ordered queue is not an option: V8 leaves deleted entries at
 * the front of a Map's table, and reading its oldest key then scans them, which made that
 * version 40x slower than lru-cache at 250k keys.)
 */
const NONE = -1;

export class ScopedLru<V> {
  private readonly scopes = new Map<string, Map<string, number>>();
  private slotScopes: Array<string | undefined> = [];
  private keys: Array<string | undefined> = [];
  private values: Array<V | undefined> = [];
  private newer = new Int32Array(0);
  private older = new Int32Array(0);
  /** Least recently used slot (evicted first) and most recently used slot. */
  private oldest = NONE;
  private newest = NONE;
  private used = 0;

  constructor(readonly max: number) {
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`max must be a positive integer, got ${max}`);
  }

  get size(): number {
    return this.used;
  }

  has(scope: string, key: string): boolean {
    const slots = this.scopes.get(scope);
    return slots !== undefined && slots.has(key);
  }

  get(scope: string, key: string): V | undefined {
    const slot = this.scopes.get(scope)?.get(key);
    if (slot === undefined) return undefined;
    this.touch(slot);
    return this.values[slot];
  }

  set(scope: string, key: string, value: V): void {
    let slots = this.scopes.get(scope);
    let slot = slots?.get(key);
    if (slot !== undefined) {
      this.values[slot] = value;
      this.touch(slot);
      return;
    }
    if (this.used < this.max) {
      slot = this.used++;
      if (slot >= this.newer.length) this.grow();
    } else {
      // Reuse the least recently used slot.
      slot = this.oldest;
      const ownerName = this.slotScopes[slot]!;
      const owner = this.scopes.get(ownerName)!;
      owner.delete(this.keys[slot]!);
      // A scope with nothing left is dropped (unless it is the one being written to).
      if (owner.size === 0 && owner !== slots) this.scopes.delete(ownerName);
      this.unlink(slot);
    }
    if (slots === undefined) {
      slots = new Map<string, number>();
      this.scopes.set(scope, slots);
    }
    this.slotScopes[slot] = scope;
    this.keys[slot] = key;
    this.values[slot] = value;
    slots.set(key, slot);
    this.append(slot);
  }

  private grow(): void {
    const capacity = Math.min(this.max, Math.max(16, this.newer.length * 2));
    const newer = new Int32Array(capacity);
    const older = new Int32Array(capacity);
    newer.set(this.newer);
    older.set(this.older);
    this.newer = newer;
    this.older = older;
  }

  /** Makes `slot` the most recently used. */
  private touch(slot: number): void {
    if (slot === this.newest) return;
    this.unlink(slot);
    this.append(slot);
  }

  private unlink(slot: number): void {
    const before = this.older[slot]!;
    const after = this.newer[slot]!;
    if (before === NONE) this.oldest = after;
    else this.newer[before] = after;
    if (after === NONE) this.newest = before;
    else this.older[after] = before;
  }

  private append(slot: number): void {
    this.older[slot] = this.newest;
    this.newer[slot] = NONE;
    if (this.newest === NONE) this.oldest = slot;
    else this.newer[this.newest] = slot;
    this.newest = slot;
  }
}

/**
 * The most recent `max` distinct (scope, id) pairs added, for duplicate suppression: `has` asks
 * whether a pair is among them, `add` remembers one and, past `max`, forgets the oldest added.
 *
 * Why not ScopedLru: a dedup window only ever adds ids it has just found absent, so "least
 * recently used" and "first added" are the same order, and the LRU's recency list (a doubly
 * linked list updated on every write, plus a value per slot) is pure overhead. Here the order is
 * a ring of slots written in sequence: `add` is one map insert, one map delete (the evicted pair)
 * and two sequential array writes; `has` is two map lookups. Two levels (scope → id), as in
 * ScopedLru, so no key is concatenated per event (see there).
 */
export class IdWindow<Id extends string | number = string> {
  private readonly scopes = new Map<string, Set<Id>>();
  /** Slot i holds the i-th pair added modulo max: the ring's order is the eviction order. */
  private slotScopes: string[] = [];
  private slotIds: Id[] = [];
  /** Next slot to write; once the ring is full, also the oldest pair. */
  private next = 0;
  private used = 0;

  constructor(readonly max: number) {
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`max must be a positive integer, got ${max}`);
  }

  get size(): number {
    return this.used;
  }

  has(scope: string, id: Id): boolean {
    const ids = this.scopes.get(scope);
    return ids !== undefined && ids.has(id);
  }

  /** Remembers (scope, id); a pair already in the window keeps its place. */
  add(scope: string, id: Id): void {
    let ids = this.scopes.get(scope);
    if (ids?.has(id)) return;
    const slot = this.next;
    if (this.used === this.max) {
      const oldScope = this.slotScopes[slot]!;
      const oldIds = this.scopes.get(oldScope)!;
      oldIds.delete(this.slotIds[slot]!);
      // A scope with nothing left is dropped (unless it is the one being written to).
      if (oldIds.size === 0 && oldIds !== ids) this.scopes.delete(oldScope);
    } else {
      this.used++;
    }
    if (ids === undefined) {
      ids = new Set<Id>();
      this.scopes.set(scope, ids);
    }
    ids.add(id);
    this.slotScopes[slot] = scope;
    this.slotIds[slot] = id;
    this.next = slot + 1 === this.max ? 0 : slot + 1;
  }
}

/**
 * The session actor's duplicate window over (tenant, event_id) pairs, with the ids that SDKs
 * send (UUIDs in their 36-character text form) held as numbers in typed arrays instead of as
 * strings in a Set.
 *
 * Why: in the WebSocket benchmark (every event carries a client UUID) the Set-based IdWindow
 * was 12.6% of the node's samples: each event is a lookup and, once durable, an insert and the
 * eviction of the oldest id, in a table of 250,000 strings that the garbage collector also has
 * to trace on every full collection. Here a UUID is four int32 words plus the tenant's number, in
 * a ring (eviction order) and an open-addressing index (linear probing, at most half full,
 * backward-shift deletion), so an operation touches a few cache lines and allocates nothing.
 *
 * Exactness: the words are the id's 128 bits and its letter case (a UUID written in capitals is
 * a different string, so a different id), so two pairs collide only when they are the same
 * pair. Ids in any other shape (custom ids, mixed-case UUIDs) go to an IdWindow of the same
 * size. Each part forgets its own oldest pair first, so the window remembers at least the last
 * `max` pairs of each kind.
 */
import { IdWindow } from "./id-window";

/** Value of each hex digit's character code, else -1 (codes above 0xff never reach it, see `quad`). */
const HEX = new Int8Array(256).fill(-1);
/** Letter case of each hex digit: 1 lower-case letter, 2 capital, 0 digit. */
const CASE = new Uint8Array(256);
for (let c = 0; c < 10; c++) HEX[0x30 + c] = c;
for (let c = 0; c < 6; c++) {
  HEX[0x61 + c] = 10 + c;
  CASE[0x61 + c] = 1;
  HEX[0x41 + c] = 10 + c;
  CASE[0x41 + c] = 2;
}

/** Letter case of a parsed UUID: one bit of the tenant word, so `ABC…` and `abc…` stay apart. */
const UPPER = 1;

/** Case bits of the digits read by the last `quad` calls (module state: no tuple per call). */
let cases = 0;

/** The 16-bit value of the four hex digits at `at`, or -1. */
function quad(id: string, at: number): number {
  const a = id.charCodeAt(at);
  const b = id.charCodeAt(at + 1);
  const c = id.charCodeAt(at + 2);
  const d = id.charCodeAt(at + 3);
  // The tables cover 0x00-0xff; any higher code is not a hex digit.
  if (((a | b | c | d) & ~0xff) !== 0) return -1;
  const va = HEX[a]!;
  const vb = HEX[b]!;
  const vc = HEX[c]!;
  const vd = HEX[d]!;
  if ((va | vb | vc | vd) < 0) return -1;
  cases |= CASE[a]! | CASE[b]! | CASE[c]! | CASE[d]!;
  return (va << 12) | (vb << 8) | (vc << 4) | vd;
}

/**
 * Reads `id` as a UUID's text (any version; digits and letters of one case) into
 * `words[at..at+3]`. Returns 0 (lower-case letters, or none), UPPER (capitals), or -1 (not in
 * that form; `words` unchanged).
 */
export function parseUuid(id: string, words: Int32Array, at = 0): number {
  if (id.length !== 36) return -1;
  if (id.charCodeAt(8) !== 0x2d || id.charCodeAt(13) !== 0x2d || id.charCodeAt(18) !== 0x2d || id.charCodeAt(23) !== 0x2d) return -1;
  cases = 0;
  const q0 = quad(id, 0);
  const q1 = quad(id, 4);
  const q2 = quad(id, 9);
  const q3 = quad(id, 14);
  const q4 = quad(id, 19);
  const q5 = quad(id, 24);
  const q6 = quad(id, 28);
  const q7 = quad(id, 32);
  if ((q0 | q1 | q2 | q3 | q4 | q5 | q6 | q7) < 0 || cases === 3) return -1;
  words[at] = (q0 << 16) | q1;
  words[at + 1] = (q2 << 16) | q3;
  words[at + 2] = (q4 << 16) | q5;
  words[at + 3] = (q6 << 16) | q7;
  return cases === 2 ? UPPER : 0;
}

/** Words per ring slot: the tenant word (tenant number × 2 + case bit), then the UUID's four. */
const SLOT_WORDS = 5;

/** The last `max` (tenant number, UUID) keys added, in typed arrays. */
export class UuidRing {
  private readonly ring: Int32Array;
  private readonly hashes: Int32Array;
  /** Open addressing: slot + 1 of the key whose probe sequence passes here, 0 when empty. */
  private readonly index: Int32Array;
  private readonly mask: number;
  private readonly seed: number;
  private next = 0;
  private used = 0;

  constructor(readonly max: number, seed = (Math.random() * 0x100000000) | 0) {
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`max must be a positive integer, got ${max}`);
    this.ring = new Int32Array(max * SLOT_WORDS);
    this.hashes = new Int32Array(max);
    let capacity = 16;
    while (capacity < max * 2) capacity *= 2;
    this.index = new Int32Array(capacity);
    this.mask = capacity - 1;
    // A per-process seed: a client cannot choose ids that pile up in one probe sequence.
    this.seed = seed;
  }

  get size(): number {
    return this.used;
  }

  /** Whether the key (the tenant word, and the UUID in `words[at..at+3]`) is held. */
  has(tenantWord: number, words: Int32Array, at = 0): boolean {
    return this.find(tenantWord, words, at, this.hash(tenantWord, words, at)) !== -1;
  }

  /** Remembers the key (a key already held keeps its place); past `max`, forgets the oldest. */
  add(tenantWord: number, words: Int32Array, at = 0): void {
    const hash = this.hash(tenantWord, words, at);
    if (this.find(tenantWord, words, at, hash) !== -1) return;
    const slot = this.next;
    if (this.used === this.max) this.unlink(slot);
    else this.used++;
    const base = slot * SLOT_WORDS;
    this.ring[base] = tenantWord;
    this.ring[base + 1] = words[at]!;
    this.ring[base + 2] = words[at + 1]!;
    this.ring[base + 3] = words[at + 2]!;
    this.ring[base + 4] = words[at + 3]!;
    this.hashes[slot] = hash;
    let i = hash & this.mask;
    while (this.index[i] !== 0) i = (i + 1) & this.mask;
    this.index[i] = slot + 1;
    this.next = slot + 1 === this.max ? 0 : slot + 1;
  }

  private hash(tenantWord: number, words: Int32Array, at: number): number {
    let h = Math.imul(words[at]! ^ this.seed, 0x9e3779b1);
    h = Math.imul(h ^ words[at + 1]! ^ (h >>> 15), 0x85ebca77);
    h = Math.imul(h ^ words[at + 2]! ^ (h >>> 13), 0xc2b2ae3d);
    h = Math.imul(h ^ words[at + 3]! ^ (h >>> 16), 0x27d4eb2f);
    h = Math.imul(h ^ tenantWord ^ (h >>> 15), 0x165667b1);
    return h ^ (h >>> 16);
  }

  /** Index position of the key, or -1. */
  private find(tenantWord: number, words: Int32Array, at: number, hash: number): number {
    const ring = this.ring;
    for (let i = hash & this.mask; ; i = (i + 1) & this.mask) {
      const entry = this.index[i]!;
      if (entry === 0) return -1;
      const slot = entry - 1;
      if (this.hashes[slot] !== hash) continue;
      const base = slot * SLOT_WORDS;
      if (
        ring[base] === tenantWord &&
        ring[base + 1] === words[at] &&
        ring[base + 2] === words[at + 1] &&
        ring[base + 3] === words[at + 2] &&
        ring[base + 4] === words[at + 3]
      ) {
        return i;
      }
    }
  }

  /** Takes `slot`'s key out of the index, shifting back the keys probed past it (no tombstones). */
  private unlink(slot: number): void {
    const mask = this.mask;
    const index = this.index;
    let i = this.hashes[slot]! & mask;
    while (index[i] !== slot + 1) i = (i + 1) & mask;
    for (let j = (i + 1) & mask; index[j] !== 0; j = (j + 1) & mask) {
      const home = this.hashes[index[j]! - 1]! & mask;
      // The key at j may move to i only if its home is not cyclically within (i, j].
      const stays = i <= j ? i < home && home <= j : i < home || home <= j;
      if (stays) continue;
      index[i] = index[j]!;
      i = j;
    }
    index[i] = 0;
  }
}

/** Most tenants given a number; ids of tenants past it take the IdWindow (tenant ids come from the key table, so this is not reached in practice). */
const MAX_TENANTS = 1 << 20;

/** Duplicate window over (tenant, event_id): UUIDs in a UuidRing, other ids in an IdWindow. */
export class EventIdWindow {
  private readonly uuids: UuidRing;
  private readonly others: IdWindow;
  private readonly tenants = new Map<string, number>();
  private readonly words = new Int32Array(4);

  constructor(readonly max: number) {
    this.uuids = new UuidRing(max);
    this.others = new IdWindow(max);
  }

  /** Pairs held (both parts). */
  get size(): number {
    return this.uuids.size + this.others.size;
  }

  has(tenant: string, id: string): boolean {
    return this.hasParsed(tenant, id, parseUuid(id, this.words), this.words, 0);
  }

  add(tenant: string, id: string): void {
    this.addParsed(tenant, id, parseUuid(id, this.words), this.words, 0);
  }

  /**
   * `has` for an id already read by `parseUuid(id, words, at)`, which returned `kind`: a batch
   * parses each id once for the lookup before it is persisted and the `addParsed` after.
   */
  hasParsed(tenant: string, id: string, kind: number, words: Int32Array, at: number): boolean {
    const tenantWord = this.tenantWord(tenant, kind, false);
    return tenantWord === -1 ? this.others.has(tenant, id) : this.uuids.has(tenantWord, words, at);
  }

  /** `add` for an id already read by `parseUuid(id, words, at)`, which returned `kind`. */
  addParsed(tenant: string, id: string, kind: number, words: Int32Array, at: number): void {
    const tenantWord = this.tenantWord(tenant, kind, true);
    if (tenantWord === -1) this.others.add(tenant, id);
    else this.uuids.add(tenantWord, words, at);
  }

  /** The ring's tenant word for a parsed id of this kind, or -1 for the IdWindow. */
  private tenantWord(tenant: string, letterCase: number, numberNewTenant: boolean): number {
    if (letterCase === -1) return -1;
    let n = this.tenants.get(tenant);
    if (n === undefined) {
      // A tenant with no number has no pair in the ring (any it has are in the IdWindow): a
      // lookup asks there rather than numbering the tenant.
      if (!numberNewTenant || this.tenants.size >= MAX_TENANTS) return -1;
      n = this.tenants.size;
      this.tenants.set(tenant, n);
    }
    return n * 2 + letterCase;
  }
}

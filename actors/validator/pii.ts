import { createHash } from "node:crypto";
import type { IngestEvent } from "../common/event";

/**
 * Privacy re-validation: finds personal data and credentials in the free-form parts of an
 * event and applies the tenant's policy to them.
 *
 * This runs on every string of every event, so the shape of the code is driven by the clean
 * case: one native scan rules out secrets, another rules out everything else for strings with
 * no digit, '@' or colon, and otherwise one pass counts the characters each detector needs
 * (digits, '@', dots, colons, dashes) so a detector only runs when its minimum is met. Nothing
 * is allocated for a string in which nothing is found, and nothing is copied for an event in
 * which nothing is found.
 *
 * False positives cost as much as misses (a redacted order id or timestamp is lost data), so
 * the numeric detectors look at the whole run of digits and separators a candidate sits in and
 * reject it when that run is something else (a date, a version, a UUID, a decimal).
 */

export type PiiKind = "email" | "phone" | "card" | "ip" | "ssn" | "secret";

/** What a tenant wants done with an event that carries personal data. */
export type PiiPolicy = "redact" | "drop" | "allow";

export const DEFAULT_PII_POLICY: PiiPolicy = "redact";

/** One detection: `text.slice(start, end)` is the personal data. */
export interface PiiDetection {
  kind: PiiKind;
  start: number;
  end: number;
}

export type PiiCounts = Partial<Record<PiiKind, number>>;

export interface PiiPolicyResult {
  /** The input event itself unless the policy is `redact` and something was found. */
  event: IngestEvent;
  /** Detections by kind across every scanned field. Shared and frozen when empty: do not mutate. */
  detections: PiiCounts;
  /** Set only under the `drop` policy: why the event must be rejected. */
  dropReason?: string;
}

// ---------------------------------------------------------------------------------------------
// Public API

/** Every detection in `text`, ordered by position and non-overlapping. */
export function detectPii(text: string): PiiDetection[] {
  return detectSpans(text) ?? [];
}

/**
 * `text` with each detection replaced by `[redacted:<kind>]`, and the detections by kind (a
 * shared frozen object when there are none). The result scans clean: redacting it again is a
 * no-op.
 */
export function redactString(text: string): { text: string; detections: PiiCounts } {
  const spans = detectSpans(text);
  if (spans === null) return { text, detections: NO_DETECTIONS };
  const detections: PiiCounts = {};
  addCounts(detections, spans);
  return { text: spliceTokens(text, spans), detections };
}

/**
 * Applies `policy` to the scanned fields of `event`: `properties` at any depth, and the top-level
 * `user_id`, `session_id`, `channel` and `event_name`. `tenant_id` and `event_id` are never
 * scanned: they are system and idempotency keys, and rewriting them would break routing and
 * deduplication. The input is never mutated.
 */
export function applyPiiPolicy(event: IngestEvent, policy: PiiPolicy): PiiPolicyResult {
  walk.reset(policy);

  const eventName = walk.field("event_name", event.event_name);
  const sessionId = walk.field("session_id", event.session_id);
  const userId = event.user_id === null ? null : walk.field("user_id", event.user_id);
  const channel = event.channel === null ? null : walk.field("channel", event.channel);
  walk.path.push("properties");
  const properties = walk.object(event.properties);
  walk.path.pop();

  const detections = walk.detections ?? NO_DETECTIONS;
  const dropReason = walk.dropReason;
  walk.reset(policy);

  if (dropReason !== undefined) return { event, detections, dropReason };
  const unchanged =
    eventName === event.event_name &&
    sessionId === event.session_id &&
    userId === event.user_id &&
    channel === event.channel &&
    properties === event.properties;
  if (unchanged) return { event, detections };
  return {
    event: {
      ...event,
      event_name: eventName,
      session_id: sessionId === event.session_id ? sessionId : pseudonym(sessionId, event.tenant_id, event.session_id),
      user_id: userId === event.user_id || userId === null ? userId : pseudonym(userId, event.tenant_id, event.user_id!),
      channel,
      properties,
    },
    detections,
  };
}

/**
 * Session and user ids are identities: redacting two users' emails to the same
 * `[redacted:email]` would merge their sessions (and route them as one). A redacted identifier
 * keeps its redacted text plus a short keyed digest of the original, so distinct originals stay
 * distinct and equal ones stay equal, while the PII itself is gone.
 */
function pseudonym(redacted: string, tenantId: string, original: string): string {
  const digest = createHash("sha256").update(tenantId).update("\u0000").update(original).digest("base64url").slice(0, 12);
  return `${redacted}~${digest}`;
}

// ---------------------------------------------------------------------------------------------
// Event walk

const NO_DETECTIONS: PiiCounts = Object.freeze({});

const KIND_PHRASES: Record<PiiKind, string> = {
  email: "an email address",
  phone: "a phone number",
  card: "a payment card number",
  ip: "an IP address",
  ssn: "a US social security number",
  secret: "a secret or access token",
};

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/**
 * The state of one `applyPiiPolicy` call. It is a single reused object rather than one per
 * call so that a clean event allocates nothing; the walk is synchronous, so calls cannot
 * interleave.
 */
class PolicyWalk {
  policy: PiiPolicy = DEFAULT_PII_POLICY;
  detections: PiiCounts | null = null;
  dropReason: string | undefined = undefined;
  /** Keys from the event root to the value being scanned; only turned into text on a drop. */
  readonly path: Array<string | number> = [];

  reset(policy: PiiPolicy): void {
    this.policy = policy;
    this.detections = null;
    this.dropReason = undefined;
    // The walk pushes and pops in pairs, so the path is empty here unless one threw. Not
    // `length = 0` every time: that frees the array's store, and each event would allocate anew.
    if (this.path.length !== 0) this.path.length = 0;
  }

  field(name: string, value: string): string {
    this.path.push(name);
    const result = this.string(value);
    this.path.pop();
    return result;
  }

  value(value: unknown): unknown {
    if (typeof value === "string") return this.string(value);
    if (typeof value !== "object" || value === null) return value;
    if (Array.isArray(value)) return this.array(value);
    return this.object(value as Record<string, unknown>);
  }

  string(value: string): string {
    const spans = detectSpans(value);
    if (spans === null) return value;
    this.detections ??= {};
    addCounts(this.detections, spans);
    if (this.policy === "drop") {
      // Keep counting the rest of the event so metrics agree across policies; the reason
      // names the first offending field only.
      this.dropReason ??= `${formatPath(this.path)} contains ${KIND_PHRASES[spans[0]!.kind]} (pii policy: drop)`;
      return value;
    }
    if (this.policy === "allow") return value;
    return spliceTokens(value, spans);
  }

  array(items: unknown[]): unknown[] {
    let copy: unknown[] | null = null;
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      this.path.push(i);
      const scrubbed = this.value(item);
      this.path.pop();
      if (scrubbed !== item) {
        copy ??= items.slice();
        copy[i] = scrubbed;
      }
    }
    return copy ?? items;
  }

  object(record: Record<string, unknown>): Record<string, unknown> {
    let copy: Record<string, unknown> | null = null;
    for (const key in record) {
      if (!Object.prototype.hasOwnProperty.call(record, key)) continue;
      const item = record[key];
      this.path.push(key);
      const scrubbed = this.value(item);
      this.path.pop();
      if (scrubbed !== item) {
        // The spread copies every key as an own data property (a parsed "__proto__" key
        // included), so the assignment below writes that property instead of the prototype.
        copy ??= { ...record };
        copy[key] = scrubbed;
      }
    }
    return copy ?? record;
  }
}

const walk = new PolicyWalk();

function formatPath(path: ReadonlyArray<string | number>): string {
  let text = "";
  for (const key of path) {
    if (typeof key === "number") text += `[${key}]`;
    else if (!IDENTIFIER.test(key)) text += `[${JSON.stringify(key)}]`;
    else text += text === "" ? key : `.${key}`;
  }
  return text;
}

function addCounts(counts: PiiCounts, spans: readonly PiiDetection[]): void {
  for (const span of spans) counts[span.kind] = (counts[span.kind] ?? 0) + 1;
}

// ---------------------------------------------------------------------------------------------
// Detection driver

const TOKENS: Record<PiiKind, string> = {
  email: "[redacted:email]",
  phone: "[redacted:phone]",
  card: "[redacted:card]",
  ip: "[redacted:ip]",
  ssn: "[redacted:ssn]",
  secret: "[redacted:secret]",
};

/** Which detection wins where two overlap: the more specific shape first. */
const PRIORITY: Record<PiiKind, number> = { secret: 0, email: 1, card: 2, ssn: 3, ip: 4, phone: 5 };

/** Redaction rounds after the first; see detectSpans. Two suffice in practice. */
const MAX_EXTRA_ROUNDS = 4;

/**
 * All detections in `text`, or null when it is clean.
 *
 * The numeric detectors reject a candidate whose surrounding run is something else, so a phone
 * number written right next to a card number ("415 555 2671 4012 8888 8888 1881") hides inside
 * one long run of digits. Redacting the card exposes it. Scanning the redacted text again until
 * nothing new appears makes redaction idempotent: what `redactString` returns scans clean. The
 * tokens themselves never match a detector, so every round covers new original characters and
 * the loop ends.
 */
function detectSpans(text: string): PiiDetection[] | null {
  let spans = scanOnce(text);
  if (spans === null) return null;
  for (let round = 0; round < MAX_EXTRA_ROUNDS; round++) {
    const exposed = scanOnce(spliceTokens(text, spans));
    if (exposed === null) break;
    spans = mergeExposed(spans, exposed);
  }
  return spans;
}

function spliceTokens(text: string, spans: readonly PiiDetection[]): string {
  let out = "";
  let from = 0;
  for (const span of spans) {
    out += text.slice(from, span.start) + TOKENS[span.kind];
    from = span.end;
  }
  return out + text.slice(from);
}

/** Adds detections found in the redacted text, translated back to positions in the original. */
function mergeExposed(spans: PiiDetection[], exposed: readonly PiiDetection[]): PiiDetection[] {
  return dropLaterOverlaps(spans.concat(toOriginalPositions(spans, exposed)).sort(byStart));
}

/**
 * Translates detections in `spliceTokens(text, spans)` to positions in `text`. Both lists are
 * sorted by start, so one sweep over the tokens serves them all.
 */
function toOriginalPositions(spans: readonly PiiDetection[], exposed: readonly PiiDetection[]): PiiDetection[] {
  let k = 0;
  let shift = 0;
  const original = (position: number, isEnd: boolean): number => {
    for (; k < spans.length; k++) {
      const span = spans[k]!;
      const tokenLength = TOKENS[span.kind].length;
      const tokenStart = span.start + shift;
      if (position <= tokenStart) break;
      // Unreachable while no detector matches token characters; snap outward to stay well-formed.
      if (position < tokenStart + tokenLength) return isEnd ? span.end : span.start;
      shift += tokenLength - (span.end - span.start);
    }
    return position - shift;
  };
  return exposed.map((span) => ({
    kind: span.kind,
    start: original(span.start, false),
    end: original(span.end, true),
  }));
}

function dropLaterOverlaps(sorted: PiiDetection[]): PiiDetection[] {
  const kept: PiiDetection[] = [];
  let end = 0;
  for (const span of sorted) {
    if (span.start < end) continue;
    kept.push(span);
    end = span.end;
  }
  return kept;
}

/** One pass of every detector whose pre-filter passes, with overlaps resolved. */
function scanOnce(text: string): PiiDetection[] | null {
  if (text.length < 3) return null;
  let found: PiiDetection[] | null = null;
  if (SECRET_HINT.test(text)) found = findSecrets(text, found);
  // Everything but a secret needs a digit, an '@' or a colon; most words and labels have none.
  if (NEEDS_PROFILE.test(text)) {
    const p = profile(text);
    if (p.ats > 0 && p.dots > 0) found = findEmails(text, found);
    if (p.digits >= 13) found = findCards(text, found);
    if (p.digits >= 9 && p.dashes >= 2) found = findSsns(text, found);
    if (p.digits >= 4 && p.dots >= 3) found = findIpv4s(text, found);
    if (p.colons >= 2) found = findIpv6s(text, found);
    if (p.digits >= 8) found = findPhones(text, found);
  }
  return found === null ? null : resolveOverlaps(found);
}

const NEEDS_PROFILE = /[0-9@:]/;

/**
 * Where detections overlap, the higher-priority one wins. Only overlapping clusters need the
 * priority pass; splitting by cluster keeps a string with thousands of detections linear.
 */
function resolveOverlaps(found: PiiDetection[]): PiiDetection[] {
  if (found.length === 1) return found;
  found.sort(byStart);
  const kept: PiiDetection[] = [];
  let clusterStart = 0;
  let clusterEnd = found[0]!.end;
  for (let i = 1; i <= found.length; i++) {
    if (i < found.length && found[i]!.start < clusterEnd) {
      clusterEnd = Math.max(clusterEnd, found[i]!.end);
      continue;
    }
    if (i - clusterStart === 1) kept.push(found[clusterStart]!);
    else for (const span of resolveCluster(found.slice(clusterStart, i))) kept.push(span);
    if (i < found.length) {
      clusterStart = i;
      clusterEnd = found[i]!.end;
    }
  }
  return kept;
}

function resolveCluster(cluster: PiiDetection[]): PiiDetection[] {
  cluster.sort(byPriority);
  const kept: PiiDetection[] = [];
  for (const span of cluster) {
    if (!overlapsAny(kept, span.start, span.end)) kept.push(span);
  }
  return kept.sort(byStart);
}

function byPriority(a: PiiDetection, b: PiiDetection): number {
  return PRIORITY[a.kind] - PRIORITY[b.kind] || a.start - b.start || b.end - a.end;
}

function byStart(a: PiiDetection, b: PiiDetection): number {
  return a.start - b.start;
}

function overlapsAny(spans: readonly PiiDetection[], start: number, end: number): boolean {
  for (const span of spans) {
    if (start < span.end && span.start < end) return true;
  }
  return false;
}

function record(found: PiiDetection[] | null, kind: PiiKind, start: number, end: number): PiiDetection[] {
  const list = found ?? [];
  list.push({ kind, start, end });
  return list;
}

// ---------------------------------------------------------------------------------------------
// Character profile (the pre-filter)

interface Profile {
  digits: number;
  ats: number;
  dots: number;
  colons: number;
  dashes: number;
}

/** Counts each detector's pre-filter needs. Reused: consumed before the next string is profiled. */
const scratchProfile: Profile = {
  digits: 0,
  ats: 0,
  dots: 0,
  colons: 0,
  dashes: 0,
};

function profile(text: string): Profile {
  const p = scratchProfile;
  p.digits = p.ats = p.dots = p.colons = p.dashes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= C_0 && c <= C_9) p.digits++;
    else if (c === C_AT) p.ats++;
    else if (c === C_DOT) p.dots++;
    else if (c === C_COLON) p.colons++;
    else if (c === C_DASH) p.dashes++;
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// Character classes

const C_0 = 48;
const C_9 = 57;
const C_UPPER_A = 65;
const C_UPPER_F = 70;
const C_UPPER_Z = 90;
const C_LOWER_A = 97;
const C_LOWER_F = 102;
const C_LOWER_Z = 122;
const C_AT = 64;
const C_DOT = 46;
const C_COMMA = 44;
const C_COLON = 58;
const C_SLASH = 47;
const C_DASH = 45;
const C_PLUS = 43;
const C_SPACE = 32;
const C_TAB = 9;
const C_UNDERSCORE = 95;
const C_LPAREN = 40;
const C_RPAREN = 41;

function isDigit(c: number): boolean {
  return c >= C_0 && c <= C_9;
}

function isHex(c: number): boolean {
  return isDigit(c) || (c >= C_LOWER_A && c <= C_LOWER_F) || (c >= C_UPPER_A && c <= C_UPPER_F);
}

function isWordChar(c: number): boolean {
  return (
    isDigit(c) || (c >= C_LOWER_A && c <= C_LOWER_Z) || (c >= C_UPPER_A && c <= C_UPPER_Z) || c === C_UNDERSCORE
  );
}

/** Characters that glue digits into one number: "3.14", "1,000", "10:30", "01/02", "1-2", "1+2". */
function isJoiner(c: number): boolean {
  return c === C_DOT || c === C_COMMA || c === C_COLON || c === C_SLASH || c === C_DASH || c === C_PLUS;
}

/** Whether a number starting at `i` stands alone rather than continuing a word or a number. */
function standsAloneBefore(text: string, i: number): boolean {
  if (i === 0) return true;
  const prev = text.charCodeAt(i - 1);
  if (isWordChar(prev)) return false;
  return !(isJoiner(prev) && i >= 2 && isDigit(text.charCodeAt(i - 2)));
}

/** Whether a number ending before `end` stands alone rather than continuing into a word or a number. */
function standsAloneAfter(text: string, end: number): boolean {
  if (end >= text.length) return true;
  const next = text.charCodeAt(end);
  if (isWordChar(next)) return false;
  return !(isJoiner(next) && end + 1 < text.length && isDigit(text.charCodeAt(end + 1)));
}

function digitAt(text: string, i: number): number {
  return text.charCodeAt(i) - C_0;
}

// ---------------------------------------------------------------------------------------------
// Secrets

const JWT = /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*/g;
const API_KEY = /(?<![A-Za-z0-9_])(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}/g;
const AWS_KEY_ID = /(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])/g;
const GITHUB_TOKEN = /(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})/g;
// The token class (RFC 6750 b64token) excludes whitespace and '=', so every quantifier here
// stops at a character the next one cannot take: no backtracking blow-up.
const BEARER = /(?<![A-Za-z0-9])[Bb]earer[ \t]+[A-Za-z0-9\-._~+\/]{8,}=*/g;
const BEARER_WORD_LENGTH = "Bearer".length;

/**
 * The literal every secret shape starts with, as one pattern: a single native scan is cheaper
 * than one `includes` per shape, and almost no string passes it.
 */
const SECRET_HINT = /eyJ|_(?:live|test)_|AKIA|ASIA|gh[pousr]_|github_pat_|[Bb]earer[ \t]/;

function findSecrets(text: string, found: PiiDetection[] | null): PiiDetection[] | null {
  found = findAll(JWT, text, "secret", found);
  found = findAll(API_KEY, text, "secret", found);
  found = findAll(AWS_KEY_ID, text, "secret", found);
  found = findAll(GITHUB_TOKEN, text, "secret", found);
  return findBearerTokens(text, found);
}

function findAll(re: RegExp, text: string, kind: PiiKind, found: PiiDetection[] | null): PiiDetection[] | null {
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    found = record(found, kind, m.index, m.index + m[0].length);
  }
  return found;
}

function findBearerTokens(text: string, found: PiiDetection[] | null): PiiDetection[] | null {
  BEARER.lastIndex = 0;
  for (let m = BEARER.exec(text); m !== null; m = BEARER.exec(text)) {
    let end = m.index + m[0].length;
    // A sentence's full stop is not part of the token.
    while (text.charCodeAt(end - 1) === C_DOT) end--;
    if (looksLikeToken(text, m.index + BEARER_WORD_LENGTH, end)) found = record(found, "secret", m.index, end);
  }
  return found;
}

/**
 * Tells "Bearer eyJhbGc..." from "bearer responsibilities": random tokens carry digits, or at
 * least mix cases over a good length; English words do neither.
 */
function looksLikeToken(text: string, start: number, end: number): boolean {
  let skip = start;
  while (text.charCodeAt(skip) === C_SPACE || text.charCodeAt(skip) === C_TAB) skip++;
  if (end - skip < 8) return false;
  let upper = false;
  let lower = false;
  for (let i = skip; i < end; i++) {
    const c = text.charCodeAt(i);
    if (isDigit(c)) return true;
    if (c >= C_UPPER_A && c <= C_UPPER_Z) upper = true;
    else if (c >= C_LOWER_A && c <= C_LOWER_Z) lower = true;
  }
  return end - skip >= 20 && upper && lower;
}

// ---------------------------------------------------------------------------------------------
// Email

// Local part: starts where the local-part characters start (the lookbehind), so each run is
// tried once. Domain labels exclude '.', so each label boundary is fixed: linear matching.
// The trailing guard keeps a sentence's full stop out and refuses to stop mid-domain.
const EMAIL =
  /(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-]|\.[A-Za-z0-9])/g;

// "icon@2x.png" is an image name (retina asset suffix), not an address.
const RETINA_ASSET_DOMAIN = /^\d+x\./;

function findEmails(text: string, found: PiiDetection[] | null): PiiDetection[] | null {
  EMAIL.lastIndex = 0;
  for (let m = EMAIL.exec(text); m !== null; m = EMAIL.exec(text)) {
    const domain = m[0].slice(m[0].indexOf("@") + 1);
    if (RETINA_ASSET_DOMAIN.test(domain)) continue;
    found = record(found, "email", m.index, m.index + m[0].length);
  }
  return found;
}

// ---------------------------------------------------------------------------------------------
// Payment cards

const MAX_CARD_GROUPS = 32;
/** Start and end of each digit group of the run being examined (reused: no allocation). */
const groupStart = new Int32Array(MAX_CARD_GROUPS);
const groupEnd = new Int32Array(MAX_CARD_GROUPS);

/**
 * Cards are written bare ("4111111111111111") or in groups of digits separated by single spaces
 * or dashes ("4111 1111 1111 1111", Amex "3782 822463 10005"). The scan reads a whole run of
 * such groups, then looks for cards at group boundaries inside it, so an expiry date or a
 * reference number written next to the card does not hide it.
 */
function findCards(text: string, found: PiiDetection[] | null): PiiDetection[] | null {
  const n = text.length;
  let i = 0;
  while (i < n) {
    if (!isDigit(text.charCodeAt(i))) {
      i++;
      continue;
    }
    const groups = readCardRun(text, i);
    const runEnd = groupEnd[groups - 1]!;
    const startOk = standsAloneBefore(text, i);
    const endOk = standsAloneAfter(text, runEnd);
    found = findCardsInRun(text, groups, startOk, endOk, found);
    i = runEnd;
  }
  return found;
}

/** Fills groupStart/groupEnd for the run starting at `i`; returns the number of groups. */
function readCardRun(text: string, i: number): number {
  let groups = 0;
  let pos = i;
  for (;;) {
    const start = pos;
    while (pos < text.length && isDigit(text.charCodeAt(pos))) pos++;
    groupStart[groups] = start;
    groupEnd[groups] = pos;
    groups++;
    const sep = text.charCodeAt(pos);
    if (groups === MAX_CARD_GROUPS || (sep !== C_SPACE && sep !== C_DASH) || !isDigit(text.charCodeAt(pos + 1))) {
      return groups;
    }
    pos++;
  }
}

/**
 * Picks cards from the run right to left: a card is usually the last number written
 * ("ref 1234 4111 1111 1111 1111", "415 555 2671 4111 1111 1111 1111"), and reading from the
 * left could pair a leading group with the card's first groups when that happens to pass Luhn.
 */
function findCardsInRun(
  text: string,
  groups: number,
  startOk: boolean,
  endOk: boolean,
  found: PiiDetection[] | null,
): PiiDetection[] | null {
  const last = groups - 1;
  /** Exclusive bound on the groups a card may use: the start of the card found to the right. */
  let limit = groups;
  for (let first = last; first >= 0; first--) {
    if (first === 0 && !startOk) break;
    const best = longestCardFrom(text, first, limit, last, endOk);
    if (best >= 0) {
      found = record(found, "card", groupStart[first]!, groupEnd[best]!);
      limit = first;
    }
  }
  return found;
}

/** The last group of the longest card that starts at group `first` and ends before `limit`, or -1. */
function longestCardFrom(text: string, first: number, limit: number, last: number, endOk: boolean): number {
  const firstLength = groupEnd[first]! - groupStart[first]!;
  if (firstLength >= 13 && firstLength <= 19) {
    // A bare number is a card only as a whole.
    return (first < last || endOk) && isCardNumber(text, groupStart[first]!, groupEnd[first]!) ? first : -1;
  }
  // Grouped cards open with four digits; later groups hold three to seven.
  if (firstLength !== 4) return -1;
  let best = -1;
  let digits = 4;
  for (let g = first; g < limit; g++) {
    if (g > first) {
      const length = groupEnd[g]! - groupStart[g]!;
      if (length < 3 || length > 7) break;
      digits += length;
    }
    if (digits > 19) break;
    if (digits >= 13 && (g < last || endOk) && isCardNumber(text, groupStart[first]!, groupEnd[g]!)) best = g;
  }
  return best;
}

/**
 * Luhn over the digits in [start, end), plus the major-industry digit: every card network
 * (Mastercard 2/5, Amex/Diners/JCB 3, Visa 4, Discover/UnionPay/Maestro 6) starts with 2-6.
 * That check keeps epoch milliseconds and snowflake ids, which start with 1, from being
 * taken for cards one time in ten.
 */
function isCardNumber(text: string, start: number, end: number): boolean {
  const industry = digitAt(text, start);
  if (industry < 2 || industry > 6) return false;
  let sum = 0;
  let double = false;
  for (let i = end - 1; i >= start; i--) {
    const c = text.charCodeAt(i);
    if (!isDigit(c)) continue;
    let d = c - C_0;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

// ---------------------------------------------------------------------------------------------
// US social security numbers

const SSN = /\b\d{3}-\d{2}-\d{4}\b/g;

function findSsns(text: string, found: PiiDetection[] | null): PiiDetection[] | null {
  SSN.lastIndex = 0;
  for (let m = SSN.exec(text); m !== null; m = SSN.exec(text)) {
    const start = m.index;
    const end = start + 11;
    if (!standsAloneBefore(text, start) || !standsAloneAfter(text, end)) continue;
    if (isValidSsn(text, start)) found = record(found, "ssn", start, end);
  }
  return found;
}

/** The SSA never issues area 000, 666 or 900-999, group 00, or serial 0000. */
function isValidSsn(text: string, start: number): boolean {
  const area = digitAt(text, start) * 100 + digitAt(text, start + 1) * 10 + digitAt(text, start + 2);
  const group = digitAt(text, start + 4) * 10 + digitAt(text, start + 5);
  const serial = Number(text.slice(start + 7, start + 11));
  return area !== 0 && area !== 666 && area < 900 && group !== 0 && serial !== 0;
}

// ---------------------------------------------------------------------------------------------
// IP addresses

const OCTET = "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
// Not inside a word, not a part of a longer dotted number ("1.2.3.4.5", "v1.2.3.4"), and not
// the version of a product token: user agents carry "Chrome/121.0.0.0".
const IPV4 = new RegExp(`(?<!\\w|\\d\\.|[A-Za-z]/)${OCTET}(?:\\.${OCTET}){3}(?!\\w|\\.\\d)`, "g");

function findIpv4s(text: string, found: PiiDetection[] | null): PiiDetection[] | null {
  return findAll(IPV4, text, "ip", found);
}

/**
 * IPv6 candidates are maximal runs of hex digits, colons and dots (for an embedded IPv4 tail)
 * around each colon, validated by a parser rather than the usual page-long regex.
 */
function findIpv6s(text: string, found: PiiDetection[] | null): PiiDetection[] | null {
  let from = 0;
  for (;;) {
    const colon = text.indexOf(":", from);
    if (colon === -1) return found;
    let start = colon;
    while (start > 0 && isIpv6Char(text.charCodeAt(start - 1))) start--;
    let end = colon + 1;
    while (end < text.length && isIpv6Char(text.charCodeAt(end))) end++;
    from = end;
    while (text.charCodeAt(start) === C_DOT) start++;
    while (end > start && text.charCodeAt(end - 1) === C_DOT) end--;
    // "std::vector": a run glued to other letters is part of a word, not an address.
    if (start > 0 && isWordChar(text.charCodeAt(start - 1))) continue;
    if (end < text.length && isWordChar(text.charCodeAt(end))) continue;
    if (isIpv6(text, start, end)) found = record(found, "ip", start, end);
  }
}

function isIpv6Char(c: number): boolean {
  return isHex(c) || c === C_COLON || c === C_DOT;
}

/** RFC 4291 text form: eight 1-4 hex digit groups, one "::" elision, optional IPv4 tail. */
function isIpv6(text: string, start: number, end: number): boolean {
  let groups = 0;
  let elided = false;
  let hasDigit = false;
  let i = start;
  if (text.charCodeAt(i) === C_COLON) {
    if (text.charCodeAt(i + 1) !== C_COLON) return false;
    elided = true;
    i += 2;
  }
  while (i < end) {
    let j = i;
    while (j < end && isHex(text.charCodeAt(j))) {
      if (isDigit(text.charCodeAt(j))) hasDigit = true;
      j++;
    }
    if (j < end && text.charCodeAt(j) === C_DOT) {
      if (!isIpv4(text, i, end)) return false;
      groups += 2;
      hasDigit = true;
      break;
    }
    if (j - i < 1 || j - i > 4) return false;
    groups++;
    if (j === end) break;
    // text[j] is ':'
    if (text.charCodeAt(j + 1) === C_COLON) {
      if (elided) return false;
      elided = true;
      i = j + 2;
    } else {
      i = j + 1;
      if (i === end) return false;
    }
  }
  if (elided) {
    // Prose like "a::b" or "be::ad" has the shape of an elided address but no digits.
    return groups <= 7 && hasDigit;
  }
  return groups === 8;
}

/** Dotted quad in exactly [start, end): four octets 0-255, no leading zeros. */
function isIpv4(text: string, start: number, end: number): boolean {
  let octets = 0;
  let i = start;
  while (octets < 4) {
    let value = 0;
    let length = 0;
    while (i < end && isDigit(text.charCodeAt(i))) {
      value = value * 10 + digitAt(text, i);
      length++;
      i++;
    }
    if (length === 0 || length > 3 || value > 255) return false;
    if (length > 1 && digitAt(text, i - length) === 0) return false;
    octets++;
    if (octets < 4) {
      if (text.charCodeAt(i) !== C_DOT) return false;
      i++;
    }
  }
  return i === end;
}

// ---------------------------------------------------------------------------------------------
// Phone numbers

/** What the last `readPhoneRun` saw; reused so a rejected candidate allocates nothing. */
const phoneRun = {
  end: 0,
  plus: false,
  groups: 0,
  digits: 0,
  firstDigit: 0,
  /** Index of the group written in parentheses, or -1. */
  parenGroup: -1,
  /** Lengths and starts of the first four groups: all any accepted shape needs. */
  lengths: [0, 0, 0, 0],
  starts: [0, 0, 0, 0],
};

/**
 * A candidate is the whole run of digits, parentheses and single separators around it, judged
 * as one: "2024-01-15", "10.2.3", "123e4567-e89b-..." and bare digit strings never match an
 * accepted shape, and a shorter number is never carved out of a longer run.
 */
function findPhones(text: string, found: PiiDetection[] | null): PiiDetection[] | null {
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (!(isDigit(c) || c === C_PLUS || c === C_LPAREN) || !standsAloneBefore(text, i)) {
      i++;
      continue;
    }
    readPhoneRun(text, i);
    const r = phoneRun;
    if (r.groups > 0 && standsAloneAfter(text, r.end) && !followedByTime(text, r.end) && isPhoneShape(text)) {
      found = record(found, "phone", i, r.end);
    }
    i = Math.max(i + 1, r.end);
  }
  return found;
}

/** "2024-01-15 10:30" reads as a run ending at "10"; the colon after it makes it a time. */
function followedByTime(text: string, end: number): boolean {
  return text.charCodeAt(end) === C_COLON && isDigit(text.charCodeAt(end + 1));
}

function isPhoneSeparator(c: number): boolean {
  return c === C_SPACE || c === C_DASH || c === C_DOT;
}

/**
 * Reads groups of digits from `start`. Without a leading '+', the separator between plain
 * groups must not change ("415-555-2671"), so "415-555-2671 2 times" ends before " 2";
 * separators next to a parenthesised group are free ("(415) 555-2671", "1 (415) 555-2671").
 */
function readPhoneRun(text: string, start: number): void {
  const r = phoneRun;
  r.plus = text.charCodeAt(start) === C_PLUS;
  r.groups = 0;
  r.digits = 0;
  r.parenGroup = -1;
  r.end = start;
  let pos = r.plus ? start + 1 : start;
  let separator = 0;
  for (;;) {
    const c = text.charCodeAt(pos);
    if (c === C_LPAREN) {
      if (r.parenGroup !== -1) return;
      let close = pos + 1;
      while (isDigit(text.charCodeAt(close))) close++;
      const length = close - pos - 1;
      if (length < 1 || length > 5 || text.charCodeAt(close) !== C_RPAREN) return;
      r.parenGroup = r.groups;
      addPhoneGroup(pos + 1, close);
      pos = close + 1;
      r.end = pos;
      const next = text.charCodeAt(pos);
      if (isDigit(next)) continue;
      if (isPhoneSeparator(next) && isDigit(text.charCodeAt(pos + 1))) {
        pos++;
        continue;
      }
      return;
    }
    if (!isDigit(c)) return;
    const groupStartPos = pos;
    while (isDigit(text.charCodeAt(pos))) pos++;
    addPhoneGroup(groupStartPos, pos);
    r.end = pos;
    const sep = text.charCodeAt(pos);
    const next = text.charCodeAt(pos + 1);
    if (sep === C_LPAREN && r.plus) continue;
    if (!isPhoneSeparator(sep)) return;
    if (next === C_LPAREN && sep === C_SPACE) {
      pos++;
      continue;
    }
    if (!isDigit(next)) return;
    if (!r.plus) {
      if (separator === 0) separator = sep;
      else if (separator !== sep) return;
    }
    pos++;
  }
}

function addPhoneGroup(start: number, end: number): void {
  const r = phoneRun;
  if (r.groups === 0) r.firstDigit = start;
  if (r.groups < 4) {
    r.lengths[r.groups] = end - start;
    r.starts[r.groups] = start;
  }
  r.groups++;
  r.digits += end - start;
}

function isPhoneShape(text: string): boolean {
  const r = phoneRun;
  if (r.digits < 8) return false;
  const first = digitAt(text, r.firstDigit);
  // E.164: country codes never start with 0.
  if (r.plus) return r.digits <= 15 && first !== 0;
  // A bare run of digits is an id, a timestamp or an amount far more often than a phone number.
  if (r.groups < 2) return false;
  const second = digitAt(text, r.firstDigit + 1);
  if (first === 0 && second === 0) return isInternationalDialled(text);
  if (first === 0) return isTrunkPrefixed();
  return isNanp(text);
}

/** "0044 20 7946 0958": the 00 international prefix stands in for '+'. */
function isInternationalDialled(text: string): boolean {
  const r = phoneRun;
  return r.digits - 2 >= 8 && r.digits - 2 <= 15 && digitAt(text, r.firstDigit + 2) !== 0;
}

/** National numbers with a 0 trunk prefix: "020 7946 0958", "06 12 34 56 78", "(030) 1234567". */
function isTrunkPrefixed(): boolean {
  const r = phoneRun;
  return (
    r.digits >= 10 &&
    r.digits <= 11 &&
    r.lengths[0]! >= 2 &&
    r.lengths[0]! <= 5 &&
    (r.parenGroup === -1 || r.parenGroup === 0)
  );
}

/** North American numbering: "415-555-2671", "(415) 555-2671", "1 415 555 2671". */
function isNanp(text: string): boolean {
  const r = phoneRun;
  let area: number;
  if (r.groups === 3 && r.digits === 10) {
    if (r.parenGroup > 0) return false;
    area = 0;
  } else if (r.groups === 4 && r.digits === 11 && r.lengths[0] === 1 && digitAt(text, r.firstDigit) === 1) {
    if (r.parenGroup !== -1 && r.parenGroup !== 1) return false;
    area = 1;
  } else {
    return false;
  }
  if (r.lengths[area] !== 3 || r.lengths[area + 1] !== 3 || r.lengths[area + 2] !== 4) return false;
  // Area codes and exchanges never start with 0 or 1.
  return digitAt(text, r.starts[area]!) >= 2 && digitAt(text, r.starts[area + 1]!) >= 2;
}

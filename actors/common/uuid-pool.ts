/**
 * Random (version 4) UUIDs for server-assigned event ids, cheaper than `crypto.randomUUID`.
 *
 * Every event sent without an id gets one, so this runs once per event on the hot path. Node's
 * `randomUUID` refills its entropy every 128 ids and joins each id from 20 string pieces, which
 * the first read of the id (hashing, writing the row) then flattens: ~0.4–0.55 µs per id here,
 * 3.6% of the node's samples in a profile of bench scenario (a). This pool draws 16 KiB of
 * entropy at a time from the same CSPRNG (`randomFillSync`), formats all 1,024 ids of it as
 * ASCII in one pass, and hands each out as one flat string decoded from that buffer: ~0.13 µs
 * per id including a read (micro-bench in bench/README.md, fifth round).
 *
 * The ids are as unpredictable as `randomUUID`'s (122 random bits from the CSPRNG; version and
 * variant bits set per RFC 9562). Each process (and worker thread) has its own pool.
 */
import { randomFillSync } from "node:crypto";

const IDS_PER_REFILL = 1024;
const UUID_BYTES = 16;
const UUID_TEXT_LENGTH = 36;

const HEX_DIGITS = Buffer.from("0123456789abcdef", "latin1");
const HYPHEN = 0x2d;

const entropy = Buffer.allocUnsafe(IDS_PER_REFILL * UUID_BYTES);
const text = Buffer.allocUnsafe(IDS_PER_REFILL * UUID_TEXT_LENGTH);
/** Index of the next unused id in `text`; IDS_PER_REFILL when the pool is spent. */
let nextId = IDS_PER_REFILL;

/** Formats `bytes` (16) as the canonical lower-case UUID text at `at` in `out`. */
export function formatUuid(bytes: Uint8Array, from: number, out: Buffer, at: number): void {
  let t = at;
  for (let i = 0; i < UUID_BYTES; i++) {
    const byte = bytes[from + i]!;
    out[t++] = HEX_DIGITS[byte >> 4]!;
    out[t++] = HEX_DIGITS[byte & 0x0f]!;
    // 8-4-4-4-12
    if (i === 3 || i === 5 || i === 7 || i === 9) out[t++] = HYPHEN;
  }
}

function refill(): void {
  randomFillSync(entropy);
  for (let id = 0; id < IDS_PER_REFILL; id++) {
    const from = id * UUID_BYTES;
    entropy[from + 6] = (entropy[from + 6]! & 0x0f) | 0x40; // version 4
    entropy[from + 8] = (entropy[from + 8]! & 0x3f) | 0x80; // variant 10xx
    formatUuid(entropy, from, text, id * UUID_TEXT_LENGTH);
  }
  // The entropy is spent: nothing keeps it beyond the text.
  entropy.fill(0);
  nextId = 0;
}

/** A new random version 4 UUID, lower case, as `crypto.randomUUID()` returns. */
export function randomUuid(): string {
  if (nextId === IDS_PER_REFILL) refill();
  const start = nextId++ * UUID_TEXT_LENGTH;
  return text.toString("latin1", start, start + UUID_TEXT_LENGTH);
}

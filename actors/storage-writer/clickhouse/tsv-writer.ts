/**
 * Writes TabSeparated fields straight into Buffers, byte for byte what `tsvField` plus UTF-8
 * encoding of the joined line would give, without building the line as a string first.
 *
 * Why: a batch of 20,000 rows formatted as strings allocated about 1 KiB per row (the line's
 * concatenation tree, then its flat copy for encoding), which made the scavenger run more often
 * while tens of thousands of events are in flight and must be copied at every run. Here a row
 * allocates only its properties' JSON text. ASCII text (nearly every field) is copied by a loop
 * that escapes as it goes; a field with any other character takes the `tsvField` + UTF-8 path.
 */
import { tsvField } from "./sql";

const TAB = 0x09;
const NEWLINE = 0x0a;
const BACKSLASH = 0x5c;
const MINUS = 0x2d;
const ZERO = 0x30;

/** The letter after the backslash for each control character that `tsvField` escapes, else 0. */
const CONTROL_ESCAPES = new Uint8Array(32);
CONTROL_ESCAPES[0x09] = 0x74; // \t
CONTROL_ESCAPES[0x0a] = 0x6e; // \n
CONTROL_ESCAPES[0x0d] = 0x72; // \r
CONTROL_ESCAPES[0x00] = 0x30; // \0
CONTROL_ESCAPES[0x08] = 0x62; // \b
CONTROL_ESCAPES[0x0c] = 0x66; // \f

/** The most bytes `writeField` can take for a string of `length` UTF-16 units. */
export function fieldBytesBound(length: number): number {
  // An escaped ASCII character is 2 bytes; any other UTF-16 unit at most 3 in UTF-8.
  return length * 3;
}

/** The most bytes `writeInteger` can take (a sign and 16 digits, or a non-integer's text). */
export const NUMBER_BYTES_BOUND = 32;

/**
 * Writes `value` as a TabSeparated field at `offset`; returns the offset after it. The caller
 * makes sure `fieldBytesBound(value.length)` bytes are free.
 */
export function writeField(buf: Buffer, offset: number, value: string): number {
  const n = value.length;
  let at = offset;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c >= 0x80) return offset + buf.write(tsvField(value), offset, "utf8");
    if (c === BACKSLASH) {
      buf[at++] = BACKSLASH;
      buf[at++] = BACKSLASH;
    } else if (c < 0x20 && CONTROL_ESCAPES[c] !== 0) {
      buf[at++] = BACKSLASH;
      buf[at++] = CONTROL_ESCAPES[c]!;
    } else {
      buf[at++] = c;
    }
  }
  return at;
}

/**
 * Writes text that `JSON.stringify` produced as a TabSeparated field, as `writeField` would.
 * JSON text never holds a raw control character or a lone surrogate (both come out as `\u`
 * escapes), so the only byte TabSeparated must escape in it is the backslash of JSON's own
 * escapes. Text without one (most properties) is copied by one native UTF-8 write instead of
 * character by character; the rest goes through `writeField`. Same bound as `writeField`.
 */
export function writeJsonText(buf: Buffer, offset: number, json: string): number {
  if (json.indexOf("\\") !== -1) return writeField(buf, offset, json);
  return offset + buf.write(json, offset, "utf8");
}

/** Writes a number as `String(value)` would (digit by digit for safe integers, no string). */
export function writeInteger(buf: Buffer, offset: number, value: number): number {
  if (!Number.isSafeInteger(value)) return offset + buf.write(String(value), offset, "latin1");
  let at = offset;
  let rest = value;
  if (rest < 0) {
    buf[at++] = MINUS;
    rest = -rest;
  }
  if (rest < EIGHT_DIGITS) return writeSmall(buf, at, rest);
  // Epoch milliseconds have 13 digits: split into parts that int32 arithmetic handles (a safe
  // integer / 1e8 is below 2^27), instead of a floating-point division per digit.
  const high = Math.floor(rest / EIGHT_DIGITS);
  at = writeSmall(buf, at, high);
  let low = rest - high * EIGHT_DIGITS;
  for (let i = at + 7; i >= at; i--) {
    const next = (low / 10) | 0;
    buf[i] = ZERO + (low - next * 10);
    low = next;
  }
  return at + 8;
}

const EIGHT_DIGITS = 100_000_000;

/** Writes 0 <= value < 2^31 in decimal. */
function writeSmall(buf: Buffer, offset: number, value: number): number {
  let digits = 1;
  for (let t = value; t >= 10; t = (t / 10) | 0) digits++;
  let rest = value;
  for (let i = offset + digits - 1; i >= offset; i--) {
    const next = (rest / 10) | 0;
    buf[i] = ZERO + (rest - next * 10);
    rest = next;
  }
  return offset + digits;
}

export const FIELD_SEPARATOR = TAB;
export const ROW_END = NEWLINE;

/**
 * Buffers of at least `chunkBytes` filled in sequence; `reserve(n)` makes sure the next n bytes
 * fit in the current one. A row never spans two chunks, so each chunk is whole rows.
 */
export class ChunkWriter {
  readonly chunks: Buffer[] = [];
  buf: Buffer;
  offset = 0;
  private written = 0;

  constructor(private readonly chunkBytes = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(chunkBytes);
  }

  /** Bytes written so far. */
  get bytes(): number {
    return this.written + this.offset;
  }

  reserve(bytes: number): void {
    if (this.buf.length - this.offset >= bytes) return;
    this.seal();
    this.buf = Buffer.allocUnsafe(Math.max(this.chunkBytes, bytes));
  }

  /** The chunks holding everything written (the writer is done after this). */
  finish(): Buffer[] {
    this.seal();
    return this.chunks;
  }

  private seal(): void {
    if (this.offset > 0) this.chunks.push(this.buf.subarray(0, this.offset));
    this.written += this.offset;
    this.offset = 0;
  }
}

import { randomFillSync } from 'node:crypto';

let lastMs = 0;
let counter = 0;

/**
 * Random bytes are drawn 4 KiB at a time: one `randomBytes(8)` per id was 3-4% of the
 * engine's CPU under load (a syscall-backed fill and a Buffer each time).
 */
const POOL = Buffer.allocUnsafe(4096);
let poolAt = POOL.length;
/** The id being written, as ASCII: `tttttttt-tttt-7ccc-vrrr-rrrrrrrrrrrr`. */
const OUT = Buffer.from('00000000-0000-7000-8000-000000000000', 'latin1');
const DIGITS = Buffer.from('0123456789abcdef', 'latin1');
/** The millisecond whose 12 hex digits `OUT` holds (written again only when it changes). */
let outMs = -1;

/** Writes `n` as `width` hex digits ending before `end`. */
function writeHex(n: number, end: number, width: number): void {
  for (let i = 1; i <= width; i++) {
    OUT[end - i] = DIGITS[n % 16]!;
    n = Math.floor(n / 16);
  }
}

/** Writes byte `b` as two hex digits at `at`. */
function writeByte(b: number, at: number): void {
  OUT[at] = DIGITS[b >> 4]!;
  OUT[at + 1] = DIGITS[b & 15]!;
}

/**
 * A UUIDv7: time-ordered, so ids sort by creation (cursors, step order), and monotonic within
 * a process even when many are made in the same millisecond. Written as ASCII into one
 * buffer and read out as one string: built from hex pieces and slices it took ~25 strings
 * and ~850 bytes, six times a request. 48 bits of milliseconds (until the year 10889), the
 * version nibble 7 and a 12-bit counter, then 8 random bytes whose first carries the RFC 9562
 * variant (10xx xxxx).
 */
export function newId(now = Date.now()): string {
  if (now <= lastMs) {
    counter++;
    if (counter > 0xfff) {
      counter = 0;
      lastMs++;
    }
  } else {
    lastMs = now;
    counter = 0;
  }
  if (lastMs !== outMs) {
    writeHex(Math.floor(lastMs / 0x10000), 8, 8);
    writeHex(lastMs % 0x10000, 13, 4);
    outMs = lastMs;
  }
  writeHex(counter, 18, 3);
  if (poolAt + 8 > POOL.length) {
    randomFillSync(POOL);
    poolAt = 0;
  }
  writeByte((POOL[poolAt]! & 0x3f) | 0x80, 19);
  writeByte(POOL[poolAt + 1]!, 21);
  for (let i = 2; i < 8; i++) writeByte(POOL[poolAt + i]!, 20 + 2 * i);
  poolAt += 8;
  return OUT.toString('latin1', 0, 36);
}

/** True for a string shaped like the ids Conveyor makes (any UUID). */
export function isId(value: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(value);
}

import { randomFillSync } from 'node:crypto';

let lastMs = 0;
let counter = 0;

/**
 * Random bytes are drawn 4 KiB at a time: one `randomBytes(8)` per id was 3-4% of the
 * engine's CPU under load (a syscall-backed fill and a Buffer each time).
 */
const POOL = Buffer.allocUnsafe(4096);
let poolAt = POOL.length;
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** 8 random bytes as 16 hex digits, the first byte carrying the RFC 9562 variant (10xx xxxx). */
function randomTail(): string {
  if (poolAt + 8 > POOL.length) {
    randomFillSync(POOL);
    poolAt = 0;
  }
  let out = HEX[(POOL[poolAt]! & 0x3f) | 0x80]!;
  for (let i = 1; i < 8; i++) out += HEX[POOL[poolAt + i]!]!;
  poolAt += 8;
  return out;
}

/**
 * A UUIDv7: time-ordered, so ids sort by creation (cursors, step order), and monotonic within
 * a process even when many are made in the same millisecond.
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
  const hex = lastMs.toString(16).padStart(12, '0');
  const ver = (0x7000 | counter).toString(16);
  const rand = randomTail();
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${ver}-${rand.slice(0, 4)}-${rand.slice(4, 16)}`;
}

/** True for a string shaped like the ids Conveyor makes (any UUID). */
export function isId(value: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(value);
}

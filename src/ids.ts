import { randomBytes } from 'node:crypto';

let lastMs = 0;
let counter = 0;

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
  const rand = randomBytes(8);
  const hex = lastMs.toString(16).padStart(12, '0');
  const ver = (0x7000 | counter).toString(16);
  const variant = ((rand[0]! & 0x3f) | 0x80).toString(16).padStart(2, '0');
  const rest = rand.subarray(1).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${ver}-${variant}${rest.slice(0, 2)}-${rest.slice(2, 14)}`;
}

/** True for a string shaped like the ids Conveyor makes (any UUID). */
export function isId(value: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(value);
}

/**
 * The engine process's heap growth. V8 lets the old generation grow to up to four times what
 * its last full collection kept before it collects again, and on a host with memory to spare
 * it uses that room: 100,000 requests submitted at once peaked at 729 MB of RSS while the
 * live heap never passed 138 MB (a full collection every second, `--expose-gc`). With the
 * growth held to 50% the same burst peaked at 361 MB, at the same throughput
 * (docs/performance.md "Memory without flags").
 */
import { setFlagsFromString } from 'node:v8';

/** Whether `text` (a node argument, or `NODE_OPTIONS`) gives node the flag itself: then the operator's choice wins. */
export const namesHeapGrowingFlag = (text: string): boolean => /--heap[-_]growing[-_]percent\b/.test(text);

/**
 * Sets V8's heap growing factor to `1 + percent / 100` for this process (0 does nothing). A
 * `--heap-growing-percent` given to node on its command line wins. V8 reads the factor each
 * time it sizes the heap after a full collection, so setting it after start takes effect.
 * Answers whether it was set.
 */
export function applyHeapGrowing(percent: number, execArgv: readonly string[] = process.execArgv): boolean {
  if (!(percent > 0) || execArgv.some(namesHeapGrowingFlag)) return false;
  setFlagsFromString(`--heap-growing-percent=${Math.round(percent)}`);
  return true;
}

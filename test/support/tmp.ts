import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const created = new Set<string>();

/**
 * Creates a fresh, empty directory under the OS temp dir, e.g. `tmpDir('store')` →
 * `/tmp/conveyor-store-AbC123`. It is remembered for {@link cleanupTmpDirs}.
 */
export function tmpDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `conveyor-${prefix}-`));
  created.add(dir);
  return dir;
}

/** Removes one directory made by {@link tmpDir}, with its contents. Missing is fine. */
export function removeTmpDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  created.delete(dir);
}

/**
 * Removes every directory made by {@link tmpDir} in this process and not yet removed. Call it
 * from an `after`/`afterEach` hook.
 */
export function cleanupTmpDirs(): void {
  for (const dir of [...created]) removeTmpDir(dir);
}

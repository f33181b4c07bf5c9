/** Runs `conveyor` as the docs' `npx conveyor` would: a real process, from the repository's root. */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { REPO_ROOT } from '../support/engine';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `conveyor <args>` as the docs' `npx conveyor` would, from the repository's root. */
export function conveyor(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'conveyor.js'), ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, LOG_LEVEL: 'error', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

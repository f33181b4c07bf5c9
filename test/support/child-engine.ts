/**
 * A whole Conveyor (`conveyor start`) in a child process, for tests that kill it with SIGKILL
 * and start it again on the same SQLite file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { freePort } from './ports';

const ROOT = path.resolve(__dirname, '..', '..');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface ChildEngine {
  child: ChildProcess;
  url: string;
  output: string[];
}

/** Starts `node bin/conveyor.js start` on 127.0.0.1 with `env` added, and waits for /healthz. */
export async function startChildEngine(env: Record<string, string>, children: ChildProcess[]): Promise<ChildEngine> {
  const port = await freePort();
  const output: string[] = [];
  const child = spawn(process.execPath, ['bin/conveyor.js', 'start'], {
    cwd: ROOT,
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn', REDIS_URL: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  child.stdout!.on('data', (c: Buffer) => output.push(c.toString()));
  child.stderr!.on('data', (c: Buffer) => output.push(c.toString()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 45_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the engine exited:\n${output.join('')}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) return { child, url, output };
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`the engine did not listen in time:\n${output.join('')}`);
    await sleep(100);
  }
}

/** Reads a SQLite file with a short-lived read-only connection. */
export function readSqlite<T>(file: string, sql: string, params: unknown[] = []): T[] {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

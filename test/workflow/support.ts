/**
 * Helpers of the long-running workflow tests (seed 000 and 003 end to end): polling a request
 * through the API until it reaches a state, reading its persisted step log, and a small
 * webhook receiver for the admin notifier.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { expect } from 'chai';
import type { StepRunRecord } from '../../src/model';
import { REPO_ROOT, type TestEngine } from '../support/engine';
import { pollUntil } from '../support/poll';

/** A request as `GET /api/requests/:id` answers it. */
export interface RequestView {
  id: string;
  status: string;
  /** The process variables (`assign`). */
  vars: Record<string, unknown>;
  context: Record<string, unknown>;
  error: { code: string; stepId: string; message: string } | null;
  currentSteps: Array<{ stepId: string; status: string }>;
  actions: Array<{ code: string; stepId: string; label: string | null; fields: Array<{ name: string; required: boolean }> }>;
}

export { sleep } from '../support/poll';

/**
 * Makes the next engine load `pipelines/<id>.pipeline.ts` afresh. Those files read deployment
 * settings from the environment when they load (poll interval, loop bound), and Node caches a
 * module once loaded, possibly by an earlier test file with other settings.
 */
export function freshPipeline(id: string): void {
  delete require.cache[path.join(REPO_ROOT, 'pipelines', `${id}.pipeline.ts`)];
}

/** A client for one request's view, step log and actions. */
export function requestClient(t: TestEngine) {
  const get = async (id: string, key?: string): Promise<RequestView> => {
    const res = await t.api<RequestView>('GET', `/api/requests/${id}`, key ? { key } : {});
    expect(res.status, res.text).to.equal(200);
    return res.body;
  };
  /** Polls until `pred` holds; fails with where the request is stuck. */
  const until = async (id: string, pred: (v: RequestView) => boolean, ms = 8000): Promise<RequestView> => {
    return pollUntil(() => get(id), pred, { timeoutMs: ms, everyMs: 30, failure: (v) => `request ${id} stuck at ${v.status} ${JSON.stringify(v.currentSteps)} ${JSON.stringify(v.error)}` });
  };
  /** Until the request waits at `stepId` (an action or a wait step). */
  const waitingAt = (id: string, stepId: string, ms?: number): Promise<RequestView> =>
    until(id, (v) => v.status === 'waiting' && v.currentSteps.some((s) => s.stepId === stepId) && v.currentSteps.every((s) => s.status !== 'dispatched' || s.stepId === stepId), ms);
  const runs = (id: string): Promise<StepRunRecord[]> => t.engine.store.listStepRuns(id);
  /**
   * The persisted step log as `stepId:status`, in order. The runs of one polling wait step
   * (one per poll) are folded into one entry with the last run's status, so a route reads the
   * same however many polls it took.
   */
  const log = async (id: string): Promise<string[]> => {
    const out: string[] = [];
    let prev: StepRunRecord | undefined;
    for (const r of await runs(id)) {
      if (prev && r.kind === 'wait' && prev.stepId === r.stepId) out[out.length - 1] = `${r.stepId}:${r.status}`;
      else out.push(`${r.stepId}:${r.status}`);
      prev = r;
    }
    return out;
  };
  const act = (id: string, code: string, key: string, data?: Record<string, unknown>) =>
    t.api<RequestView & { error?: { code: string; message: string } }>('POST', `/api/requests/${id}/actions/${code}`, { key, body: data ? { data } : {} });
  const audit = async (id: string): Promise<string[]> => {
    const res = await t.api<{ items: Array<{ action: string; outcome: string; actor: string }> }>('GET', `/api/requests/${id}/audit`);
    return res.body.items.map((a) => `${a.actor} ${a.action}:${a.outcome}`);
  };
  return { get, until, waitingAt, runs, log, act, audit };
}

/** A webhook receiver: records every JSON body; the first `failFirst` calls answer 500. */
export interface HookServer {
  url: string;
  bodies: unknown[];
  calls: number;
  failFirst: number;
  close(): Promise<void>;
}

export async function startHookServer(failFirst = 0): Promise<HookServer> {
  const hook: HookServer = { url: '', bodies: [], calls: 0, failFirst, close: async () => {} };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      hook.calls++;
      if (hook.calls <= hook.failFirst) {
        res.writeHead(500).end();
        return;
      }
      hook.bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null'));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  hook.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  hook.close = () => new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
  return hook;
}

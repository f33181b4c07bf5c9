/**
 * An engine over the ops fixtures (`test/ops/fixtures`): pipeline `orders` (a check with
 * retries, then a standard or an express branch) and pipeline `greet` (one step), plus a
 * helper that submits a known mix of requests and waits for each to end.
 */
import * as path from 'node:path';
import { startTestEngine, type TestEngine, type TestEngineOptions } from '../support/engine';

export const FIXTURES = path.join(__dirname, 'fixtures');
/** The value of the secret the `orders` pipeline sends as `apiToken`; it must never be shown. */
export const OPS_SECRET = 'ops-secret-value-0123456789';

/** Starts an engine on the ops fixtures. */
export function startOpsEngine(opts: TestEngineOptions = {}): Promise<TestEngine> {
  return startTestEngine({
    pipelinesDir: path.join(FIXTURES, 'pipelines'),
    modulesDir: path.join(FIXTURES, 'modules'),
    ...opts,
    env: { OPS_TEST_TOKEN: OPS_SECRET, ...opts.env },
  });
}

/** What {@link submitMix} submitted, by kind, in submission order. */
export interface Mix {
  greet: string[];
  standard: string[];
  express: string[];
  flaky: string[];
  failed: string[];
  test: string[];
  all: string[];
}

/** Submits a fixed mix of requests and waits for every one of them to end. */
export async function submitMix(t: TestEngine): Promise<Mix> {
  const mix: Mix = { greet: [], standard: [], express: [], flaky: [], failed: [], test: [], all: [] };
  const submit = async (kind: keyof Omit<Mix, 'all'>, pipeline: string, body: unknown, query = '', businessKey?: string): Promise<void> => {
    const res = await t.api<{ id: string; status: string }>('POST', `/api/pipelines/${pipeline}/requests?wait=10${query}`, {
      body,
      headers: businessKey ? { 'x-business-key': businessKey } : {},
    });
    if (res.status !== 200) throw new Error(`submit ${kind} answered ${res.status}: ${res.text}`);
    mix[kind].push(res.body.id);
    mix.all.push(res.body.id);
  };
  for (let i = 0; i < 3; i++) await submit('greet', 'greet', { n: i }, '', `cust-${i}`);
  for (let i = 0; i < 3; i++) await submit('standard', 'orders', { sku: `sku-${i}` }, '', `order-${i}`);
  for (let i = 0; i < 2; i++) await submit('express', 'orders', { sku: `exp-${i}`, express: true });
  await submit('flaky', 'orders', { sku: 'flaky-1', flaky: true });
  for (let i = 0; i < 2; i++) await submit('failed', 'orders', { sku: `gone-${i}`, fail: true }, '', `order-gone-${i}`);
  await submit('test', 'orders', { sku: 'test-1' }, '&test=1');
  return mix;
}

/** Kept here too, where the suites that use it first found it. */
export { createMysqlDatabase } from '../support/mysql-db';

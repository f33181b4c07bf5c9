/**
 * Intake options and cron triggers are validated when a pipeline loads (docs/intake.md),
 * with every problem at its exact path, like the rest of the pipeline compile step.
 */
import { expect } from 'chai';
import { formatIssue } from '../../src/errors';
import { prevTick, nextTick, ticksBetween } from '../../src/pipeline/cron';
import { compilePipeline } from '../../src/pipeline/compile';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Def = Record<string, any>;
const MODULES: ReadonlySet<string> = new Set(['m']);
const tiny = (extra: Def = {}): Def => ({ id: 'x', start: 'a', steps: { a: { subsystem: 'm' } }, ...extra });
const compile = (def: Def) => compilePipeline(def, { source: 'pipelines/x', modules: MODULES });
const issuesOf = (def: Def): string[] => compile(def).issues.map(formatIssue);

describe('intake config: compile and validate', () => {
  it('compiles the options that combine with a policy, with defaults', () => {
    const { pipeline, issues } = compile(tiny({
      intake: {
        rate: { max: 10, per: '1m' }, idempotencyWindow: '7d',
        businessKey: { path: 'payload.item.sku', onConflict: 'queue' }, callbackUrl: 'https://shop.example/hooks/conveyor', maxActive: 50,
      },
    }));
    expect(issues).to.deep.equal([]);
    expect(pipeline!.intake).to.deep.equal({ kind: 'rate', max: 10, perMs: 60_000 });
    expect(pipeline!.intakeOptions).to.deep.equal({
      idempotencyWindowMs: 7 * 86_400_000,
      businessKey: { path: ['payload', 'item', 'sku'], onConflict: 'queue', reuse: 'allow', reuseWindowMs: 86_400_000 },
      callbackUrl: 'https://shop.example/hooks/conveyor',
      maxActive: 50,
    });
    expect(compile(tiny()).pipeline!.intakeOptions).to.deep.equal({ idempotencyWindowMs: 86_400_000 });
    const reused = compile(tiny({ intake: { businessKey: { path: 'payload.id', onConflict: 'reject', reuse: 'allow-after-failure', reuseWindow: '7d' } } }));
    expect(reused.pipeline!.intakeOptions!.businessKey).to.deep.equal({ path: ['payload', 'id'], onConflict: 'reject', reuse: 'allow-after-failure', reuseWindowMs: 7 * 86_400_000 });
  });

  it('compiles a schedule with its time zone, and cron triggers with their defaults', () => {
    const { pipeline, issues } = compile(tiny({
      intake: { schedule: '0 2 * * *', timezone: 'Europe/Moscow' },
      schedule: [{ cron: '0 3 * * *', payload: { kind: 'nightly', at: '{{ trigger.tick }}' } }, { id: 'hourly', cron: '0 * * * *', catchUp: 'all', timezone: 'UTC' }],
    }));
    expect(issues).to.deep.equal([]);
    expect(pipeline!.intake).to.deep.equal({ kind: 'schedule', cron: '0 2 * * *', timezone: 'Europe/Moscow' });
    expect(pipeline!.triggers).to.deep.equal([
      { id: 'trigger-0', cron: '0 3 * * *', payload: { kind: 'nightly', at: '{{ trigger.tick }}' }, catchUp: 'latest' },
      { id: 'hourly', cron: '0 * * * *', payload: {}, catchUp: 'all', timezone: 'UTC' },
    ]);
  });

  const table: Array<[string, Def, string[]]> = [
    ['an invalid cron field', tiny({ intake: { schedule: '61 * * * *' } }),
      ['pipelines/x: intake.schedule: invalid cron expression: Constraint error, got value 61 expected range 0-59 (got "61 * * * *")']],
    ['an unknown time zone', tiny({ intake: { schedule: '0 2 * * *', timezone: 'Mars/Base' } }),
      ['pipelines/x: intake.timezone: must be an IANA time zone such as "UTC" or "Europe/Moscow" (got "Mars/Base")']],
    ['a time zone without a schedule', tiny({ intake: { rate: { max: 1, per: '1s' }, timezone: 'UTC' } }),
      ['pipelines/x: intake.timezone: applies only to a schedule']],
    ['a bad business key policy and path', tiny({ intake: { businessKey: { path: 'sku', onConflict: 'wait' } } }), [
      'pipelines/x: intake.businessKey.onConflict: must be one of "reject", "queue", "return-existing" (got "wait")',
      'pipelines/x: intake.businessKey.path: must be a path into the payload such as "payload.sku" (got "sku")',
    ]],
    ['a bad reuse policy and window', tiny({ intake: { businessKey: { onConflict: 'reject', reuse: 'never', reuseWindow: 'soon' } } }), [
      'pipelines/x: intake.businessKey.reuse: must be one of "allow", "reject-duplicate", "return-existing", "allow-after-failure" (got "never")',
      'pipelines/x: intake.businessKey.reuseWindow: must be a positive duration such as "500ms", "10s", "5m", "1h", "1d" or a number of ms (got "soon")',
    ]],
    ['a business key that is not an object', tiny({ intake: { businessKey: 'payload.sku' } }),
      ['pipelines/x: intake.businessKey: must be an object with onConflict and an optional path (got "payload.sku")']],
    ['a zero idempotency window', tiny({ intake: { idempotencyWindow: 0 } }),
      ['pipelines/x: intake.idempotencyWindow: must be a positive duration such as "500ms", "10s", "5m", "1h", "1d" or a number of ms (got 0)']],
    ['a callback URL that is not http(s)', tiny({ intake: { callbackUrl: 'ftp://x/y' } }),
      ['pipelines/x: intake.callbackUrl: must be an absolute http(s) URL (got "ftp://x/y")']],
    ['a maxActive that is not a positive integer', tiny({ intake: { maxActive: 0 } }), ['pipelines/x: intake.maxActive: must be a positive integer (got 0)']],
    ['triggers that are not a list', tiny({ schedule: { cron: '* * * * *' } }),
      ['pipelines/x: schedule: must be a list of at most 20 triggers such as [{ cron: "0 3 * * *", payload: {} }] (got {"cron":"* * * * *"})']],
    ['a trigger without a cron, with a bad payload, catch-up and key', tiny({ schedule: [{ payload: [], catchUp: 'some', every: '1h' }] }), [
      'pipelines/x: schedule[0].every: unknown key "every"',
      'pipelines/x: schedule[0].cron: is required',
      'pipelines/x: schedule[0].payload: must be an object (got [])',
      'pipelines/x: schedule[0].catchUp: must be one of "latest", "all", "none" (got "some")',
    ]],
    ['two triggers with one id', tiny({ schedule: [{ id: 'n', cron: '0 3 * * *' }, { id: 'n', cron: '0 4 * * *' }] }),
      ['pipelines/x: schedule[1].id: duplicate trigger id "n"']],
  ];
  for (const [name, def, expected] of table) {
    it(`rejects ${name}`, () => expect(issuesOf(def)).to.deep.equal(expected));
  }
});

describe('cron arithmetic (cron-parser)', () => {
  const at = (iso: string) => Date.parse(iso);
  it('finds the tick at or before now, and the one after', () => {
    expect(prevTick('0 * * * *', at('2026-01-01T10:00:00Z'))).to.equal(at('2026-01-01T10:00:00Z'));
    expect(prevTick('0 * * * *', at('2026-01-01T10:59:59Z'))).to.equal(at('2026-01-01T10:00:00Z'));
    expect(nextTick('0 * * * *', at('2026-01-01T10:00:00Z'))).to.equal(at('2026-01-01T11:00:00Z'));
  });
  it('reads the cron in its time zone', () => {
    expect(nextTick('0 3 * * *', at('2025-12-31T23:00:00Z'), 'Europe/Moscow')).to.equal(at('2026-01-01T00:00:00Z'));
    expect(nextTick('0 3 * * *', at('2026-01-01T00:00:00Z'))).to.equal(at('2026-01-01T03:00:00Z'));
  });
  it('lists missed ticks oldest first, keeping the most recent ones', () => {
    expect(ticksBetween('0 * * * *', at('2026-01-01T07:30:00Z'), at('2026-01-01T10:00:00Z'), 100)).to.deep.equal(
      [at('2026-01-01T08:00:00Z'), at('2026-01-01T09:00:00Z'), at('2026-01-01T10:00:00Z')]);
    expect(ticksBetween('0 * * * *', at('2026-01-01T07:30:00Z'), at('2026-01-01T10:00:00Z'), 2)).to.deep.equal(
      [at('2026-01-01T09:00:00Z'), at('2026-01-01T10:00:00Z')]);
  });
});

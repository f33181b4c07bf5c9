/**
 * A commit's guarded units exist in two forms: `unitsScript` (a generator, driven by either
 * dialect's `script`) and `runUnits` (a plain loop, SQLite's `transaction`, issue 18
 * "Performance"). Both are driven here by the same scripted database, and must send the same
 * statements in the same order, answer the same, and refuse a broken invariant alike.
 */
import { expect } from 'chai';
import { InvariantError, runUnits, unitsScript, type GuardedUnit, type Stmt } from '../../src/store/sql-executor';

/** Answers each statement with the rows it "changed", from a table by SQL text (default 1). */
function database(changes: Record<string, number[]>): { sent: string[]; run(s: Stmt): number } {
  const left = Object.fromEntries(Object.entries(changes).map(([k, v]) => [k, [...v]]));
  const sent: string[] = [];
  return {
    sent,
    run(s: Stmt): number {
      sent.push(`${s.sql} ${JSON.stringify(s.params)}`);
      return left[s.sql]?.shift() ?? 1;
    },
  };
}

/** Drives the generator form the way `SqliteExecutor.script` does. */
function viaScript(units: GuardedUnit[], tail: (held: boolean[]) => Stmt[], run: (s: Stmt) => number): boolean[] {
  const gen = unitsScript(units, tail);
  let input: unknown;
  for (;;) {
    const step = gen.next(input);
    if (step.done) return step.value;
    expect(step.value.kind).to.equal('run');
    input = run({ sql: step.value.sql, params: step.value.params });
  }
}

const stmt = (sql: string, ...params: unknown[]): Stmt => ({ sql, params });

const UNITS: GuardedUnit[] = [
  // The cheap guard holds: the full one is not sent.
  { guardFirst: stmt('first-a', 1), guard: stmt('guard-a', 1), then: [{ ...stmt('close-a', 'x'), expectAffected: 1 }, stmt('more-a')] },
  // The cheap guard misses, the full one holds.
  { guardFirst: stmt('first-b', 2), guard: stmt('guard-b', 2), then: [{ ...stmt('close-b'), expectAffected: 1 }] },
  // Refused: its writes are not sent.
  { guard: stmt('guard-c', 3), then: [stmt('close-c')] },
  // No cheap guard, holds.
  { guard: stmt('guard-d', 4), then: [] },
];
const tail = (held: boolean[]): Stmt[] => held.map((h, i) => stmt(`tail-${i}`, h));

describe('guarded units: the script and the plain loop agree', () => {
  it('send the same statements and answer the same', () => {
    const answers = { 'first-b': [0], 'guard-c': [0] };
    const a = database(answers);
    const b = database(answers);
    const held = viaScript(UNITS, tail, (s) => a.run(s));
    expect(runUnits(UNITS, tail, (s) => b.run(s))).to.deep.equal(held);
    expect(held).to.deep.equal([true, true, false, true]);
    expect(b.sent).to.deep.equal(a.sent);
    expect(a.sent).to.deep.equal([
      'first-a [1]', 'close-a ["x"]', 'more-a []',
      'first-b [2]', 'guard-b [2]', 'close-b []',
      'guard-c [3]',
      'guard-d [4]',
      'tail-0 [true]', 'tail-1 [true]', 'tail-2 [false]', 'tail-3 [true]',
    ]);
  });

  it('both throw the same InvariantError when a write changes an unexpected number of rows', () => {
    const answers = { 'close-b': [2] };
    const a = database(answers);
    const b = database(answers);
    let fromScript: unknown;
    let fromLoop: unknown;
    try {
      viaScript(UNITS, tail, (s) => a.run(s));
    } catch (err) {
      fromScript = err;
    }
    try {
      runUnits(UNITS, tail, (s) => b.run(s));
    } catch (err) {
      fromLoop = err;
    }
    expect(fromScript).to.be.instanceOf(InvariantError);
    expect(fromLoop).to.be.instanceOf(InvariantError);
    expect((fromLoop as Error).message).to.equal((fromScript as Error).message);
    expect(b.sent).to.deep.equal(a.sent);
    expect(a.sent.at(-1)).to.equal('close-b []');
  });
});

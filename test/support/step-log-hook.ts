/**
 * A mocha root hook (loaded by `.mocharc.cjs`): every `SqlStore` the test process closes is
 * first checked against the step log's invariants (`step-log.ts`), so the whole suite's rows
 * are covered, on each database a test used, just before that database goes away. The run
 * fails at the end if any row broke a rule, naming the rows.
 *
 * Stores closed by child processes (multi-process tests) are covered when the test opens
 * the same database itself, as those tests do to check what was written.
 */
import { SqlStore } from '../../src/store/store';
import { countStepRows, findStepLogViolations, type StepLogViolation } from './step-log';

const found: Array<StepLogViolation & { dialect: string }> = [];
const seen = { stores: 0, rows: 0 };
const close = SqlStore.prototype.close;

SqlStore.prototype.close = async function closeChecked(this: SqlStore): Promise<void> {
  try {
    const violations = await findStepLogViolations(this);
    seen.stores++;
    seen.rows += await countStepRows(this);
    found.push(...violations.map((v) => ({ ...v, dialect: this.dialect })));
  } catch {
    // Closed already, or a database without the step tables (a migration test): nothing to check.
  }
  return close.call(this);
};

export const mochaHooks = {
  afterAll(): void {
    if (process.env.CONVEYOR_STEP_LOG_REPORT) console.log(`step log check: ${seen.rows} step rows in ${seen.stores} stores`);
    if (found.length > 0) {
      throw new Error(`the step log broke its invariants in ${found.length} row(s):\n${found.map((v) => `${v.dialect} ${v.table} ${JSON.stringify(v.row)}`).join('\n')}`);
    }
  },
};

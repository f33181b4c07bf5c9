/**
 * A bench child process: runs the one scenario or baseline given as JSON in argv[2] and
 * prints its result after {@link RESULT_MARKER}. `scripts/bench/index.ts` starts one per
 * measurement, so every peak RSS is that scenario's own.
 */
import { runBullChain, runMysqlRaw, runSqliteRaw } from './baselines';
import { report, type Result, type Spec } from './common';
import { runEngineScenario } from './engine-scenario';

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '') as Spec;
  let result: Result;
  switch (spec.kind) {
    case 'engine':
      result = await runEngineScenario(spec);
      break;
    case 'bull-chain':
      result = await runBullChain(spec);
      break;
    case 'sqlite-raw':
      result = runSqliteRaw(spec);
      break;
    case 'mysql-raw':
      result = await runMysqlRaw(spec);
      break;
  }
  report(result);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error((err as Error).stack ?? String(err));
    process.exit(1);
  },
);

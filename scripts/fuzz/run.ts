/**
 * The hostile-input fuzzer from the command line (see `fuzz.ts`):
 *
 *   npm run fuzz                                       # seed from the clock, 3,000 cases or 60 s
 *   npx tsx scripts/fuzz/run.ts --seed 42 --iterations 500 [--seconds 30] [--routes submit,bulk]
 *
 * Prints the distribution of routes, families, statuses and codes, and every failure; exits 1
 * on any. A failure names its seed and case number, so `--seed S` reproduces it.
 */
import { formatReport, runFuzz, startFuzzServer } from './fuzz';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0) return process.argv[i + 1];
  return process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

async function main(): Promise<number> {
  const seed = Number(arg('seed') ?? Date.now() % 1_000_000);
  const iterations = Number(arg('iterations') ?? 3000);
  const seconds = Number(arg('seconds') ?? 60);
  if (![seed, iterations, seconds].every((n) => Number.isInteger(n) && n >= 0)) {
    process.stderr.write('usage: fuzz [--seed N] [--iterations N] [--seconds N] [--routes a,b]\n');
    return 2;
  }
  const routes = arg('routes')?.split(',').filter(Boolean);
  const server = await startFuzzServer();
  try {
    const report = await runFuzz(server, { seed, iterations, seconds, routes, log: (l) => process.stdout.write(`${l}\n`) });
    process.stdout.write(`${formatReport(report)}\n`);
    return report.failures.length === 0 && report.polluted.length === 0 ? 0 : 1;
  } finally {
    await server.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`fuzz: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);

/**
 * The crash campaign from the command line (see `campaign.ts`):
 *
 *   npm run chaos            # distributed: 1 api + 2 engines + 2 workers, MariaDB + Redis
 *   npm run chaos:sqlite     # one `conveyor start` process on SQLite
 *   npx tsx scripts/chaos/run.ts --mode sqlite --requests 2000 --kills 5 [--rate 60]
 *       [--concurrency 32] [--up-min 1000] [--up-max 5000] [--drain 180] [--json out.json] [--keep]
 *
 * Prints the counts and exits 1 on any violation. MariaDB and Redis come from
 * `TEST_MYSQL_URL` / `TEST_REDIS_URL` or `.tmp/services.env`, as for the tests.
 */
import * as fs from 'node:fs';
import { formatSummary, runCampaign, type CampaignMode } from './campaign';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0) return process.argv[i + 1];
  return process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

function numberArg(name: string, fallback: number, min: number): number {
  const raw = arg(name);
  const n = raw === undefined ? fallback : Number(raw);
  if (!Number.isFinite(n) || n < min) {
    process.stderr.write(`chaos: --${name} must be a number >= ${min} (got ${raw})\n`);
    process.exit(2);
  }
  return n;
}

const mode = (arg('mode') ?? 'distributed') as CampaignMode;
if (mode !== 'sqlite' && mode !== 'distributed') {
  process.stderr.write('usage: chaos --mode sqlite|distributed [--requests N] [--kills N] [--rate N] [--json file] [--keep]\n');
  process.exit(2);
}

runCampaign({
  mode,
  requests: numberArg('requests', 10_000, 10),
  kills: numberArg('kills', 20, 0),
  rate: numberArg('rate', 60, 0),
  concurrency: numberArg('concurrency', 32, 1),
  upMinMs: numberArg('up-min', 1000, 0),
  upMaxMs: numberArg('up-max', 5000, 0),
  drainTimeoutMs: numberArg('drain', 180, 1) * 1000,
  keep: process.argv.includes('--keep'),
  log: (line) => process.stdout.write(`${line}\n`),
}).then(
  (s) => {
    process.stdout.write(`${formatSummary(s)}\n`);
    const json = arg('json');
    if (json) fs.writeFileSync(json, `${JSON.stringify(s, null, 2)}\n`);
    process.exit(s.violations.length === 0 ? 0 : 1);
  },
  (err: unknown) => {
    process.stderr.write(`chaos: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);

'use strict';
/**
 * Mocha config. TypeScript is loaded through tsx's CommonJS hook (the package is CommonJS).
 *
 * Running a subset: `npm test -- test/unit/foo.test.ts`. Mocha merges `spec` from this file
 * with file arguments given on the command line, which would run the whole suite anyway, so
 * the default `spec` is only set when no test file or directory was named on the command
 * line. `npx mocha test/unit/foo.test.ts` works the same way.
 */
const fs = require('node:fs');

const DEFAULT_SPEC = ['test/**/*.test.ts'];

/** Whether an argument names test files: an existing path, or a glob ending in `.ts`. */
function namesTestFiles(arg) {
  if (arg.startsWith('-')) return false;
  if (/[*?{[]/.test(arg)) return /\.ts$/.test(arg);
  return fs.existsSync(arg) && (/\.ts$/.test(arg) || fs.statSync(arg).isDirectory());
}

const cliNamesFiles = process.argv.slice(2).some(namesTestFiles);

module.exports = {
  require: ['tsx/cjs', './test/support/outbound-env.cjs', './test/support/step-log-hook.ts'],
  extension: ['ts'],
  ...(cliNamesFiles ? {} : { spec: DEFAULT_SPEC }),
  recursive: true,
  timeout: 20000,
  'fail-zero': true,
  exit: true,
  reporter: './test/support/reporter.cjs',
};

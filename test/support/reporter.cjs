'use strict';
/**
 * Mocha reporter: the spec reporter's usual output, then one machine-readable line
 * `N passed, N failed, N skipped` alone on the last line, so CI and scripts can grep a
 * summary without parsing spec output. Failures still make mocha exit non-zero: the exit
 * code comes from the runner, not from this reporter.
 */
const Mocha = require('mocha');

const { Spec } = Mocha.reporters;
const { EVENT_RUN_END } = Mocha.Runner.constants;

class SummaryReporter extends Spec {
  constructor(runner, options) {
    super(runner, options);
    // Registered after Spec's own listener, so this line follows its epilogue.
    runner.once(EVENT_RUN_END, () => {
      const { passes = 0, failures = 0, pending = 0 } = this.stats;
      process.stdout.write(`${passes} passed, ${failures} failed, ${pending} skipped\n`);
    });
  }
}

SummaryReporter.description = 'spec output plus a final "N passed, N failed, N skipped" line';

module.exports = SummaryReporter;

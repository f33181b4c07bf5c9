/**
 * The node flags Conveyor's launchers give a process (src/node-flags.ts): `npm start` names
 * them, `bin/conveyor.js` keeps a portable first line, and a process's flags are read back
 * from its arguments. What the flag does to throughput is measured by `npm run bench`
 * (docs/performance.md), not here.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { LAUNCH_FLAGS, semiSpaceMb } from '../../src/node-flags';

const ROOT = path.resolve(__dirname, '..', '..');

describe('node flags of the launchers (src/node-flags.ts)', () => {
  describe('semiSpaceMb', () => {
    const cases: Array<[string[], string, number | undefined]> = [
      [[], '', undefined],
      [['--max-semi-space-size=32'], '', 32],
      [['--max_semi_space_size=64'], '', 64],
      [['--max-old-space-size=384'], '', undefined],
      [[], '--max-semi-space-size=8', 8],
      [[], '  --max-old-space-size=384   --max-semi-space-size=8 ', 8],
      // The command line comes after NODE_OPTIONS, and the later flag wins (as in node).
      [['--max-semi-space-size=32'], '--max-semi-space-size=64', 32],
      [['--max-semi-space-size=32', '--max-semi-space-size=16'], '', 16],
      // Node refuses the value as a separate argument; nothing here reads one.
      [['--max-semi-space-size', '48'], '', undefined],
      [['--max-semi-space-size=32'], '--max-semi-space-size', 32],
      [['--max-semi-space-size=abc'], '', undefined],
      [['--max-semi-space-size='], '', undefined],
      [['--max-semi-space-size=-4'], '', undefined],
    ];
    for (const [argv, nodeOptions, mb] of cases) {
      it(`${JSON.stringify(argv)} with NODE_OPTIONS ${JSON.stringify(nodeOptions)} → ${String(mb)}`, () => expect(semiSpaceMb(argv, nodeOptions)).to.equal(mb));
    }
  });

  it('the launch flags give node a 32 MB semi-space', () => {
    expect(semiSpaceMb(LAUNCH_FLAGS)).to.equal(32);
  });

  it('npm start gives node the launch flags', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).to.equal(['node', ...LAUNCH_FLAGS, 'bin/conveyor.js', 'start'].join(' '));
  });

  it('bin/conveyor.js keeps a first line every env runs (BusyBox has no env -S)', () => {
    expect(readFileSync(path.join(ROOT, 'bin', 'conveyor.js'), 'utf8').split('\n')[0]).to.equal('#!/usr/bin/env node');
  });
});

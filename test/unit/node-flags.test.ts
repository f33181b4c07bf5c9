/**
 * The node flags Conveyor's launchers give a process (src/node-flags.ts): read from the first
 * line of `bin/conveyor.js`, the same in `npm start`, and read back from a process's arguments.
 * What the flag does to throughput is measured by `npm run bench` (docs/performance.md), not here.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { launchFlags, semiSpaceMb, shebangFlags } from '../../src/node-flags';

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'conveyor.js');

describe('node flags of the launchers (src/node-flags.ts)', () => {
  describe('shebangFlags', () => {
    const cases: Array<[string, string[]]> = [
      ['#!/usr/bin/env -S node --max-semi-space-size=32', ['--max-semi-space-size=32']],
      ['#!/usr/bin/env -S node --max-semi-space-size=32 --stack-trace-limit=20', ['--max-semi-space-size=32', '--stack-trace-limit=20']],
      ['#!/usr/bin/env node', []],
      ['#!/usr/local/bin/node --max-semi-space-size=16', ['--max-semi-space-size=16']],
      ['#!/usr/bin/env -S deno run', []],
      ['#!/bin/sh', []],
      ["'use strict';", []],
      ['', []],
    ];
    for (const [line, flags] of cases) {
      it(`${JSON.stringify(line)} → ${JSON.stringify(flags)}`, () => expect(shebangFlags(line)).to.deep.equal(flags));
    }
  });

  describe('semiSpaceMb', () => {
    const cases: Array<[string[], string, number | undefined]> = [
      [[], '', undefined],
      [['--max-semi-space-size=32'], '', 32],
      [['--max_semi_space_size=64'], '', 64],
      [['--max-semi-space-size', '48'], '', 48],
      [['--max-old-space-size=384'], '', undefined],
      [[], '--max-semi-space-size=8', 8],
      // The command line comes after NODE_OPTIONS, and the later flag wins (as in node).
      [['--max-semi-space-size=32'], '--max-semi-space-size=64', 32],
      [['--max-semi-space-size=32', '--max-semi-space-size=16'], '', 16],
      [['--max-semi-space-size=abc'], '', undefined],
      [['--max-semi-space-size='], '', undefined],
      [['--max-semi-space-size'], '', undefined],
    ];
    for (const [argv, nodeOptions, mb] of cases) {
      it(`${JSON.stringify(argv)} with NODE_OPTIONS ${JSON.stringify(nodeOptions)} → ${String(mb)}`, () => expect(semiSpaceMb(argv, nodeOptions)).to.equal(mb));
    }
  });

  it('bin/conveyor.js starts node with a 32 MB semi-space', () => {
    expect(launchFlags(BIN)).to.deep.equal(['--max-semi-space-size=32']);
  });

  it('npm start gives node the same flags as bin/conveyor.js', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).to.equal(['node', ...launchFlags(BIN), 'bin/conveyor.js', 'start'].join(' '));
  });
});

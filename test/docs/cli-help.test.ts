/**
 * The command line agrees with itself and with its reference (docs/reference.md#commands):
 * - every command answers `--help`, as a real process, with exit 0 and its usage;
 * - the reference has a section for exactly the commands there are, and `conveyor help`
 *   lists each of them;
 * - each section's synopsis is the usage line of the command's `--help`, and the options the
 *   section lists are exactly the options its `--help` lists;
 * - every command refuses an option it does not know with exit 2 and its usage.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import type { Io } from '../../src/cli/commands/args';
import { COMMANDS } from '../../src/cli/commands/index';
import { REPO_ROOT } from '../support/engine';
import { conveyor } from './run';

/** The options a `--help` text lists: the `--names` at the start of its indented option lines. */
export function helpOptions(help: string): string[] {
  const names = new Set<string>();
  for (const line of help.split('\n')) {
    if (!/^ {2}--[a-z]/.test(line)) continue;
    const synopsis = line.trim().split(/\s{2,}/, 1)[0]!;
    for (const m of synopsis.matchAll(/--[a-z][a-z-]*/g)) names.add(m[0]);
  }
  return [...names].sort();
}

interface RefSection {
  synopsis: string | undefined;
  options: string[];
}

/** The `### \`name\`` sections of the reference's Commands chapter. */
export function referenceCommands(md: string): Map<string, RefSection> {
  const chapter = md.slice(md.indexOf('\n## Commands\n'));
  const end = chapter.indexOf('\n## ', 5);
  const sections = new Map<string, RefSection>();
  const parts = (end === -1 ? chapter : chapter.slice(0, end)).split(/\n### /).slice(1);
  for (const part of parts) {
    const [heading, ...body] = part.split('\n');
    const name = /^`([a-z-]+)`\s*$/.exec(heading!)?.[1];
    if (!name) throw new Error(`a command heading should be ### \`name\`: "${heading}"`);
    const synopsis = body.map((l) => /^`(conveyor [^`]*)`$/.exec(l)?.[1]).find(Boolean);
    const options = new Set<string>();
    for (const line of body) {
      const item = /^- `(--[^`]*)`/.exec(line);
      if (item) for (const m of item[1]!.matchAll(/--[a-z][a-z-]*/g)) options.add(m[0]);
    }
    sections.set(name, { synopsis, options: [...options].sort() });
  }
  return sections;
}

describe('docs: every command\'s --help and the command reference', function () {
  this.timeout(300_000);
  const reference = referenceCommands(fs.readFileSync(path.join(REPO_ROOT, 'docs', 'reference.md'), 'utf8'));
  const names = Object.keys(COMMANDS);

  it('the reference has one section per command, and conveyor help lists every command', async () => {
    expect([...reference.keys()].sort()).to.deep.equal([...names].sort());
    const help = await conveyor(['help']);
    expect(help.code).to.equal(0);
    for (const name of names) expect(help.stdout, name).to.match(new RegExp(`^ {2}${name}\\b`, 'm'));
  });

  it('every command answers --help as a process, exit 0, with the synopsis and options of the reference', async () => {
    // A few at a time: each is a process that loads the CLI.
    const helps = new Map<string, { code: number | null; stdout: string; stderr: string }>();
    for (let i = 0; i < names.length; i += 4) {
      const batch = names.slice(i, i + 4);
      const runs = await Promise.all(batch.map((n) => conveyor([n, '--help'])));
      batch.forEach((n, j) => helps.set(n, runs[j]!));
    }
    const mismatches: string[] = [];
    for (const name of names) {
      const r = helps.get(name)!;
      expect(r.code, `${name}: ${r.stderr}`).to.equal(0);
      expect(r.stdout.trimEnd(), name).to.equal(COMMANDS[name]!.usage);
      const usageLine = r.stdout.split('\n', 1)[0]!.replace(/^Usage: /, '');
      const section = reference.get(name)!;
      if (section.synopsis !== usageLine) mismatches.push(`${name}: the reference shows \`${section.synopsis}\`, --help \`${usageLine}\``);
      const fromHelp = helpOptions(r.stdout);
      const missing = fromHelp.filter((o) => !section.options.includes(o));
      const extra = section.options.filter((o) => !fromHelp.includes(o));
      if (missing.length > 0) mismatches.push(`${name}: --help lists ${missing.join(', ')}, the reference does not`);
      if (extra.length > 0) mismatches.push(`${name}: the reference lists ${extra.join(', ')}, --help does not`);
    }
    expect(mismatches, mismatches.join('\n')).to.deep.equal([]);
    // The comparison has something to compare: the client commands share --url and --key.
    for (const name of ['import', 'submit', 'requests', 'steps', 'resume', 'stop']) {
      expect(helpOptions(helps.get(name)!.stdout), name).to.include.members(['--url', '--key']);
    }
  });

  it('every command refuses an unknown option: exit 2, with its usage', async () => {
    for (const name of names) {
      const err: string[] = [];
      const io: Io = { out: () => undefined, err: (l) => err.push(l), env: {} };
      const code = await COMMANDS[name]!.run(['--no-such-option', 'x'], io);
      expect(code, `${name}: ${err.join('\n')}`).to.equal(2);
      expect(err.join('\n'), name).to.include(COMMANDS[name]!.usage.split('\n', 1)[0]!);
    }
  });
});

/**
 * The folders of `src/` import one way: scripts/check-cycles.ts passes on `src/`, fails on a
 * planted cycle (type-only imports count), and its allow-list only shrinks.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { ALLOWED_CYCLES, checkCycles, formatReport, readSourceTree } from '../../scripts/check-cycles';
import { removeTmpDir, tmpDir } from '../support/tmp';

const ROOT = path.resolve(__dirname, '..', '..');
const SRC = path.join(ROOT, 'src');

/**
 * The allow-list as it was handed over: ALLOWED_CYCLES may lose entries, never gain one. Empty:
 * no folder pair of src/ is in a cycle. Shrink this with the list, never grow it.
 */
const ALLOWED_CEILING: readonly string[] = [];

const tree = (files: Record<string, string>): Map<string, string> => new Map(Object.entries(files));

describe('folder cycles: the folders of src/ import one way', () => {
  const real = readSourceTree(SRC);

  it('finds no cycle between the folders of src/ beyond the allow-list, and no stale entry in it', () => {
    const report = checkCycles(real);
    expect(report.added, formatReport(report)).to.deep.equal([]);
    expect(report.stale, formatReport(report)).to.deep.equal([]);
  });

  it('keeps the allow-list within what was handed over (it only shrinks)', () => {
    for (const pair of ALLOWED_CYCLES) expect(ALLOWED_CEILING, `${pair} was added to ALLOWED_CYCLES`).to.include(pair);
  });

  it('fails on a cycle planted in src/ by a type-only import, naming the pair and the file', () => {
    const planted = new Map(real);
    planted.set('conditions/planted.ts', "import type { Engine } from '../engine';\nexport type E = Engine;\n");
    const report = checkCycles(planted);
    expect(report.added).to.include('conditions<->engine.ts');
    expect(formatReport(report)).to.contain('conditions/planted.ts -> engine.ts');
  });

  it('counts every form of import between folders, and only relative imports inside the tree', () => {
    const forms = [
      "import { x } from '../b/x';",
      "import type { X } from '../b/x';",
      "export * from '../b';",
      "export { x } from '../b/x.js';",
      "type X = import('../b/x').X;",
      "const x = require('../b/x');",
      "void import('../b/x');",
    ];
    for (const form of forms) {
      const report = checkCycles(tree({ 'a/a.ts': form, 'b/index.ts': "export * from './x';", 'b/x.ts': "import '../a/a';" }), []);
      expect(report.pairs, form).to.deep.equal(['a<->b']);
    }
    const none = tree({
      'a/a.ts': "import 'b';\n// import '../b/x';\nconst s = \"import '../b/x'\";\nimport './c';",
      'a/c.ts': "import './a';",
      'b/x.ts': "import '../a/a';\nimport '../../outside/a';",
    });
    expect(checkCycles(none, []).pairs).to.deep.equal([]);
  });

  it('reports every pair on a longer cycle, top-level files as units of their own', () => {
    const report = checkCycles(tree({ 'a/x.ts': "import '../b/x';", 'b/x.ts': "import '../top';", 'top.ts': "import './a/x';", 'c/x.ts': "import '../a/x';" }), ['a<->b']);
    expect(report.components).to.deep.equal([['a', 'b', 'top.ts']]);
    expect(report.pairs).to.deep.equal(['a<->b', 'b<->top.ts', 'a<->top.ts'].sort());
    expect(report.added).to.deep.equal(['a<->top.ts', 'b<->top.ts']);
    expect(checkCycles(tree({ 'a/x.ts': "import '../b/x';" }), ['a<->b']).stale).to.deep.equal(['a<->b']);
  });

  describe('as npm run lint runs it', function () {
    this.timeout(60_000);
    let dir: string;
    before(() => {
      dir = tmpDir('cycles');
    });
    after(() => removeTmpDir(dir));

    it('exits 1 and names the imports on a tree with a cycle, 0 on src/', async () => {
      fs.mkdirSync(path.join(dir, 'a'));
      fs.mkdirSync(path.join(dir, 'b'));
      fs.writeFileSync(path.join(dir, 'a', 'x.ts'), "import type { Y } from '../b/y';\nexport type X = Y;\n");
      fs.writeFileSync(path.join(dir, 'b', 'y.ts'), "import { z } from '../a/z';\nexport type Y = typeof z;\n");
      fs.writeFileSync(path.join(dir, 'a', 'z.ts'), 'export const z = 1;\n');
      const run = promisify(execFile);
      const tsx = path.join(ROOT, 'node_modules', '.bin', 'tsx');
      const script = path.join(ROOT, 'scripts', 'check-cycles.ts');
      const failed = await run(tsx, [script, dir]).then(
        () => undefined,
        (err: { code: number; stderr: string }) => err,
      );
      expect(failed?.code).to.equal(1);
      expect(failed?.stderr).to.contain('a<->b').and.to.contain('b/y.ts -> a/z.ts');
      const { stdout } = await run(tsx, [script, SRC]);
      expect(stdout).to.contain('import one way');
    });
  });
});

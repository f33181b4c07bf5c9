/**
 * The documentation is checked like code:
 * - every relative link of README.md and docs/**\/*.md resolves, file and `#anchor`;
 * - every docs page is one link away from the docs index, and the README stays short;
 * - every pipeline or module file the docs show (a `<!-- file: path -->` block) validates with
 *   `conveyor validate`, together with the repository's own; a block naming a file the
 *   repository has must be that file;
 * - every `conveyor simulate`, `validate` and `graph` command of the docs runs, as a real
 *   process, with the inputs shipped in `examples/`, and ends as the docs say (a graph's
 *   output is the one shown).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { REPO_ROOT } from '../support/engine';
import { removeTmpDir, tmpDir } from '../support/tmp';
import { anchors, codeBlocks, docFiles, isExternal, links, shellCommands, type CodeBlock } from './markdown';
import { conveyor } from './run';

const read = (rel: string): string => fs.readFileSync(path.join(REPO_ROOT, rel), 'utf8');
const files = docFiles(REPO_ROOT);

/** The block that shows a command's output: the unlabelled block right after it. */
function shownOutput(blocks: CodeBlock[], i: number, md: string): string | undefined {
  const next = blocks[i + 1];
  if (!next || next.lang !== '') return undefined;
  // 0-based: the opening fence is line - 1, the code follows, then the closing fence; between
  // starts on the line after that fence and ends before the next opening fence.
  const afterClose = blocks[i]!.line + blocks[i]!.code.split('\n').length;
  const between = md.split('\n').slice(afterClose, next.line - 1).join('').trim();
  return between === '' ? next.code : undefined;
}

describe('docs: README.md and docs/ (links, snippets, examples)', function () {
  this.timeout(240_000);

  it('every relative link resolves to a file, and every #anchor to a heading of it', () => {
    const broken: string[] = [];
    let checked = 0;
    for (const file of files) {
      for (const target of links(read(file))) {
        if (isExternal(target)) continue;
        checked++;
        const [rel, anchor] = target.split('#', 2) as [string, string | undefined];
        const resolved = rel === '' ? file : path.normalize(path.join(path.dirname(file), decodeURIComponent(rel)));
        const abs = path.join(REPO_ROOT, resolved);
        if (resolved.startsWith('..') || !fs.existsSync(abs)) {
          broken.push(`${file}: ${target} (no file ${resolved})`);
          continue;
        }
        if (anchor !== undefined) {
          if (!resolved.endsWith('.md')) broken.push(`${file}: ${target} (an anchor into a file that is not Markdown)`);
          else if (!anchors(read(resolved)).has(anchor)) broken.push(`${file}: ${target} (no heading #${anchor} in ${resolved})`);
        }
      }
    }
    expect(broken, broken.join('\n')).to.deep.equal([]);
    expect(checked).to.be.greaterThan(50);
  });

  it('every docs page is linked from docs/README.md, and the README stays under 300 lines', () => {
    const index = new Set(links(read('docs/README.md')).map((l) => l.split('#')[0]));
    const pages = files.filter((f) => f.startsWith('docs/') && f !== path.join('docs', 'README.md')).map((f) => path.relative('docs', f));
    expect(pages.filter((p) => !index.has(p)), 'pages missing from docs/README.md').to.deep.equal([]);
    expect(read('README.md').split('\n').length).to.be.at.most(300);
  });

  it('the docs cite no document the reader does not have', () => {
    const cited = files.flatMap((f) => read(f).split('\n').map((l, i) => ({ f, i, l })))
      .filter(({ l }) => /\bseed \d{3}\b|§\s?\d/i.test(l))
      .map(({ f, i, l }) => `${f}:${i + 1}: ${l.trim()}`);
    expect(cited).to.deep.equal([]);
  });

  describe('snippets and example commands', () => {
    let project: string;
    const snippets: Array<{ doc: string; block: CodeBlock }> = [];
    const env = (): NodeJS.ProcessEnv => ({ CONVEYOR_PIPELINES_DIR: path.join(project, 'pipelines'), CONVEYOR_MODULES_DIR: path.join(project, 'modules') });

    before(() => {
      // A project with the repository's pipelines and modules plus every file the docs show.
      // `src` and `node_modules` are linked so that imports resolve as in the repository.
      project = tmpDir('docs');
      fs.cpSync(path.join(REPO_ROOT, 'pipelines'), path.join(project, 'pipelines'), { recursive: true });
      fs.cpSync(path.join(REPO_ROOT, 'modules'), path.join(project, 'modules'), { recursive: true });
      fs.symlinkSync(path.join(REPO_ROOT, 'src'), path.join(project, 'src'));
      fs.symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(project, 'node_modules'));
      for (const doc of files) for (const block of codeBlocks(read(doc))) if (block.file) snippets.push({ doc, block });
      for (const { block } of snippets) {
        const dest = path.join(project, block.file!);
        fs.mkdirSync(path.dirname(dest), { recursive: true });
        fs.writeFileSync(dest, block.code);
      }
    });
    after(() => removeTmpDir(project));

    it('every pipeline or module the docs show is a marked file (so that it is validated)', () => {
      const unmarked: string[] = [];
      for (const doc of files) {
        for (const block of codeBlocks(read(doc))) {
          if (block.file) continue;
          const whole = /\bdefine(Pipeline|Module)\(/.test(block.code)
            || (block.lang === 'json' && /^\s*\{\s*"(id|name)"\s*:/.test(block.code) && /"(steps|transport)"\s*:/.test(block.code));
          if (whole) unmarked.push(`${doc}:${block.line}`);
        }
      }
      expect(unmarked, 'add <!-- file: pipelines/<id>.pipeline.ts --> (or modules/…) before these blocks').to.deep.equal([]);
      expect(snippets.length).to.be.at.least(5);
    });

    it('a file the docs show that the repository has is that file', () => {
      for (const { doc, block } of snippets) {
        const real = path.join(REPO_ROOT, block.file!);
        if (!fs.existsSync(real)) continue;
        const text = fs.readFileSync(real, 'utf8');
        if (block.file!.endsWith('.json')) expect(JSON.parse(block.code), `${doc}:${block.line}`).to.deep.equal(JSON.parse(text));
        else expect(block.code.trim(), `${doc}:${block.line}`).to.equal(text.trim());
      }
    });

    it('conveyor validate accepts every pipeline and module file of the docs', async () => {
      const r = await conveyor(['validate'], env());
      expect(r.stderr, r.stderr).to.equal('');
      expect(r.code).to.equal(0);
      for (const { block } of snippets.filter((s) => s.block.file!.startsWith('pipelines/'))) {
        const id = path.basename(block.file!).replace(/\.pipeline\.(ts|json)$/, '');
        expect(r.stdout).to.match(new RegExp(`[(, ]${id}[,)]`));
      }
    });

    it('every conveyor simulate, validate and graph command of the docs runs and ends as shown', async () => {
      const ran: string[] = [];
      const compared: string[] = [];
      for (const doc of files) {
        const md = read(doc);
        const blocks = codeBlocks(md);
        for (const [i, block] of blocks.entries()) {
          if (block.lang !== 'sh') continue;
          const commands = shellCommands(block.code).filter((w) => w[0] === 'npx' && w[1] === 'conveyor' && ['simulate', 'validate', 'graph'].includes(w[2]!));
          const shown = shownOutput(blocks, i, md);
          for (const words of commands) {
            if (words.some((w) => w.startsWith('--svg') || w.startsWith('--png'))) continue;
            const where = `${doc}:${block.line}: ${words.join(' ')}`;
            const r = await conveyor(words.slice(2), env());
            expect(r.code, `${where}\n${r.stderr}`).to.equal(0);
            if (words[2] === 'simulate' && words.includes('--json')) expect(JSON.parse(r.stdout).status, where).to.be.a('string');
            const status = shown && commands.length === 1 ? /^status: (\w+)$/m.exec(shown)?.[1] : undefined;
            if (status) {
              expect(r.stdout, where).to.match(new RegExp(`^status: ${status}$`, 'm'));
              compared.push(where);
            }
            if (words[2] === 'graph' && shown && commands.length === 1) {
              expect(r.stdout.trim(), where).to.equal(shown.trim());
              compared.push(where);
            }
            ran.push(where);
          }
        }
      }
      expect(ran.filter((c) => c.includes(' simulate ')).length, ran.join('\n')).to.be.at.least(3);
      // The shown outputs were found and compared: simulate statuses and a graph.
      expect(compared.filter((c) => c.includes(' simulate ')).length, compared.join('\n')).to.be.at.least(2);
      expect(compared.filter((c) => c.includes(' graph ')).length, compared.join('\n')).to.be.at.least(1);
    });

    it('the tutorial: a missing field renders "" and the VIP route ends in vip-note', async () => {
      const sim = (input: string) => conveyor(['simulate', 'welcome', '--input', `examples/tutorial/${input}`, '--json',
        '--mock', 'greet=examples/tutorial/greet.json', '--mock', 'shout=examples/tutorial/shout.json'], env());
      const nobody = JSON.parse((await sim('nobody.json')).stdout) as { status: string; route: Array<{ stepId: string; params: unknown }> };
      expect(nobody.status).to.equal('completed');
      expect(nobody.route[0]).to.deep.include({ stepId: 'greet', params: { name: '' } });
      expect(nobody.route.map((s) => s.stepId)).to.deep.equal(['greet', 'shout']);
      const vip = JSON.parse((await sim('ada-vip.json')).stdout) as { route: Array<{ stepId: string; output: unknown }> };
      expect(vip.route.map((s) => s.stepId)).to.deep.equal(['greet', 'shout', 'vip-note']);
      expect(vip.route[2]!.output).to.deep.equal({ note: 'VIP guest: Ada' });
    });
  });
});

/**
 * The boundaries `npm run lint` keeps (eslint.config.mjs), shown to fire on planted code:
 * `process.env` only in src/config.ts and src/cli/, error codes only from the catalog in
 * src/errors.ts, winston only in src/log/. The planted text is linted under the path of a
 * real file (the type-aware rules need a file of the project), never written to disk.
 */
import { expect } from 'chai';
import { ESLint } from 'eslint';
import { REPO_ROOT } from '../support/engine';

const PLANTED = [
  "import winston from 'winston';",
  'export const port = process.env.PORT;',
  "export const code = 'CONVEYOR_ERR_SOMETHING';",
  'export const level = winston.config.npm.levels;',
  '',
].join('\n');

describe('lint boundaries (eslint.config.mjs)', function () {
  this.timeout(120_000);
  const eslint = new ESLint({ cwd: REPO_ROOT });
  const rulesFired = async (filePath: string): Promise<string[]> => {
    const [result] = await eslint.lintText(PLANTED, { filePath });
    return [...new Set(result!.messages.map((m) => m.ruleId ?? m.message))].sort();
  };

  it('refuses process.env, a literal error code and winston in src/', async () => {
    expect(await rulesFired('src/engine.ts')).to.deep.equal(['@typescript-eslint/no-restricted-imports', 'no-restricted-properties', 'no-restricted-syntax']);
  });

  it('lets src/config.ts and src/cli/ read process.env, and src/log/ import winston', async () => {
    expect(await rulesFired('src/config.ts')).to.not.include('no-restricted-properties');
    expect(await rulesFired('src/cli/server.ts')).to.not.include('no-restricted-properties');
    expect(await rulesFired('src/log/logger.ts')).to.deep.equal(['no-restricted-properties', 'no-restricted-syntax']);
  });

  it('lets only src/errors.ts spell an error code', async () => {
    expect(await rulesFired('src/errors.ts')).to.not.include('no-restricted-syntax');
    expect(await rulesFired('src/store/data-source.ts')).to.include('no-restricted-syntax').and.include('@typescript-eslint/no-restricted-imports');
  });
});

import { expect } from 'chai';
import * as fs from 'node:fs';
import { mysqlUrl, redisUrl, requireMysql, requireRedis } from '../support/services';
import { freePort } from '../support/ports';
import { tmpDir, cleanupTmpDirs } from '../support/tmp';

describe('support probe', () => {
  after(cleanupTmpDirs);
  it('reads urls', () => { console.log(mysqlUrl(), redisUrl()); });
  it('requires mysql', async () => { console.log(await requireMysql()); });
  it('requires redis', async () => { console.log(await requireRedis()); });
  it('gets a free port', async () => { const p = await freePort(); expect(p).to.be.greaterThan(0); });
  it('makes a tmp dir', () => { const d = tmpDir('probe'); expect(fs.existsSync(d)).to.equal(true); console.log(d); });
});

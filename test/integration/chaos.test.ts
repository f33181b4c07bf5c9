/**
 * The distributed chaos run, small: `scripts/chaos-distributed.ts` with 400 requests (the full
 * 2,000 is `npm run chaos:distributed`). 1 api, 2 engine and 2 worker processes on MariaDB and
 * Redis; one engine and one worker are SIGKILLed midway and restarted. Every request must
 * complete, each (request, step) must have exactly one committed result, and nothing may be
 * left running.
 */
import { expect } from 'chai';
import { formatSummary, runChaos } from '../../scripts/chaos-distributed';

describe('chaos: api + 2 engines + 2 workers, SIGKILL of an engine and a worker midway (400 requests)', function () {
  this.timeout(120_000);

  it('completes every request with each step committed exactly once, and leaves nothing running', async () => {
    const N = 400;
    const s = await runChaos({ requests: N, timeoutMs: 60_000 });
    console.log(formatSummary(s).replace(/^/gm, '      '));
    expect(s.violations, formatSummary(s)).to.deep.equal([]);
    expect(s.kill, 'the kill happened').to.not.equal(null);
    expect(s.kill!.completedAtKill, 'the kill came midway').to.be.within(1, N - 1);
    expect(s.accepted).to.equal(N);
    expect(s.completed).to.equal(N);
    expect(s.duplicates).to.equal(0);
    expect(s.stuck).to.equal(0);
    expect(s.openRuns).to.equal(0);
    expect(s.verdict?.runs.completed).to.equal(N * 4);
  });
});

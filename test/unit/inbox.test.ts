/**
 * The supervisor's one port: the in-process inbox routes every message to `receive`, feeds
 * results from the bus (announcing each as `StepAnswered` for metrics), and nothing in
 * `src/` outside the inbox and the composition root calls the supervisor.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Bus } from '../../src/bus/bus';
import { LocalInbox } from '../../src/inbox/inbox';
import type { HandleResult, InboxMessage } from '../../src/supervisor/messages';

class FakeSupervisor {
  readonly got: InboxMessage[] = [];
  reply: HandleResult = 'committed';
  receive(m: InboxMessage): Promise<HandleResult> {
    this.got.push(m);
    return Promise.resolve(this.reply);
  }
}

const result = { requestId: 'r1', runId: 'u1', stepId: 's', attempt: 1, finishedAt: 1, durationMs: 0, output: { ok: true } };

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('inbox: the one way into the supervisor', () => {
  it('asks and posts through receive; a start before the engine runs is left buffered', async () => {
    const sup = new FakeSupervisor();
    const inbox = new LocalInbox(sup, new Bus());
    expect(await inbox.post({ type: 'start', requestId: 'r1' })).to.equal(false);
    expect(sup.got).to.deep.equal([]);
    inbox.start();
    expect(await inbox.post({ type: 'start', requestId: 'r1' })).to.equal(true);
    expect(await inbox.ask({ type: 'stop', requestId: 'r1', reason: 'enough' })).to.equal('committed');
    sup.reply = 'failed';
    expect(await inbox.post({ type: 'result', requestId: 'r1', result }), 'not taken: post it again').to.equal(false);
    expect(sup.got.map((m) => m.type)).to.deep.equal(['start', 'stop', 'result']);
    void inbox.stop();
  });

  it('takes results and 202s from the bus, announcing each result as StepAnswered, until stopped', () => {
    const sup = new FakeSupervisor();
    const bus = new Bus();
    const answered: unknown[] = [];
    bus.on('StepAnswered', (e) => answered.push(e));
    const inbox = new LocalInbox(sup, bus);
    inbox.start();
    bus.emit('StepCompleted', result);
    bus.emit('StepAccepted', { requestId: 'r1', runId: 'u2', stepId: 's', attempt: 1, until: 5 });
    expect(sup.got).to.deep.equal([
      { type: 'result', requestId: 'r1', result },
      { type: 'accepted', requestId: 'r1', accepted: { requestId: 'r1', runId: 'u2', stepId: 's', attempt: 1, until: 5 } },
    ]);
    expect(answered).to.deep.equal([result]);
    void inbox.stop();
    bus.emit('StepCompleted', result);
    expect(sup.got).to.have.length(2);
  });

  it('no code outside src/inbox/ and src/engine.ts calls the supervisor', () => {
    const src = path.resolve(__dirname, '../../src');
    const callers = sourceFiles(src)
      .filter((f) => !f.startsWith(path.join(src, 'inbox')) && !f.startsWith(path.join(src, 'supervisor')) && f !== path.join(src, 'engine.ts'))
      .filter((f) => /supervisor\.(receive|handleResult|operate|startRequest|markWaiting)\b/.test(fs.readFileSync(f, 'utf8')));
    expect(callers).to.deep.equal([]);
  });
});

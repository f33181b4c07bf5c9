/**
 * The AMQP source's acknowledgements (src/sources/adapters.ts `AckBatcher`): acked deliveries
 * at the front go as one `multiple` ack at the end of the turn, acked ones behind an unsettled
 * delivery go one by one in the same turn, a nack goes at once, and nothing is acknowledged
 * that was not acked. The fake channel records the frames; `settledBy` replays them as the
 * broker would (a `multiple` ack settles every earlier delivery still outstanding).
 */
import { expect } from 'chai';
import type { Message } from 'amqplib';
import { AckBatcher } from '../../src/sources/adapters';

type Frame = { op: 'ack' | 'nack'; tag: number; multiple: boolean; requeue?: boolean };

function fakeChannel(): { frames: Frame[]; ack(m: Message, multiple?: boolean): void; nack(m: Message, multiple?: boolean, requeue?: boolean): void } {
  const frames: Frame[] = [];
  return {
    frames,
    ack: (m, multiple = false) => void frames.push({ op: 'ack', tag: m.fields.deliveryTag, multiple }),
    nack: (m, multiple = false, requeue = true) => void frames.push({ op: 'nack', tag: m.fields.deliveryTag, multiple, requeue }),
  };
}

const msg = (tag: number): Message => ({ fields: { deliveryTag: tag }, properties: {}, content: Buffer.alloc(0) }) as unknown as Message;
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** What the broker holds as settled after these frames, given the tags delivered. */
function settledBy(frames: Frame[], delivered: number[]): Map<number, 'acked' | 'dead' | 'requeued'> {
  const out = new Map<number, 'acked' | 'dead' | 'requeued'>();
  for (const f of frames) {
    const tags = f.multiple ? delivered.filter((t) => t <= f.tag && !out.has(t)) : [f.tag];
    for (const t of tags) out.set(t, f.op === 'ack' ? 'acked' : f.requeue ? 'requeued' : 'dead');
  }
  return out;
}

describe('AMQP source: acknowledgements in as few frames as the order allows', () => {
  it('acks delivered in order go as one multiple ack at the end of the turn', async () => {
    const ch = fakeChannel();
    const acks = new AckBatcher(ch);
    const tags = [1, 2, 3, 4, 5];
    for (const t of tags) acks.delivered(msg(t));
    for (const t of tags) acks.ack(msg(t));
    expect(ch.frames, 'nothing sent before the turn ends').to.deep.equal([]);
    await turn();
    expect(ch.frames).to.deep.equal([{ op: 'ack', tag: 5, multiple: true }]);
    expect(acks.sent).to.deep.equal({ ackFrames: 1, acked: 5 });
    expect([...settledBy(ch.frames, tags).keys()].sort()).to.deep.equal(tags);
  });

  it('an unsettled delivery is never covered: acks behind it go one by one, in the same turn', async () => {
    const ch = fakeChannel();
    const acks = new AckBatcher(ch);
    const tags = [1, 2, 3, 4, 5];
    for (const t of tags) acks.delivered(msg(t));
    for (const t of [1, 2, 4, 5]) acks.ack(msg(t)); // 3 is still being stored
    await turn();
    expect(ch.frames).to.deep.equal([
      { op: 'ack', tag: 2, multiple: true },
      { op: 'ack', tag: 4, multiple: false },
      { op: 'ack', tag: 5, multiple: false },
    ]);
    const settled = settledBy(ch.frames, tags);
    expect(settled.has(3), 'delivery 3 not acknowledged').to.equal(false);
    expect(settled.size).to.equal(4);
    acks.ack(msg(3));
    await turn();
    expect(ch.frames.at(-1)).to.deep.equal({ op: 'ack', tag: 3, multiple: false });
    expect(settledBy(ch.frames, tags).size).to.equal(5);
  });

  it('a dead-letter or retry nack goes at once and alone; a later multiple ack does not touch it', async () => {
    const ch = fakeChannel();
    const acks = new AckBatcher(ch);
    const tags = [1, 2, 3, 4];
    for (const t of tags) acks.delivered(msg(t));
    acks.nack(msg(2), false); // dead-lettered
    expect(ch.frames, 'sent without waiting for the turn').to.deep.equal([{ op: 'nack', tag: 2, multiple: false, requeue: false }]);
    acks.nack(msg(4), true); // to be redelivered
    for (const t of [1, 3]) acks.ack(msg(t));
    await turn();
    expect(ch.frames.slice(2)).to.deep.equal([{ op: 'ack', tag: 3, multiple: true }]);
    expect(Object.fromEntries(settledBy(ch.frames, tags))).to.deep.equal({ 1: 'acked', 2: 'dead', 3: 'acked', 4: 'requeued' });
  });

  it('a second ack or nack of a settled delivery, or an unknown one, sends nothing', async () => {
    const ch = fakeChannel();
    const acks = new AckBatcher(ch);
    acks.delivered(msg(1));
    acks.ack(msg(1));
    await turn();
    acks.ack(msg(1));
    acks.nack(msg(1), true);
    acks.ack(msg(9));
    await turn();
    expect(ch.frames).to.deep.equal([{ op: 'ack', tag: 1, multiple: false }]);
  });

  it('once the channel is gone nothing is sent on it (the broker redelivers)', async () => {
    const ch = fakeChannel();
    let live = true;
    const acks = new AckBatcher(ch, () => live);
    for (const t of [1, 2]) acks.delivered(msg(t));
    acks.ack(msg(1));
    live = false;
    acks.nack(msg(2), true);
    await turn();
    expect(ch.frames).to.deep.equal([]);
  });

  it('a channel that throws on ack (closed meanwhile) does not throw out of the turn', async () => {
    const acks = new AckBatcher({ ack: () => { throw new Error('Channel closed'); }, nack: () => undefined });
    acks.delivered(msg(1));
    acks.ack(msg(1));
    await turn();
    expect(acks.sent).to.deep.equal({ ackFrames: 0, acked: 0 });
  });
});

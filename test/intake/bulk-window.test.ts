/**
 * The bulk route's reader (`answerLines` in src/api/routes-intake.ts), without an engine: the
 * lines of one call in flight are bounded by BULK_WINDOW (memory stays flat whatever the size
 * of the file), and answers go out in input order even when lines are stored out of order.
 * The bound is observed through counters, never through timing.
 */
import { expect } from 'chai';
import { PassThrough, Readable } from 'node:stream';
import { answerLines, BULK_WINDOW, type LineResult } from '../../src/api/routes-intake';

const LINES = 5000;

/** A deterministic shuffle (a small LCG), so stores finish in a scrambled but repeatable order. */
function shuffled<T>(items: T[], seed: number): T[] {
  let s = seed;
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1_103_515_245 + 12_345) % 2_147_483_648;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe('intake: bulk lines in flight', function () {
  this.timeout(30_000);

  it(`reads line n only once line n-${BULK_WINDOW} is answered, and answers ${LINES} lines in order though they are stored out of order`, async () => {
    const body = Buffer.from(Array.from({ length: LINES }, (_, i) => JSON.stringify({ i: i + 1 })).join('\n'));
    let sourceDone = false;
    // The body arrives in 4 KiB pieces that cut lines in two.
    async function* source(): AsyncGenerator<Buffer> {
      for (let at = 0; at < body.length; at += 4096) yield body.subarray(at, at + 4096);
      sourceDone = true;
      releaseAll();
    }

    // A store that holds every line until BULK_WINDOW of them wait (or the body has ended),
    // then lets them all finish in a scrambled order.
    let pending: Array<() => void> = [];
    let inFlight = 0;
    let maxInFlight = 0;
    let round = 0;
    function releaseAll(): void {
      const batch = shuffled(pending, ++round);
      pending = [];
      setImmediate(() => batch.forEach((resolve) => resolve()));
    }

    // Answers are counted as they are written, synchronously.
    let answered = 0;
    let worstGap = 0;
    const out = new PassThrough();
    const write = out.write.bind(out);
    out.write = ((chunk: string) => {
      answered++;
      return write(chunk);
    }) as typeof out.write;
    const text: string[] = [];
    out.on('data', (c: Buffer) => text.push(c.toString('utf8')));
    const ended = new Promise<void>((resolve) => out.on('end', resolve));

    const store = (n: number, line: string): Promise<LineResult> => {
      worstGap = Math.max(worstGap, n - answered);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const done = new Promise<LineResult>((resolve) => {
        pending.push(() => {
          inFlight--;
          resolve({ line: n, id: `r${(JSON.parse(line) as { i: number }).i}`, status: 'buffered', outcome: 'created' });
        });
      });
      if (pending.length >= BULK_WINDOW || sourceDone) releaseAll();
      return done;
    };
    const errors: Error[] = [];
    await answerLines(source(), 1024, store, out, (err) => errors.push(err));
    await ended;

    expect(errors).to.deep.equal([]);
    const answers = text.join('').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { line: number; id: string });
    expect(answers.map((a) => a.line)).to.deep.equal(Array.from({ length: LINES }, (_, i) => i + 1));
    expect(answers.every((a) => a.id === `r${a.line}`)).to.equal(true);
    // Never more than the window between read and answered, and the window was used.
    expect(worstGap).to.equal(BULK_WINDOW);
    expect(maxInFlight).to.equal(BULK_WINDOW);
  });

  it('answers a line over the limit and a bad UTF-8 line without storing them, and skips blank lines', async () => {
    const stored: number[] = [];
    const store = (n: number): Promise<LineResult> => {
      stored.push(n);
      return Promise.resolve({ line: n, id: `r${n}`, status: 'buffered', outcome: 'created' });
    };
    const out = new PassThrough();
    const text: string[] = [];
    out.on('data', (c: Buffer) => text.push(c.toString('utf8')));
    const body = Buffer.concat([Buffer.from(`{"a":1}\n{"long":"${'x'.repeat(100)}"}\n\n`), Buffer.from([0xff, 0xfe, 0x0a]), Buffer.from('{"b":2}')]);
    await answerLines(Readable.from([body]), 32, store, out, () => undefined);
    const answers = text.join('').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { line: number; error?: { code: string } });
    expect(answers.map((a) => a.line)).to.deep.equal([1, 2, 4, 5]);
    expect(answers[1]!.error!.code).to.equal('CONVEYOR_ERR_BODY_TOO_LARGE');
    expect(answers[2]!.error!.code).to.equal('CONVEYOR_ERR_BAD_JSON');
    expect(stored).to.deep.equal([1, 5]);
  });
});

/**
 * The loggers `createLogger` makes answer `isLevelEnabled` with their own allocation-free
 * version (`src/log/logger.ts`, issue 18 "Performance"). It must answer exactly as winston's
 * own, whatever the levels, the transports and their own levels, and on child loggers: it
 * decides which log lines are written at all.
 */
import { expect } from 'chai';
import { Writable } from 'node:stream';
import winston from 'winston';
import { createLogger, logsAt, skipDisabledLevels } from '../../src/log/logger';

const winstons = (winston.createLogger({ silent: true }) as unknown as { constructor: { prototype: { isLevelEnabled(this: unknown, l: string): boolean } } })
  .constructor.prototype.isLevelEnabled;

const LEVELS = ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly', 'nope'];

function sink(level?: string): winston.transport {
  const t = new winston.transports.Stream({ stream: new Writable({ write: (_c, _e, cb) => cb() }) });
  if (level) t.level = level;
  return t;
}

/** Every level, as winston answers and as the logger answers. */
function answers(logger: winston.Logger): { winston: boolean[]; ours: boolean[] } {
  return { winston: LEVELS.map((l) => winstons.call(logger, l)), ours: LEVELS.map((l) => logger.isLevelEnabled(l)) };
}

describe('logger: isLevelEnabled without garbage answers as winston does', () => {
  for (const level of ['error', 'warn', 'info', 'debug', 'bogus']) {
    it(`at ${level}: one transport, added and removed ones with levels of their own, a child, a level changed later`, () => {
      const logger = createLogger(level);
      const check = (what: string): void => {
        const a = answers(logger);
        expect(a.ours, what).to.deep.equal(a.winston);
      };
      check('as made');
      const child = logger.child({ requestId: 'r' }) as winston.Logger;
      const c = answers(child);
      expect(c.ours, 'child').to.deep.equal(c.winston);
      const debug = sink('debug');
      logger.add(debug);
      check('with a debug transport');
      logger.add(sink('error'));
      check('and an error one');
      logger.remove(debug);
      check('the debug one removed');
      logger.clear();
      check('no transports');
      logger.level = 'silly';
      check('level changed');
      expect(logsAt(logger, 'debug')).to.equal(winstons.call(logger, 'debug'));
    });
  }

  it('with custom levels, no transports at all, and one transport with a level of its own', () => {
    const custom = skipDisabledLevels(winston.createLogger({ level: 'b', levels: { a: 0, b: 1, c: 2 }, transports: [sink()] }));
    for (const l of ['a', 'b', 'c', 'd']) expect(custom.isLevelEnabled(l), l).to.equal(winstons.call(custom, l));
    const none = skipDisabledLevels(winston.createLogger({ level: 'info', transports: [] }));
    for (const l of LEVELS) expect(none.isLevelEnabled(l), l).to.equal(winstons.call(none, l));
    // One transport (a single pipe, not an array) with a level of its own, stricter or looser.
    for (const own of ['error', 'debug']) {
      const one = skipDisabledLevels(winston.createLogger({ level: 'info', transports: [sink(own)] }));
      for (const l of LEVELS) expect(one.isLevelEnabled(l), `${own}: ${l}`).to.equal(winstons.call(one, l));
    }
  });

  it('a logger that cannot tell (a test fake) is taken to write every level', () => {
    const fake = { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined, child: () => fake };
    expect(logsAt(fake, 'info')).to.equal(true);
  });
});

/**
 * The log. Code depends on the narrow {@link Logger} interface; {@link createLogger} is its one
 * implementation, on winston (JSON lines on stdout, secrets redacted, trace ids added). Only
 * `src/log/` imports winston (eslint `no-restricted-imports`).
 */
import winston from 'winston';
import { activeLogFields } from '../tracing/tracing';
import { redact } from './redact';

/** Structured fields of a log line. */
export type LogFields = Record<string, unknown>;

/** What the engine logs through: four levels and children that add fields to every line. */
export interface Logger {
  error(message: string, fields?: LogFields): unknown;
  warn(message: string, fields?: LogFields): unknown;
  info(message: string, fields?: LogFields): unknown;
  debug(message: string, fields?: LogFields): unknown;
  /** A logger whose every line carries `fields` too. */
  child(fields: LogFields): Logger;
}

/**
 * Whether `logger` writes lines at `level`, so that a hot path (a line per step) builds a
 * line's fields only when it will be written: `skipDisabledLevels` drops a disabled line
 * before formatting, but its fields object, spreads and all, is already built by then. Asked
 * on every call, so a later change of `logger.level` still takes effect. A logger that
 * cannot tell (a test's fake) is taken to write every level.
 */
export function logsAt(logger: Logger, level: 'info' | 'debug'): boolean {
  const l = logger as Logger & { isLevelEnabled?: (level: string) => boolean };
  return typeof l.isLevelEnabled === 'function' ? l.isLevelEnabled(level) : true;
}

/** The winston logger {@link createLogger} makes (tests add transports or silence it). */
export type WinstonLogger = winston.Logger;

/**
 * With tracing on, a line written inside a span (a module run, an event) carries that span's
 * `trace_id` and `span_id`; the supervisor's step lines carry their request's and attempt's.
 */
const traceIds = winston.format((info) => {
  if (info.trace_id === undefined) {
    const ids = activeLogFields();
    if (ids) Object.assign(info, ids);
  }
  return info;
});

/** The process logger: JSON lines on stdout, at `level` (`config.logLevel`, from `LOG_LEVEL`). */
export function createLogger(level = 'info'): WinstonLogger {
  const logger = winston.createLogger({
    level,
    format: winston.format.combine(
      winston.format((info) => {
        // Fields never carry secrets into the log, whatever a caller passed in.
        for (const key of Object.keys(info)) {
          if (key !== 'level' && key !== 'message') (info as Record<string, unknown>)[key] = redact(info[key]);
        }
        return info;
      })(),
      traceIds(),
      winston.format.timestamp(),
      winston.format.json(),
    ),
    transports: [new winston.transports.Console({ stderrLevels: [] })],
  });
  return skipDisabledLevels(logger);
}

type LevelMethod = (this: winston.Logger, ...args: unknown[]) => winston.Logger;

/**
 * winston runs the whole format chain (redaction, timestamp, JSON) on every entry and only
 * then lets each transport drop the entries below its level, so a disabled `info` costs as
 * much as a written one: on the step hot path that was most of the logging cost. This makes
 * each level method (`info`, `warn`, … and so on child loggers, which inherit them) return at
 * once when no transport would write that level. The check reads the current levels, so
 * changing `logger.level` later still works.
 */
export function skipDisabledLevels(logger: winston.Logger): winston.Logger {
  logger.isLevelEnabled = levelEnabled;
  const methods = logger as unknown as Record<string, LevelMethod>;
  for (const name of Object.keys(logger.levels)) {
    const write = methods[name];
    if (typeof write !== 'function') continue;
    // `arguments` rather than rest parameters: a disabled level then allocates nothing.
    methods[name] = function gated(this: winston.Logger): winston.Logger {
      // eslint-disable-next-line prefer-rest-params
      return this.isLevelEnabled(name) ? write.apply(this, arguments as unknown as unknown[]) : this;
    };
  }
  return logger;
}


/** A level's value, as winston's `getLevelValue` reads it (null when it is not a level). */
function levelValue(levels: winston.config.AbstractConfigSetLevels, level: string | undefined): number | null {
  const value = level === undefined ? undefined : levels[level];
  return !value && value !== 0 ? null : value;
}

/** What a transport says of a level: its own level, or else the logger's. */
const transportWrites = (levels: winston.config.AbstractConfigSetLevels, t: { level?: string }, configured: number, given: number): boolean =>
  (levelValue(levels, t.level) ?? configured) >= given;

/**
 * winston's `isLevelEnabled`, with the same answer and without its garbage: its `transports`
 * getter builds two arrays on each of its three reads, and `findIndex` a closure (660 bytes
 * and about 0.5 µs a call, asked twice a step). This walks the logger's pipes as that getter
 * reads them (none, one stream, or an array), and falls back to the getter when they are
 * not there.
 */
function levelEnabled(this: winston.Logger, level: string): boolean {
  const given = levelValue(this.levels, level);
  if (given === null) return false;
  const configured = levelValue(this.levels, this.level);
  if (configured === null) return false;
  const state = (this as unknown as { _readableState?: { pipes?: unknown } })._readableState;
  const pipes = state && 'pipes' in state ? state.pipes : this.transports;
  if (Array.isArray(pipes)) {
    if (pipes.length === 0) return configured >= given;
    for (const t of pipes as Array<{ level?: string }>) if (transportWrites(this.levels, t, configured, given)) return true;
    return false;
  }
  if (!pipes) return configured >= given;
  return transportWrites(this.levels, pipes as { level?: string }, configured, given);
}

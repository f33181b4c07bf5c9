import winston from 'winston';
import { redact } from './redact';

/** The process logger: JSON lines on stdout, level from `LOG_LEVEL`. */
export function createLogger(level = process.env.LOG_LEVEL ?? 'info'): winston.Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(
      winston.format((info) => {
        // Fields never carry secrets into the log, whatever a caller passed in.
        for (const key of Object.keys(info)) {
          if (key !== 'level' && key !== 'message') (info as Record<string, unknown>)[key] = redact(info[key]);
        }
        return info;
      })(),
      winston.format.timestamp(),
      winston.format.json(),
    ),
    transports: [new winston.transports.Console({ stderrLevels: [] })],
  });
}

export type Logger = winston.Logger;

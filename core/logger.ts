import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/** Field paths pino replaces with "[redacted]" wherever they appear in a log line. */
const REDACT = [
  'token',
  '*.token',
  'password',
  '*.password',
  'secret',
  '*.secret',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'env',
  '*.env',
];

/** A pino logger writing JSON lines to stderr at `level`, with secrets redacted by field name. */
export function createLogger(options: { name: string; level: string }): Logger {
  return pino(
    { name: options.name, level: options.level, redact: { paths: REDACT, censor: '[redacted]' } },
    pino.destination(2),
  );
}

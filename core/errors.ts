/**
 * Crossdock's error codes, and the one place that maps a code to how it is reported.
 * A user's mistake (bad command, unknown target, invalid recipe) is logged at `info` and answered
 * with a reply that says what to do instead; anything else is a bug or an outage, logged at `error`.
 */
export type ErrorCode =
  | 'bad-command'
  | 'unknown-repo'
  | 'unknown-ref'
  | 'unknown-target'
  | 'recipe-missing'
  | 'recipe-invalid'
  | 'no-permission'
  | 'not-found'
  | 'source-unavailable'
  | 'artifact-invalid'
  | 'secret-missing'
  | 'secret-refused'
  | 'infrastructure'
  | 'internal';

const USER_ERRORS: ReadonlySet<ErrorCode> = new Set([
  'bad-command',
  'unknown-repo',
  'unknown-ref',
  'unknown-target',
  'recipe-missing',
  'recipe-invalid',
  'no-permission',
  'not-found',
  'artifact-invalid',
  'secret-missing',
  'secret-refused',
]);

/** An error with a code; `message` is written for the person who made the request. */
export class CrossdockError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CrossdockError';
  }
}

/** How an error is reported: the reply shown to the requester and the log level to use. */
export interface ErrorReport {
  code: ErrorCode;
  reply: string;
  level: 'info' | 'error';
}

/** Maps any thrown value to a report; unknown errors become `internal` with a generic reply. */
export function reportError(error: unknown): ErrorReport {
  if (error instanceof CrossdockError) {
    const level = USER_ERRORS.has(error.code) ? 'info' : 'error';
    return { code: error.code, reply: error.message, level };
  }
  return {
    code: 'internal',
    reply: 'Crossdock hit an internal error; it has been logged. Try again, or tell the operators.',
    level: 'error',
  };
}

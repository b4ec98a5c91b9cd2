/**
 * PostgreSQL NOTIFY channels. Payloads are ids as text; listeners re-read the rows, so a lost
 * notification only delays work until the next poll. The queue's SQL functions
 * (db/migrations/0002_queue_functions.sql) send them by these names, in the transaction that
 * makes the change, so they arrive once it has committed. Such a transaction takes a
 * database-wide lock from just before its commit until the commit is on disk (PostgreSQL's
 * src/backend/commands/async.c, PreCommit_Notify); a commit takes about 0.2 ms here, and the
 * worker batches its claims and completions, so the wait stays small.
 */
export const CHANNELS = {
  /** A job became claimable; payload: its run platform. */
  jobs: 'crossdock_jobs',
  /** A build or one of its jobs changed state; payload: the build id. */
  builds: 'crossdock_builds',
  /** Someone asked to stop a running job; payload: the job id. Its worker stops it. */
  cancel: 'crossdock_cancel',
} as const;

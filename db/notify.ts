/**
 * PostgreSQL NOTIFY channels. Payloads are ids as text; listeners re-read the rows, so a lost
 * notification only delays work until the next poll.
 */
export const CHANNELS = {
  /** A job became claimable; payload: its run platform. */
  jobs: 'crossdock_jobs',
  /** A build or one of its jobs changed state; payload: the build id. */
  builds: 'crossdock_builds',
  /** Someone asked to stop a running job; payload: the job id. Its worker stops it. */
  cancel: 'crossdock_cancel',
} as const;

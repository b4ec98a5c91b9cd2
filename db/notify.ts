import { sql, type SQL } from 'drizzle-orm';

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

/** What can send a statement: a database handle (postgres.js through drizzle). */
interface Executor {
  execute(query: SQL): Promise<unknown>;
}

/**
 * NOTIFYs collected during a transaction and sent once it has committed. A transaction that
 * NOTIFYs takes a database-wide lock before it commits and holds it through the commit
 * (PostgreSQL's src/backend/commands/async.c, PreCommit_Notify), so concurrent transactions that
 * write and NOTIFY wait on each other's WAL flush: measured here, it capped completions near 300
 * per second. Sent after the commit, the NOTIFY is a transaction of its own that writes nothing
 * and commits at once.
 * Listeners re-read rows, so a NOTIFY lost with a crash between commit and send only delays them
 * until their next poll.
 */
export class PendingNotifications {
  private readonly jobPlatforms = new Set<string>();
  private readonly buildIds = new Set<number>();
  private readonly canceledJobIds = new Set<number>();

  /** Workers of `runPlatform` should look for jobs. */
  jobs(runPlatform: string): void {
    this.jobPlatforms.add(runPlatform);
  }

  /** Build `buildId` or one of its jobs changed state. */
  build(buildId: number): void {
    this.buildIds.add(buildId);
  }

  /** Running job `jobId` is to be stopped by its worker. */
  cancel(jobId: number): void {
    this.canceledJobIds.add(jobId);
  }

  /** Sends what was collected, in one statement, and forgets it. */
  async send(db: Executor): Promise<void> {
    const notices = [
      ...[...this.jobPlatforms].map((platform) => sql`pg_notify(${CHANNELS.jobs}, ${platform})`),
      ...[...this.buildIds].map((id) => sql`pg_notify(${CHANNELS.builds}, ${String(id)})`),
      ...[...this.canceledJobIds].map((id) => sql`pg_notify(${CHANNELS.cancel}, ${String(id)})`),
    ];
    this.jobPlatforms.clear();
    this.buildIds.clear();
    this.canceledJobIds.clear();
    if (notices.length > 0) await db.execute(sql`select ${sql.join(notices, sql`, `)}`);
  }
}

import { eq, sql } from 'drizzle-orm';
import type { Database } from '../client';
import { workers } from '../schema';

export type Worker = typeof workers.$inferSelect;

/** Registers (or re-registers) a worker process as online. */
export async function registerWorker(
  db: Database,
  worker: Pick<Worker, 'id' | 'host' | 'pid' | 'version' | 'platforms'>,
): Promise<void> {
  await db
    .insert(workers)
    .values({ ...worker, online: true })
    .onConflictDoUpdate({
      target: workers.id,
      set: {
        ...worker,
        online: true,
        startedAt: sql`now()`,
        lastHeartbeatAt: sql`now()`,
        stoppedAt: null,
      },
    });
}

/** Records a heartbeat of `workerId`. */
export async function heartbeatWorker(db: Database, workerId: string): Promise<void> {
  await db
    .update(workers)
    .set({ lastHeartbeatAt: sql`now()` })
    .where(eq(workers.id, workerId));
}

/** Marks a worker as stopped (clean shutdown). */
export async function markWorkerStopped(db: Database, workerId: string): Promise<void> {
  await db
    .update(workers)
    .set({ online: false, stoppedAt: sql`now()` })
    .where(eq(workers.id, workerId));
}

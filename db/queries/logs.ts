import { and, asc, eq, sql } from 'drizzle-orm';
import type { Database } from '../client';
import { jobLogChunks, jobs } from '../schema';

/**
 * Appends chunk `seq` (0, 1, 2, …) of a job attempt's log. Fenced by the attempt: a chunk of an
 * attempt that no longer holds the job is dropped, and false is returned.
 */
export async function appendLogChunk(
  db: Database,
  chunk: { jobId: number; attempt: number; seq: number; data: string },
): Promise<boolean> {
  const rows = await db.execute(sql`
    insert into ${jobLogChunks} (job_id, attempt, seq, data)
    select ${chunk.jobId}, ${chunk.attempt}, ${chunk.seq}, ${chunk.data}
    where exists (select 1 from ${jobs} where id = ${chunk.jobId} and attempt = ${chunk.attempt})
    on conflict do nothing
    returning seq`);
  return rows.length > 0;
}

/**
 * The log of a job's attempt (the latest when `attempt` is omitted) from chunk `fromSeq` on:
 * the text and the next sequence number to ask for.
 */
export async function readLog(
  db: Database,
  jobId: number,
  options: { attempt?: number; fromSeq?: number } = {},
): Promise<{ attempt: number; text: string; nextSeq: number }> {
  let attempt = options.attempt;
  if (attempt === undefined) {
    const [job] = await db.select({ attempt: jobs.attempt }).from(jobs).where(eq(jobs.id, jobId));
    attempt = job?.attempt ?? 0;
  }
  const chunks = await db
    .select({ seq: jobLogChunks.seq, data: jobLogChunks.data })
    .from(jobLogChunks)
    .where(
      and(
        eq(jobLogChunks.jobId, jobId),
        eq(jobLogChunks.attempt, attempt),
        sql`${jobLogChunks.seq} >= ${options.fromSeq ?? 0}`,
      ),
    )
    .orderBy(asc(jobLogChunks.seq));
  const last = chunks.at(-1);
  return {
    attempt,
    text: chunks.map((chunk) => chunk.data).join(''),
    nextSeq: last ? last.seq + 1 : (options.fromSeq ?? 0),
  };
}

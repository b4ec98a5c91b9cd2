import { and, eq, isNull, sql } from 'drizzle-orm';
import type { Database } from '../client';
import {
  refusals,
  slackChannels,
  slackHolds,
  slackPosts,
  slackUsers,
  type SlackHeldRequest,
} from '../schema';

export type SlackHold = typeof slackHolds.$inferSelect;
export type SlackPostKind = (typeof slackPosts.$inferSelect)['kind'];

/** The channel's default repository (`owner/name`) set with `/build use`, or undefined. */
export async function getChannelRepo(db: Database, channelId: string): Promise<string | undefined> {
  const [row] = await db
    .select({ repo: slackChannels.repo })
    .from(slackChannels)
    .where(eq(slackChannels.channelId, channelId));
  return row?.repo;
}

/** Sets (or replaces) the channel's default repository. */
export async function setChannelRepo(
  db: Database,
  channelId: string,
  repo: string,
  setBy: string,
): Promise<void> {
  await db
    .insert(slackChannels)
    .values({ channelId, repo, setBy })
    .onConflictDoUpdate({
      target: slackChannels.channelId,
      set: { repo, setBy, updatedAt: sql`now()` },
    });
}

/** Whether the user wants a direct message when their build ends (default true). */
export async function wantsDirectMessages(db: Database, userId: string): Promise<boolean> {
  const [row] = await db
    .select({ on: slackUsers.directMessages })
    .from(slackUsers)
    .where(eq(slackUsers.userId, userId));
  return row?.on ?? true;
}

/** Turns the user's direct messages on or off. */
export async function setDirectMessages(db: Database, userId: string, on: boolean): Promise<void> {
  await db
    .insert(slackUsers)
    .values({ userId, directMessages: on })
    .onConflictDoUpdate({
      target: slackUsers.userId,
      set: { directMessages: on, updatedAt: sql`now()` },
    });
}

/**
 * Stores a held request; its message ts is set once posted (setHoldMessage). Returns the hold
 * with `created: false` when a hold of the same `requestId` exists (a retried command).
 */
export async function createSlackHold(
  db: Database,
  hold: { requestId: string; channelId: string; request: SlackHeldRequest },
): Promise<SlackHold & { created: boolean }> {
  const [row] = await db.insert(slackHolds).values(hold).onConflictDoNothing().returning();
  if (row) return { ...row, created: true };
  const [existing] = await db
    .select()
    .from(slackHolds)
    .where(eq(slackHolds.requestId, hold.requestId));
  return { ...existing!, created: false };
}

export async function setHoldMessage(db: Database, holdId: number, ts: string): Promise<void> {
  await db.update(slackHolds).set({ messageTs: ts }).where(eq(slackHolds.id, holdId));
}

export async function getSlackHold(db: Database, holdId: number): Promise<SlackHold | undefined> {
  const [row] = await db.select().from(slackHolds).where(eq(slackHolds.id, holdId));
  return row;
}

/**
 * Approves or dismisses a held request, once: returns the hold if this call decided it, or
 * undefined if it was already decided (a repeated click) or does not exist.
 */
export async function decideSlackHold(
  db: Database,
  holdId: number,
  state: 'approved' | 'dismissed',
  by: string,
): Promise<SlackHold | undefined> {
  const [row] = await db
    .update(slackHolds)
    .set({ state, decidedBy: by, decidedAt: sql`now()` })
    .where(and(eq(slackHolds.id, holdId), eq(slackHolds.state, 'held')))
    .returning();
  return row;
}

/** Puts a decided hold back to held (its build could not be made; it can be approved again). */
export async function reopenSlackHold(db: Database, holdId: number): Promise<void> {
  await db
    .update(slackHolds)
    .set({ state: 'held', decidedBy: null, decidedAt: null })
    .where(eq(slackHolds.id, holdId));
}

export async function setHoldBuild(db: Database, holdId: number, buildId: number): Promise<void> {
  await db.update(slackHolds).set({ buildId }).where(eq(slackHolds.id, holdId));
}

/**
 * Claims posting `kind` for a build (and job): true if this caller should post it now, false if
 * it was posted or is being posted. A failed post must be released (releaseSlackPost).
 */
export async function claimSlackPost(
  db: Database,
  buildId: number,
  kind: SlackPostKind,
  jobId = 0,
): Promise<boolean> {
  const claimed = await db
    .insert(slackPosts)
    .values({ buildId, kind, jobId })
    .onConflictDoNothing()
    .returning({ buildId: slackPosts.buildId });
  return claimed.length === 1;
}

/** Records the ts of a claimed post once Slack accepted it. */
export async function setSlackPostTs(
  db: Database,
  buildId: number,
  kind: SlackPostKind,
  jobId: number,
  ts: string,
): Promise<void> {
  await db
    .update(slackPosts)
    .set({ ts })
    .where(
      and(eq(slackPosts.buildId, buildId), eq(slackPosts.kind, kind), eq(slackPosts.jobId, jobId)),
    );
}

/** Drops a claim whose post failed, so the next pass posts it. */
export async function releaseSlackPost(
  db: Database,
  buildId: number,
  kind: SlackPostKind,
  jobId = 0,
): Promise<void> {
  await db
    .delete(slackPosts)
    .where(
      and(
        eq(slackPosts.buildId, buildId),
        eq(slackPosts.kind, kind),
        eq(slackPosts.jobId, jobId),
        isNull(slackPosts.ts),
      ),
    );
}

export type Refusal = typeof refusals.$inferSelect;

/** Records a refused request for the audit (who, what, which repository, why). */
export async function recordRefusal(
  db: Database,
  refusal: Pick<Refusal, 'frontEnd' | 'actor' | 'action' | 'reason'> & { repo?: string },
): Promise<void> {
  await db.insert(refusals).values(refusal);
}

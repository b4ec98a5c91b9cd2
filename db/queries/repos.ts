import { and, eq } from 'drizzle-orm';
import type { Database } from '../client';
import { repos } from '../schema';

export type Repo = typeof repos.$inferSelect;
export type NewRepo = Pick<Repo, 'owner' | 'name' | 'cloneUrl' | 'source'>;

/** Inserts or updates a repository by owner/name; returns the row. */
export async function upsertRepo(db: Pick<Database, 'insert'>, repo: NewRepo): Promise<Repo> {
  const [row] = await db
    .insert(repos)
    .values(repo)
    .onConflictDoUpdate({
      target: [repos.owner, repos.name],
      set: { cloneUrl: repo.cloneUrl, source: repo.source },
    })
    .returning();
  return row!;
}

/** The repository `owner/name`, or undefined. */
export async function findRepo(
  db: Database,
  owner: string,
  name: string,
): Promise<Repo | undefined> {
  const [row] = await db
    .select()
    .from(repos)
    .where(and(eq(repos.owner, owner), eq(repos.name, name)));
  return row;
}

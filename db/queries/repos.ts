import { and, eq, sql } from 'drizzle-orm';
import type { Database } from '../client';
import { repos, type RepoVisibility } from '../schema';
import { fromRowJson, type RowJson } from './rows';

export type Repo = typeof repos.$inferSelect;
export type NewRepo = Pick<Repo, 'owner' | 'name' | 'cloneUrl' | 'source'>;

/** Who is asking: private repositories are seen only by signed-in users and API tokens. */
export interface Audience {
  includePrivate: boolean;
}

/** `repos.visibility` allows `audience` to see it (no condition when it sees private ones). */
export const visibleTo = (audience: Audience) =>
  audience.includePrivate ? undefined : eq(repos.visibility, 'public');

/**
 * Inserts or updates a repository by owner/name; returns the row. The row is written only when
 * something changed, so concurrent builds of one repository do not wait on its lock
 * (crossdock_upsert_repo).
 */
export async function upsertRepo(db: Database, repo: NewRepo): Promise<Repo> {
  const [row] = await db.execute<{ repo: RowJson }>(sql`
    select to_jsonb(crossdock_upsert_repo(${repo.owner}, ${repo.name}, ${repo.cloneUrl}, ${repo.source})) as repo`);
  return fromRowJson(repos, row!.repo);
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

/** The repository with id `repoId`, or undefined. */
export async function getRepoById(db: Database, repoId: number): Promise<Repo | undefined> {
  const [row] = await db.select().from(repos).where(eq(repos.id, repoId));
  return row;
}

/**
 * Sets who may see repository `owner/name` in the portal. Returns false when there is no such
 * repository.
 */
export async function setRepoVisibility(
  db: Database,
  owner: string,
  name: string,
  visibility: RepoVisibility,
): Promise<boolean> {
  const rows = await db
    .update(repos)
    .set({ visibility })
    .where(and(eq(repos.owner, owner), eq(repos.name, name)))
    .returning({ id: repos.id });
  return rows.length > 0;
}

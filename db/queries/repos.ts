import { and, eq, sql } from 'drizzle-orm';
import type { Database } from '../client';
import { repos } from '../schema';
import { fromRowJson, type RowJson } from './rows';

export type Repo = typeof repos.$inferSelect;
export type NewRepo = Pick<Repo, 'owner' | 'name' | 'cloneUrl' | 'source'>;

/**
 * Inserts or updates a repository by owner/name; returns the row. The row is written only when
 * something changed, so concurrent builds of one repository do not wait on its lock.
 */
export async function upsertRepo(db: Pick<Database, 'execute'>, repo: NewRepo): Promise<Repo> {
  const [row] = await db.execute<{ repo: RowJson }>(sql`
    with written as (
      insert into ${repos} (owner, name, clone_url, source)
      values (${repo.owner}, ${repo.name}, ${repo.cloneUrl}, ${repo.source})
      on conflict (owner, name) do update set clone_url = excluded.clone_url, source = excluded.source
      where (${repos.cloneUrl}, ${repos.source}) is distinct from (excluded.clone_url, excluded.source)
      returning *
    )
    select to_jsonb(written) as repo from written
    union all
    select to_jsonb(r) from ${repos} r where owner = ${repo.owner} and name = ${repo.name}
      and not exists (select 1 from written)`);
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

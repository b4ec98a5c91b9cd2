import { fileURLToPath } from 'node:url';
import { drizzle, type PostgresJsDatabase } from 'drizzle-orm/postgres-js';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import * as schema from './schema';

export type Database = PostgresJsDatabase<typeof schema> & { $client: postgres.Sql };

const MIGRATIONS = fileURLToPath(new URL('./migrations', import.meta.url));
/** Arbitrary key of the advisory lock that serialises migrations of concurrent starts. */
const MIGRATION_LOCK = 7_340_552_001;

export interface ConnectOptions {
  /** Connections in the pool at most; 10 by default. */
  max?: number;
  /**
   * Plan the pool's statements for any parameters (PostgreSQL's plan_cache_mode =
   * force_generic_plan). A worker's named prepared statements, the claim above all, are then
   * planned once per connection instead of at every call: PostgreSQL otherwise keeps planning
   * the claim for its parameters (its generic plan looks dearer to the planner, though it is the
   * same index scan), which cost about 0.9 ms of CPU per claim, a quarter of PostgreSQL's CPU at
   * 8 slots (docs/decisions/0004-queue-functions-in-sql.md). Only for pools whose statements are
   * all key lookups and queue operations, as a worker's are.
   */
  genericPlans?: boolean;
}

/**
 * Opens a pool of connections to `url` (postgres://user:password@host:port/db). Close it with
 * `db.$client.end()`.
 */
export function connect(url: string, options: ConnectOptions = {}): Database {
  const sql = postgres(url, {
    max: options.max ?? 10,
    onnotice: () => {},
    connection: options.genericPlans ? { plan_cache_mode: 'force_generic_plan' } : {},
  });
  return drizzle(sql, { schema }) as Database;
}

/**
 * Applies the migrations in db/migrations that `url` lacks. Safe to call from several processes
 * at once: a session advisory lock serialises them.
 */
export async function migrateDatabase(url: string): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await sql`select pg_advisory_lock(${MIGRATION_LOCK})`;
    await migrate(drizzle(sql), { migrationsFolder: MIGRATIONS });
    await sql`select pg_advisory_unlock(${MIGRATION_LOCK})`;
  } finally {
    await sql.end();
  }
}

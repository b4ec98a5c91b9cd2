import { fileURLToPath } from 'node:url';
import { drizzle, type PostgresJsDatabase } from 'drizzle-orm/postgres-js';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import * as schema from './schema';

export type Database = PostgresJsDatabase<typeof schema> & { $client: postgres.Sql };

const MIGRATIONS = fileURLToPath(new URL('./migrations', import.meta.url));
/** Arbitrary key of the advisory lock that serialises migrations of concurrent starts. */
const MIGRATION_LOCK = 7_340_552_001;

/**
 * Opens a pool of at most `max` connections to `url` (postgres://user:password@host:port/db).
 * Close it with `db.$client.end()`.
 */
export function connect(url: string, options: { max?: number } = {}): Database {
  const sql = postgres(url, { max: options.max ?? 10, onnotice: () => {} });
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

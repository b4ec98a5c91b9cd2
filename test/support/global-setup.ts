import postgres from 'postgres';
import type { TestProject } from 'vitest/node';
import { migrateDatabase } from '../../db/client';
import { databaseUrlFor, loadServiceEnv, testDatabaseName } from './services';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The migrated database this run's test files copy (see createTestDatabase). */
    templateDatabase: string;
  }
}

/**
 * Vitest global setup: creates a migrated template database for this run, which test files copy,
 * and drops it when the run ends. Each run has its own, so two runs at once do not disturb each
 * other; databases left by runs that were killed are dropped here.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const env = loadServiceEnv();
  const name = testDatabaseName('template_');
  const admin = postgres(env.databaseUrl, { max: 1, onnotice: () => {} });
  // Databases of runs that were killed: older than a day (see testDatabaseName) and unused.
  const stale = await admin<{ datname: string }[]>`
    select d.datname from pg_database d
    where d.datname ~ '^crossdock_test_'
      and coalesce(substring(d.datname from '^crossdock_test_(?:template_)?([0-9]{10})_')::bigint, 0)
          < extract(epoch from now()) - 86400
      and not exists (select 1 from pg_stat_activity a where a.datname = d.datname)`;
  for (const { datname } of stale) await admin.unsafe(`drop database if exists ${datname}`);
  await admin.unsafe(`create database ${name}`);
  await migrateDatabase(databaseUrlFor(env.databaseUrl, name));
  project.provide('templateDatabase', name);
  return async () => {
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end();
  };
}

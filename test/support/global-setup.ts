import postgres from 'postgres';
import { migrateDatabase } from '../../db/client';
import { TEMPLATE_DATABASE, databaseUrlFor, loadServiceEnv } from './services';

/** Vitest global setup: (re)creates the migrated template database that test files copy. */
export default async function setup(): Promise<void> {
  const env = loadServiceEnv();
  const admin = postgres(env.databaseUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`drop database if exists ${TEMPLATE_DATABASE} with (force)`);
  await admin.unsafe(`create database ${TEMPLATE_DATABASE}`);
  await admin.end();
  await migrateDatabase(databaseUrlFor(env.databaseUrl, TEMPLATE_DATABASE));
}

import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { inject } from 'vitest';
import type { Client } from 'minio';
import { readEnvFile } from '../../core/config';
import { createStorageClient, ensureBucket, type StorageOptions } from '../../core/storage';
import { connect, type Database } from '../../db/client';

/**
 * A name for a test database: `crossdock_test_<kind><unix seconds>_<hex>`. The time lets a later
 * run drop the databases of runs that were killed (test/support/global-setup.ts).
 */
export function testDatabaseName(kind = ''): string {
  return `crossdock_test_${kind}${Math.floor(Date.now() / 1000)}_${randomBytes(6).toString('hex')}`;
}

export interface ServiceEnv {
  /** The main database's URL; tests use it only to create and drop their own databases. */
  databaseUrl: string;
  storage: StorageOptions;
}

/**
 * The local services' addresses and credentials, from the file deploy/setup.sh writes
 * ($CROSSDOCK_STATE_DIR/crossdock.env, by default /var/lib/crossdock/crossdock.env).
 */
export function loadServiceEnv(): ServiceEnv {
  const file = `${process.env.CROSSDOCK_STATE_DIR ?? '/var/lib/crossdock'}/crossdock.env`;
  const values = readEnvFile(file);
  if (!values.DATABASE_URL)
    throw new Error(`${file} is missing: run \`bash deploy/setup.sh\` first`);
  return {
    databaseUrl: values.DATABASE_URL!,
    storage: {
      endpoint: values.S3_ENDPOINT!,
      accessKey: values.S3_ACCESS_KEY!,
      secretKey: values.S3_SECRET_KEY!,
      bucket: values.S3_BUCKET!,
    },
  };
}

export function databaseUrlFor(baseUrl: string, database: string): string {
  const url = new URL(baseUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

export interface TestDatabase {
  url: string;
  db: Database;
  drop(): Promise<void>;
}

/** A fresh database copied from the migrated template; `drop()` closes and removes it. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const env = loadServiceEnv();
  const name = testDatabaseName();
  const admin = postgres(env.databaseUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name} template ${inject('templateDatabase')}`);
  await admin.end();
  const url = databaseUrlFor(env.databaseUrl, name);
  const db = connect(url, { max: 5 });
  return {
    url,
    db,
    async drop() {
      await db.$client.end({ timeout: 5 });
      const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} });
      await sql.unsafe(`drop database if exists ${name} with (force)`);
      await sql.end();
    },
  };
}

export interface TestBucket {
  storage: StorageOptions;
  client: Client;
  /** Object keys currently in the bucket. */
  keys(prefix?: string): Promise<string[]>;
  remove(): Promise<void>;
}

/**
 * A fresh bucket on the local MinIO, or on the S3 endpoint of `on`; `remove()` deletes its
 * objects and the bucket.
 */
export async function createTestBucket(on?: StorageOptions): Promise<TestBucket> {
  const storage = {
    ...(on ?? loadServiceEnv().storage),
    bucket: `crossdock-test-${randomBytes(6).toString('hex')}`,
  };
  const client = createStorageClient(storage);
  await ensureBucket(client, storage.bucket);
  const keys = async (prefix = '') => {
    const found: string[] = [];
    for await (const item of client.listObjectsV2(storage.bucket, prefix, true)) {
      if (item.name) found.push(item.name);
    }
    return found;
  };
  return {
    storage,
    client,
    keys,
    async remove() {
      await client.removeObjects(storage.bucket, await keys());
      await client.removeBucket(storage.bucket);
    },
  };
}

import { parseArgs } from 'node:util';
import { localStackEnv } from '../../core/config';
import { formatBytes, plural } from '../../core/format';
import { createLogger } from '../../core/logger';
import { formatRetentionDate } from '../../core/retention';
import { createStorageClient } from '../../core/storage';
import { connect, migrateDatabase } from '../../db/client';
import { setBuildPinned } from '../../db/queries/retention';
import { loadPortalConfig } from '../config';
import { runCleanup, type CleanupResult } from './cleanup';
import { loadRetentionConfig } from './config';

const HELP = `npm run cleanup -- [--dry-run]
    Deletes the artifacts (objects and rows) of every build whose retention has expired
    (docs/retention.md) and prints each build. With --dry-run (or
    CROSSDOCK_RETENTION_DRY_RUN=true) prints what it would delete and deletes nothing.
npm run cleanup -- --pin <build id>
npm run cleanup -- --unpin <build id>
    Pins a build (its artifacts are kept whatever the rules say) or unpins it.

Reads the portal's configuration (DATABASE_URL, S3_*) and CROSSDOCK_RETENTION_* from the
environment, over the local stack's env file. Exit status: 0 done (or another cleanup was
running), 1 some builds' objects could not be deleted (they are kept; run again), 2 bad usage.`;

function printResult(result: CleanupResult): void {
  if (!result.ran) {
    console.log('another cleanup is running; nothing done');
    return;
  }
  const verb = result.dryRun ? 'would delete' : 'deleted';
  for (const build of result.cleaned) {
    const expired = build.expiresAt ? `, expired ${formatRetentionDate(build.expiresAt)}` : '';
    console.log(
      `${verb} build #${build.buildId} ${build.repo} ${build.ref} (${build.class}${expired}): ` +
        `${plural(build.artifacts, 'artifact')}, ${plural(build.objects, 'object')}, ` +
        formatBytes(build.bytes),
    );
  }
  console.log(
    `${verb} the artifacts of ${plural(result.builds, 'build')}: ` +
      `${plural(result.artifacts, 'artifact')}, ${plural(result.objects, 'object')}, ` +
      formatBytes(result.bytes) +
      (result.failed > 0 ? `; ${plural(result.failed, 'build')} failed (kept; see the log)` : ''),
  );
}

async function main(): Promise<number> {
  let values: { 'dry-run'?: boolean; pin?: string; unpin?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        'dry-run': { type: 'boolean' },
        pin: { type: 'string' },
        unpin: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const pinTarget = values.pin ?? values.unpin;
  if (pinTarget !== undefined && (!/^\d{1,15}$/.test(pinTarget) || (values.pin && values.unpin))) {
    console.error(`--pin and --unpin take one build id\n\n${HELP}`);
    return 2;
  }
  const env = localStackEnv();
  const portal = loadPortalConfig(env);
  const retention = loadRetentionConfig(env);
  const log = createLogger({ name: 'cleanup', level: portal.logLevel });
  await migrateDatabase(portal.databaseUrl);
  const db = connect(portal.databaseUrl, { max: 3 });
  try {
    if (pinTarget !== undefined) {
      const build = await setBuildPinned(db, Number(pinTarget), values.pin !== undefined);
      if (!build) {
        console.error(`no build #${pinTarget}`);
        return 1;
      }
      console.log(`build #${build.id} ${build.pinned ? 'pinned' : 'unpinned'}`);
      if (build.artifactsDeletedAt)
        console.log(
          `its artifacts were already deleted on ${formatRetentionDate(build.artifactsDeletedAt)}`,
        );
      return 0;
    }
    const result = await runCleanup({
      db,
      storage: createStorageClient(portal.storage),
      bucket: portal.storage.bucket,
      log,
      now: new Date(),
      policy: retention.policy,
      dryRun: Boolean(values['dry-run']) || retention.dryRun,
    });
    printResult(result);
    return result.failed > 0 ? 1 : 0;
  } finally {
    await db.$client.end({ timeout: 5 });
  }
}

process.exitCode = await main();

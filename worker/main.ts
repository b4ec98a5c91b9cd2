import { hostname } from 'node:os';
import Docker from 'dockerode';
import { createLogger } from '../core/logger';
import { createStorageClient, ensureBucket } from '../core/storage';
import { connect, migrateDatabase } from '../db/client';
import { loadWorkerConfig } from './config';
import { githubCloneCredentials } from './github-token';
import { DockerRunner } from './runner';
import { Worker } from './worker';

const config = loadWorkerConfig();
const log = createLogger({ name: 'worker', level: config.logLevel }).child({
  workerId: config.workerId,
});
await migrateDatabase(config.databaseUrl);
const db = connect(config.databaseUrl, { max: config.slots + 3, genericPlans: true });
const storage = createStorageClient(config.storage);
await ensureBucket(storage, config.storage.bucket);
const worker = new Worker(
  {
    worker: {
      id: config.workerId,
      host: hostname(),
      pid: process.pid,
      platforms: config.platforms,
      emulatedPlatforms: config.emulatedPlatforms,
      labels: config.labels,
      slots: config.slots,
      heartbeatSeconds: config.heartbeatSeconds,
    },
    pollSeconds: config.pollSeconds,
    workDir: config.workDir,
    bucket: config.storage.bucket,
    uploadRetry: config.uploadRetry,
    secrets: config.secrets,
    cloneCredentials: config.githubApp ? githubCloneCredentials(config.githubApp) : undefined,
    limits: config.limits,
  },
  {
    db,
    storage,
    runner: new DockerRunner(
      new Docker({ socketPath: config.dockerSocket }),
      config.stopGraceSeconds,
    ),
    log,
  },
);
// First SIGTERM/SIGINT: finish the running jobs, claim no more. Second: stop them and hand them
// back to the queue.
let signals = 0;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    signals += 1;
    if (signals === 1) {
      log.info({ signal }, 'finishing running jobs, claiming no more');
      worker.stop();
    } else {
      log.warn({ signal }, 'stopping running jobs and handing them back to the queue');
      worker.stopNow();
    }
  });
}
await worker.run();
await db.$client.end();

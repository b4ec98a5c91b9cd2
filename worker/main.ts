import { hostname } from 'node:os';
import Docker from 'dockerode';
import { createLogger } from '../core/logger';
import { createStorageClient, ensureBucket } from '../core/storage';
import { connect, migrateDatabase } from '../db/client';
import { loadWorkerConfig } from './config';
import { DockerRunner } from './runner';
import { Worker } from './worker';

const config = loadWorkerConfig();
const log = createLogger({ name: 'worker', level: config.logLevel }).child({
  workerId: config.workerId,
});
await migrateDatabase(config.databaseUrl);
const db = connect(config.databaseUrl, { max: config.slots + 3 });
const storage = createStorageClient(config.storage);
await ensureBucket(storage, config.storage.bucket);
const worker = new Worker(
  {
    workerId: config.workerId,
    host: hostname(),
    platforms: config.platforms,
    slots: config.slots,
    heartbeatSeconds: config.heartbeatSeconds,
    pollSeconds: config.pollSeconds,
    workDir: config.workDir,
    bucket: config.storage.bucket,
  },
  { db, storage, runner: new DockerRunner(new Docker({ socketPath: config.dockerSocket })), log },
);
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    log.info({ signal }, 'finishing running jobs, claiming no more');
    worker.stop();
  });
}
await worker.run();
await db.$client.end();

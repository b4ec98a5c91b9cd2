import { serve } from '@hono/node-server';
import { createLogger } from '../core/logger';
import { createStorageClient, ensureBucket } from '../core/storage';
import { connect, migrateDatabase } from '../db/client';
import { createPortalApp } from './app';
import { loadPortalConfig } from './config';
import { startCleanupLoop } from './retention/cleanup';
import { loadRetentionConfig } from './retention/config';

const config = loadPortalConfig();
const retention = loadRetentionConfig();
const log = createLogger({ name: 'portal', level: config.logLevel });
await migrateDatabase(config.databaseUrl);
const db = connect(config.databaseUrl);
const storage = createStorageClient(config.storage);
await ensureBucket(storage, config.storage.bucket);
const app = createPortalApp({
  db,
  storage,
  bucket: config.storage.bucket,
  portalUrl: config.portalUrl,
  log,
  retentionPolicy: retention.policy,
  pageCache: config.pageCacheMs > 0 ? { ttlMs: config.pageCacheMs } : undefined,
  oidc: config.oidc,
  sessionHours: config.sessionHours,
  presign:
    config.downloads === 'redirect'
      ? {
          storage: createStorageClient({ ...config.storage, endpoint: config.storagePublicUrl }),
          seconds: config.presignSeconds,
        }
      : undefined,
});
// Artifacts past their retention are deleted (objects, then rows) every interval; 0: by cron.
const cleanup =
  retention.cleanupIntervalMs > 0
    ? startCleanupLoop({
        db,
        storage,
        bucket: config.storage.bucket,
        log: log.child({ component: 'retention' }),
        policy: retention.policy,
        dryRun: retention.dryRun,
        intervalMs: retention.cleanupIntervalMs,
      })
    : undefined;
const server = serve({ fetch: app.fetch, hostname: config.host, port: config.port }, (info) => {
  log.info({ address: `${info.address}:${info.port}`, url: config.portalUrl }, 'portal listening');
});
server.on('error', (error) => {
  log.fatal({ err: error }, 'portal server failed');
  process.exitCode = 1;
  void db.$client.end({ timeout: 5 });
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    log.info({ signal }, 'closing: finishing open requests, accepting no more');
    const cleanupStopped = cleanup?.stop();
    server.close(() => {
      void Promise.resolve(cleanupStopped)
        .then(() => db.$client.end({ timeout: 5 }))
        .then(() => log.info('portal stopped'));
    });
    // Downloads still streaming after the grace period are cut off.
    setTimeout(() => {
      if ('closeAllConnections' in server) server.closeAllConnections();
    }, 10_000).unref();
  });
}

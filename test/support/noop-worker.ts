/**
 * A worker process whose jobs do nothing: the real Dispatcher (claims, leases, heartbeats) with
 * a handler that records the job as succeeded (batched, as the Docker worker does) and appends its id to NOOP_OUTPUT, one per line.
 * For tests and benchmarks of the queue alone. Environment: DATABASE_URL, WORKER_ID,
 * WORKER_SLOTS, WORKER_HEARTBEAT_SECONDS, NOOP_OUTPUT. SIGTERM stops it.
 */
import { appendFileSync } from 'node:fs';
import { createLogger } from '../../core/logger';
import { connect } from '../../db/client';
import { completeJobs } from '../../db/queries/jobs';
import { CompletionBatcher } from '../../worker/completions';
import { Dispatcher } from '../../worker/dispatcher';
import { workerRegistration } from './queue';

const env = process.env;
const slots = Number(env.WORKER_SLOTS ?? 1);
const db = connect(env.DATABASE_URL!, { max: slots + 3, genericPlans: true });
const log = createLogger({ name: 'noop-worker', level: 'warn' });
const completions = new CompletionBatcher((batch) => completeJobs(db, batch));
const dispatcher = new Dispatcher(
  {
    worker: workerRegistration(env.WORKER_ID!, {
      host: 'noop',
      version: 'noop',
      slots,
      heartbeatSeconds: Number(env.WORKER_HEARTBEAT_SECONDS ?? 5),
    }),
    pollSeconds: 1,
  },
  {
    db,
    log,
    handler: async ({ job }, _signal, releaseSlot) => {
      releaseSlot(); // as the Docker worker does once its container is gone
      const recorded = await completions.complete(
        { jobId: job.id, attempt: job.attempt },
        { state: 'succeeded', exitCode: 0 },
      );
      if (recorded) appendFileSync(env.NOOP_OUTPUT!, `${job.id}\n`);
    },
  },
);
process.once('SIGTERM', () => dispatcher.stop());
await dispatcher.run();
await db.$client.end();

import type { Database } from '../../db/client';
import { createBuild, type NewBuild } from '../../db/queries/builds';
import type { WorkerRegistration } from '../../db/queries/workers';

/**
 * A worker as registerWorker and the Dispatcher take it: one slot serving linux/amd64 natively,
 * no labels or images, a heartbeat every 60 s; `overrides` set what a test or benchmark cares
 * about.
 */
export function workerRegistration(
  id: string,
  overrides: Partial<WorkerRegistration> = {},
): WorkerRegistration {
  return {
    id,
    host: 'test-host',
    pid: process.pid,
    version: 'test',
    platforms: ['linux/amd64'],
    emulatedPlatforms: [],
    labels: [],
    slots: 1,
    heartbeatSeconds: 60,
    images: {},
    ...overrides,
  };
}

/**
 * Queues `count` builds of repository acme/`repo`, each at its own commit with one no-op
 * linux/amd64 job, as createBuild stores them. For tests of the queue alone.
 */
export async function queueNoopBuilds(db: Database, repo: string, count: number): Promise<void> {
  for (let index = 0; index < count; index += 1)
    await createBuild(db, {
      repo: { owner: 'acme', name: repo, cloneUrl: '/tmp/none.git', source: 'git' },
      sha: `${Date.now()}${index}`.padStart(40, '0'),
      ref: 'main',
      trigger: 'cli',
      requester: 'cli:test',
      recipeDigest: 'r',
      jobs: [
        {
          target: 'amd64',
          platform: 'linux/amd64',
          toolchains: ['native'],
          image: 'builder:1',
          spec: { script: 'true', artifacts: [], env: {}, network: false, timeoutMinutes: 5 },
        },
      ],
    });
}

let requests = 0;
/**
 * A build request of repository acme/`repo` (a test's own) at a fresh sha on main, with no jobs
 * unless `overrides` gives them, as createBuild takes it.
 */
export function buildRequest(repo: string, overrides: Partial<NewBuild> = {}): NewBuild {
  requests += 1;
  return {
    repo: { owner: 'acme', name: repo, cloneUrl: '/tmp/none.git', source: 'git' },
    sha: `${process.pid.toString(16)}${requests.toString(16).padStart(8, '0')}`.padStart(40, '0'),
    ref: 'main',
    branch: 'main',
    trigger: 'cli',
    requester: 'cli:test',
    recipeDigest: 'r'.repeat(64),
    jobs: [],
    ...overrides,
  };
}

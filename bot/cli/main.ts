import { parseArgs } from 'node:util';
import { parseRepoName, USAGE } from '../../core/command';
import { CrossdockError, reportError } from '../../core/errors';
import { formatBytes, formatToolchain } from '../../core/format';
import { portalUrls } from '../../core/urls';
import { connect, migrateDatabase, type Database } from '../../db/client';
import { CHANNELS } from '../../db/notify';
import { cancelBuild } from '../../db/queries/jobs';
import { setRepoVisibility, upsertRepo } from '../../db/queries/repos';
import { listWorkers, queueDepth, workerState } from '../../db/queries/workers';
import { loadBuildView } from '../build-view';
import { requestBuild } from '../request-build';
import { createSourceDirectory } from '../sources/directory';
import { loadCliConfig, type CliConfig } from './config';

const HELP = `crossdock — the command-line front end of Crossdock

  crossdock build <target>[,<target>…] <ref> [in owner/repo] [--force] [--wait]
      Requests a build, in the same grammar as Slack's /build. With --wait, follows it to the
      end, prints the artifacts' download URLs, and exits 0 only if it succeeded.
  crossdock cancel <build id>
      Cancels a build: queued jobs at once; running ones are stopped by their workers (SIGTERM,
      then SIGKILL after the grace period) and end canceled.
  crossdock workers
      Lists the workers (live, lost, stopped) with their platforms, labels and running jobs.
  crossdock queue
      Shows queued and running jobs per platform, and the workers and free slots serving each.
  crossdock repo add <owner/repo> --git-url <clone URL>
      Registers a plain git repository (no GitHub): refs and .crossdock.yml are read with git.
  crossdock repo visibility <owner/repo> public|private
      Who sees the repository in the portal: anyone, or only signed-in users and API tokens.

${USAGE}`;

async function waitForBuild(db: Database, buildId: number, config: CliConfig): Promise<boolean> {
  let wake: () => void = () => {};
  const listener = await db.$client.listen(
    CHANNELS.builds,
    (payload) => payload === String(buildId) && wake(),
  );
  let last = '';
  try {
    for (;;) {
      const view = (await loadBuildView(db, buildId))!;
      const line = view.jobs
        .map((job) => {
          const reason = view.queueReasons.get(job.id);
          return `${job.target}: ${job.state}${reason ? ` (${reason})` : ''}`;
        })
        .join(', ');
      if (line !== last) console.log(`build #${buildId} ${view.build.state} (${line})`);
      last = line;
      if (!['queued', 'running'].includes(view.build.state)) {
        for (const job of view.jobs) {
          for (const artifact of view.artifactsByJob.get(job.id) ?? []) {
            console.log(
              `  ${artifact.name}  ${formatBytes(artifact.size)}  sha256 ${artifact.sha256}`,
            );
            console.log(
              `    ${portalUrls.artifactDownload(config.portalUrl, artifact.id, artifact.name)}`,
            );
          }
          const tail = view.logTails.get(job.id);
          if (tail) console.log(`  ${job.target} failed (${job.error}); last lines:\n${tail}`);
        }
        console.log(
          `portal: ${portalUrls.commit(config.portalUrl, view.repo.owner, view.repo.name, view.build.sha)}`,
        );
        return view.build.state === 'succeeded';
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 2000);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  } finally {
    await listener.unlisten();
  }
}

async function cancel(db: Database, id: string | undefined, user: string): Promise<number> {
  if (!id || !/^\d{1,15}$/.test(id))
    throw new CrossdockError(
      'bad-command',
      'Which build? `crossdock cancel <build id>`, e.g. `crossdock cancel 42`.',
    );
  const result = await cancelBuild(db, Number(id), `cli:${user}`);
  if (!result) throw new CrossdockError('not-found', `There is no build #${id}.`);
  console.log(
    `build #${id}: ${result.canceled} queued job(s) canceled, ${result.stopping} running job(s) being stopped`,
  );
  return 0;
}

async function printWorkers(db: Database): Promise<number> {
  const workers = await listWorkers(db);
  if (workers.length === 0) console.log('no worker has registered yet');
  for (const worker of workers) {
    const status = workerState(worker);
    const emulated = worker.emulatedPlatforms.length
      ? ` (+ emulated ${worker.emulatedPlatforms.join(', ')})`
      : '';
    const labels = worker.labels.length ? `, labels ${worker.labels.join(', ')}` : '';
    console.log(
      `${worker.id}  ${status}  ${worker.host}  ${worker.platforms.join(', ')}${emulated}${labels}  ` +
        `${worker.runningJobIds.length}/${worker.slots} slots${worker.runningJobIds.length ? ` (jobs ${worker.runningJobIds.join(', ')})` : ''}  ` +
        `last heartbeat ${worker.lastHeartbeatAt.toISOString()}`,
    );
  }
  return 0;
}

async function printQueue(db: Database): Promise<number> {
  const depth = await queueDepth(db);
  if (depth.length === 0) console.log('nothing is queued or running');
  for (const row of depth)
    console.log(
      `${row.runPlatform}  queued ${row.queued}  running ${row.running}  ` +
        `workers ${row.workers}  free slots ${row.freeSlots}` +
        (row.queued > 0 && row.workers === 0 ? `  — no worker serves ${row.runPlatform}` : ''),
    );
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      wait: { type: 'boolean', default: false },
      force: { type: 'boolean', default: false },
      'git-url': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [verb, ...rest] = positionals;
  if (values.help || !verb) {
    console.log(HELP);
    return values.help ? 0 : 2;
  }
  const config = loadCliConfig();
  await migrateDatabase(config.databaseUrl);
  const db = connect(config.databaseUrl, { max: 2 });
  try {
    if (verb === 'repo' && rest[0] === 'add' && rest[1]) {
      const repo = parseRepoName(rest[1]);
      if (!values['git-url'])
        throw new CrossdockError('bad-command', 'Give the clone URL: --git-url <URL>.');
      await upsertRepo(db, {
        owner: repo.owner,
        name: repo.name,
        cloneUrl: values['git-url'],
        source: 'git',
      });
      console.log(`registered ${repo.owner}/${repo.name} (plain git, ${values['git-url']})`);
      return 0;
    }
    if (verb === 'repo' && rest[0] === 'visibility' && rest[1]) {
      const repo = parseRepoName(rest[1]);
      const visibility = rest[2];
      if (visibility !== 'public' && visibility !== 'private')
        throw new CrossdockError('bad-command', 'Say `public` or `private` after the repository.');
      if (!(await setRepoVisibility(db, repo.owner, repo.name, visibility)))
        throw new CrossdockError(
          'bad-command',
          `No repository ${repo.owner}/${repo.name}: register it first (\`crossdock repo add\`) or build it once.`,
        );
      console.log(`${repo.owner}/${repo.name} is now ${visibility} in the portal`);
      return 0;
    }
    if (verb === 'cancel') return await cancel(db, rest[0], config.user);
    if (verb === 'workers') return await printWorkers(db);
    if (verb === 'queue') return await printQueue(db);
    if (verb !== 'build')
      throw new CrossdockError('bad-command', `Unknown command \`${verb}\`.\n\n${HELP}`);
    const sources = createSourceDirectory({
      db,
      github: config.github,
      gitCacheDir: config.gitCacheDir,
    });
    const result = await requestBuild(
      { db, sources },
      {
        text: [...rest, ...(values.force ? ['--force'] : [])].join(' '),
        trigger: 'cli',
        requester: `cli:${config.user}`,
      },
    );
    console.log(
      `build #${result.build.id} queued: ${result.jobs.map((job) => `${job.target} (${job.platform}, ${formatToolchain(job)})`).join(', ')} ` +
        `of ${result.repo.owner}/${result.repo.name} at ${result.build.sha}`,
    );
    console.log(`follow it: ${portalUrls.build(config.portalUrl, result.build.id)}`);
    if (!values.wait) return 0;
    return (await waitForBuild(db, result.build.id, config)) ? 0 : 1;
  } finally {
    await db.$client.end();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    const report = reportError(error);
    console.error(report.code === 'internal' ? error : `crossdock: ${report.reply}`);
    process.exit(report.code === 'internal' ? 70 : 2);
  },
);

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrateDatabase } from '../../db/client';
import { waitFor } from '../fakes/http';

/** Tests that stop PostgreSQL or MinIO get instances of their own, so other test files go on. */

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const PG_BIN = '/usr/lib/postgresql/15/bin';

/**
 * A PostgreSQL 15 cluster of its own (initdb in a temporary directory, owned by the `postgres`
 * system user, trust authentication, listening on 127.0.0.1 only), with a migrated database.
 * `restart()` is `pg_ctl restart -m fast`: every connection is dropped.
 */
export async function startPrivatePostgres() {
  const dir = mkdtempSync(join(tmpdir(), 'crossdock-pg-'));
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }));
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }));
  chownSync(dir, uid, gid);
  const data = join(dir, 'data');
  const port = await freePort();
  const asPostgres = (...args: string[]) =>
    execFileSync('runuser', ['-u', 'postgres', '--', ...args], { encoding: 'utf8' });
  asPostgres(`${PG_BIN}/initdb`, '-D', data, '-A', 'trust', '-U', 'crossdock', '--no-sync');
  const pgCtl = (...args: string[]) =>
    asPostgres(
      `${PG_BIN}/pg_ctl`,
      '-D',
      data,
      '-l',
      join(dir, 'postgres.log'),
      '-o',
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`,
      '-w',
      ...args,
    );
  pgCtl('start');
  execFileSync(`${PG_BIN}/createdb`, [
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    '-U',
    'crossdock',
    'crossdock',
  ]);
  const url = `postgres://crossdock@127.0.0.1:${port}/crossdock`;
  await migrateDatabase(url);
  return {
    url,
    restart: () => void pgCtl('-m', 'fast', 'restart'),
    stop() {
      try {
        pgCtl('-m', 'immediate', 'stop');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/**
 * A MinIO server of its own (the `minio` binary deploy/setup.sh installs) on 127.0.0.1 with a
 * temporary data directory. `kill()` is SIGKILL (an outage); `start()` brings it back on the
 * same port and data.
 */
export async function startPrivateMinio() {
  const dir = mkdtempSync(join(tmpdir(), 'crossdock-minio-'));
  const port = await freePort();
  const storage = {
    endpoint: `http://127.0.0.1:${port}`,
    accessKey: 'crossdock-test',
    secretKey: `secret-${port}-${process.pid}`,
    bucket: 'crossdock-outage',
  };
  let server: ChildProcess | undefined;
  const start = async () => {
    server = spawn('minio', ['server', dir, '--address', `127.0.0.1:${port}`, '--quiet'], {
      env: {
        PATH: process.env.PATH,
        HOME: dir,
        MINIO_ROOT_USER: storage.accessKey,
        MINIO_ROOT_PASSWORD: storage.secretKey,
        MINIO_BROWSER: 'off',
      },
      stdio: 'ignore',
    });
    await waitFor(
      'MinIO to come up',
      async () => {
        const response = await fetch(`${storage.endpoint}/minio/health/live`).catch(
          () => undefined,
        );
        return response?.ok ? true : undefined;
      },
      30_000,
    );
  };
  const kill = async () => {
    if (!server || server.exitCode !== null || server.signalCode !== null) return;
    const exited = new Promise((resolve) => server!.once('exit', resolve));
    server.kill('SIGKILL');
    await exited;
  };
  await start();
  return {
    storage,
    /** The data directory; `.minio.sys/multipart` in it holds multipart uploads in progress. */
    dir,
    start,
    kill,
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// The start-up checks of server/src/startup.ts in-process: the data directory's lock (a live owner refuses, a dead
// one's lock is taken over, our own release leaves another's lock alone), the port probe, the one-line messages.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import t from 'tap';
import pg from 'pg';
import { postgresBinaries, startEmbeddedPostgres } from '../../server/src/db/embedded-postgres.js';
import { StartupError, checkPortFree, lockDataDir, processAlive, processStartTime, redactUrl, startupMessage } from '../../server/src/startup.js';

const dir = () => {
  const d = mkdtempSync(join(tmpdir(), 'zstack-lock-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
};

t.test('the data directory lock', async (t) => {
  const d = dir();
  const lock = lockDataDir(d);
  t.match(readFileSync(lock.file, 'utf8'), new RegExp(`^${process.pid}\\n`), 'holds our pid');
  // A live other owner (pid 1, its real start time) refuses the start.
  writeFileSync(lock.file, `1\n${processStartTime(1) ?? ''}\n`);
  t.throws(
    () => lockDataDir(d),
    new StartupError(`the data directory ${d} is in use by another ZStack-TS server (pid 1): stop it, or set ZSTACK_DATA_DIR to another directory`),
  );
  lock.release();
  t.ok(existsSync(lock.file), "release leaves another owner's lock alone");

  // A dead owner's lock (a pid that exited) is taken over.
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
  t.notOk(processAlive(Number(dead)), 'the owner is gone');
  writeFileSync(lock.file, `${dead}\n123\n`);
  const again = lockDataDir(d);
  t.match(readFileSync(again.file, 'utf8'), new RegExp(`^${process.pid}\\n`), 'a dead owner’s lock is taken over');
  again.release();
  t.notOk(existsSync(again.file), 'released');

  // A live pid with another start time is a reused pid: the lock is stale.
  writeFileSync(lock.file, `1\nnot-its-start-time\n`);
  const reused = lockDataDir(d);
  t.match(readFileSync(reused.file, 'utf8'), new RegExp(`^${process.pid}\\n`), 'a reused pid does not hold the lock');
  reused.release();

  // An empty lock file (a start killed between create and write) is stale too.
  writeFileSync(lock.file, '');
  lockDataDir(d).release();
  t.notOk(existsSync(lock.file));

  // A data directory that cannot be created.
  const file = join(d, 'a-file');
  writeFileSync(file, '');
  t.throws(() => lockDataDir(join(file, 'data')), /./);
  t.notOk(processAlive(-1), 'no such pid');
  t.equal(processStartTime(-1), undefined);
});

t.test('the port probe', async (t) => {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  await t.rejects(
    checkPortFree('127.0.0.1', port),
    new StartupError(`port ${port} on 127.0.0.1 is already in use (another ZStack-TS server?): stop what holds it, or set ZSTACK_PORT to a free port`),
  );
  await new Promise((r) => srv.close(r));
  await t.resolves(checkPortFree('127.0.0.1', port), 'free once released');
  await t.resolves(checkPortFree('127.0.0.1', 0), 'port 0: any free port');
  await t.rejects(checkPortFree('192.0.2.1', port), /cannot listen on 192\.0\.2\.1: it is not an address of this machine/);
});

t.test('one-line messages', async (t) => {
  t.equal(startupMessage(new StartupError('ours')), 'ours');
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1\n    at x'), { code: 'ECONNREFUSED' });
  t.equal(
    startupMessage(refused, { databaseUrl: 'postgres://u:pw@127.0.0.1:1/db' }),
    'cannot reach the database at DATABASE_URL (postgres://u:***@127.0.0.1:1/db): connect ECONNREFUSED 127.0.0.1:1. Start PostgreSQL or fix DATABASE_URL (unset it to use the embedded database).',
  );
  t.equal(
    startupMessage(Object.assign(new AggregateError([new Error('inner failure')], ''), { code: 'EX' })),
    'inner failure (EX)',
    'an AggregateError: its first error',
  );
  t.equal(startupMessage(new Error('first\nsecond')), 'first', 'the first line only');
  t.equal(startupMessage('text'), 'text');
  t.equal(redactUrl('not a url'), '(unparsable URL)');
  t.equal(redactUrl('postgres://h/db'), 'postgres://h/db');
});

let missing: string | undefined;
try {
  postgresBinaries();
} catch (e) {
  missing = (e as Error).message;
}

t.test('the embedded PostgreSQL: a long data directory path, an orphan taken over, a foreign directory refused', { skip: missing }, async (t) => {
  // Deeper than a Unix socket path may be: the socket goes to the temp directory instead.
  const d = join(dir(), 'a-rather-long-directory-name-'.repeat(3), 'data');
  const first = await startEmbeddedPostgres({ dataDir: d });
  t.teardown(() => first.stop());
  t.match(decodeURIComponent(first.url), new RegExp(`host=${tmpdir()}/zstack-pg-[0-9a-f]{16}`), 'socket in the temp directory');
  const c = new pg.Client({ connectionString: first.url });
  await c.connect();
  await c.query('CREATE TABLE kept (v text)');
  await c.query("INSERT INTO kept VALUES ('before')");
  await c.end().catch(() => undefined);

  // A postmaster still running on the cluster while we hold the lock is an orphan of a dead server: stopped first.
  const second = await startEmbeddedPostgres({ dataDir: d });
  t.teardown(() => second.stop());
  t.match(await first.exited, /exited with code 0|killed/, 'the orphan was stopped');
  t.not(second.pid, first.pid);
  const c2 = new pg.Client({ connectionString: second.url });
  await c2.connect();
  t.same((await c2.query('SELECT v FROM kept')).rows, [{ v: 'before' }], 'its data is there');
  await c2.end();
  await second.stop();
  await second.stop(); // twice: nothing left to stop

  // Something else in <dataDir>/postgres is never overwritten.
  const other = dir();
  mkdirSync(join(other, 'postgres', 'global'), { recursive: true });
  await t.rejects(startEmbeddedPostgres({ dataDir: other }), /holds something that is not a PostgreSQL cluster \(no PG_VERSION\)/);
});

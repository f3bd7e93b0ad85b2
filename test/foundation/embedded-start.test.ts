// `npm start` (server/src/main.ts) as a real process on the embedded database: a second start on a data directory in
// use and a start on a taken port are refused at once with one line, before any database work; a database that
// cannot be reached is one line too; after kill -9 of the server no child of it survives, and the next start has
// every acknowledged write.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { ZStackClient } from '../../sdk/src/index.js';
import { postgresBinaries } from '../../server/src/db/embedded-postgres.js';
import { alive, commandOf, processTree, spawnServer } from '../lib/processes.js';
import { until } from '../lib/wait.js';
import { freePort } from '../lib/sshd.js';

let missing: string | undefined;
try {
  postgresBinaries();
} catch (e) {
  missing = (e as Error).message;
}

function tmp(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'zstack-start-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A refused start: exit code 1, exactly one line on stderr, no stack trace. */
async function refused(t: Test, env: Record<string, string>, pattern: RegExp): Promise<void> {
  const s = spawnServer(env);
  const code = await s.exited;
  t.equal(code, 1, 'exits with 1');
  t.equal(s.stderr.length, 1, `one line on stderr: ${s.stderr.join(' | ')}`);
  t.match(s.stderr[0] ?? '', pattern);
  t.notMatch(s.stderr.join('\n'), /\n\s+at |Error:/, 'no stack trace');
}

t.test('start-up refusals are one line, before any work', { skip: missing }, async (t) => {
  const dataDir = tmp(t);
  const port = await freePort();
  const a = spawnServer({ ZSTACK_DATA_DIR: dataDir, ZSTACK_PORT: String(port) });
  t.teardown(async () => {
    if (a.child.exitCode === null) a.child.kill('SIGTERM');
    await a.exited;
  });
  await a.ready;
  const log = join(dataDir, 'postgres.log');
  const logSize = statSync(log).size;
  const postmasterPid = readFileSync(join(dataDir, 'postgres', 'postmaster.pid'), 'utf8');

  await t.test('a second start on the same data directory', async (t) => {
    await refused(
      t,
      { ZSTACK_DATA_DIR: dataDir, ZSTACK_PORT: String(await freePort()) },
      new RegExp(
        `^zstack: cannot start: the data directory .* is in use by another ZStack-TS server \\(pid ${a.child.pid}\\): stop it, or set ZSTACK_DATA_DIR`,
      ),
    );
    const since = readFileSync(log, 'utf8').slice(logSize);
    t.notMatch(since, /starting PostgreSQL|lock file|another postmaster|initdb/i, 'no database start was tried (nothing in its log)');
    t.equal(readFileSync(join(dataDir, 'postgres', 'postmaster.pid'), 'utf8'), postmasterPid, 'the running database is the same');
  });

  await t.test('a taken port', async (t) => {
    const other = tmp(t);
    await refused(
      t,
      { ZSTACK_DATA_DIR: other, ZSTACK_PORT: String(port) },
      new RegExp(`^zstack: cannot start: port ${port} on 127\\.0\\.0\\.1 is already in use .*set ZSTACK_PORT`),
    );
    t.notOk(existsSync(join(other, 'postgres')), 'checked before the database was set up');
    t.notOk(existsSync(join(other, 'server.lock')), 'the lock was released');
  });

  await t.test('a database that cannot be reached', async (t) => {
    const closed = await freePort();
    await refused(
      t,
      { ZSTACK_DATA_DIR: tmp(t), ZSTACK_PORT: String(await freePort()), DATABASE_URL: `postgres://postgres:secret@127.0.0.1:${closed}/zstack` },
      /^zstack: cannot start: cannot reach the database at DATABASE_URL \(postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/zstack\): .*Start PostgreSQL or fix DATABASE_URL/,
    );
  });

  await t.test('a bad ZSTACK_PORT', async (t) => {
    await refused(t, { ZSTACK_DATA_DIR: tmp(t), ZSTACK_PORT: 'eighty' }, /^zstack: cannot start: ZSTACK_PORT must be a port number, got eighty$/);
  });

  await t.test('the embedded database killed under a running server: it stops, saying so in one line', async (t) => {
    const kids = processTree(a.child.pid!).filter((p) => p !== a.child.pid);
    process.kill(Number(postmasterPid.split('\n')[0]), 'SIGKILL');
    t.equal(await a.exited, 1, 'exits with 1');
    const said = a.stderr.filter((l) => l.startsWith('zstack:'));
    t.match(said, [/^zstack: the embedded database stopped \(postgres killed by SIGKILL\); see .*postgres\.log\. Stopping\.$/]);
    await until('every child of the server to exit', () => kids.every((p) => !alive(p)), 60_000);
    t.notOk(existsSync(join(dataDir, 'server.lock')), 'the lock is released');
  });
});

t.test('kill -9 of the server: no child survives; the next start has every acknowledged write', { skip: missing }, async (t) => {
  const dataDir = tmp(t);
  const port = await freePort();
  const a = spawnServer({ ZSTACK_DATA_DIR: dataDir, ZSTACK_PORT: String(port) });
  const url = await a.ready;
  const client = new ZStackClient({ endpoint: url, accountName: 'admin', password: 'password', pollIntervalMs: 20 });
  const names: string[] = [];
  for (let i = 0; i < 5; i++) {
    const { inventory } = await client.createZone({ name: `acked-${i}` });
    names.push(inventory.name);
  }
  // The agents start when first needed (test/foundation/on-demand-agents.test.ts): simulated backup storage starts
  // the simulator agent, a reconnect the console proxy agent. The tree: both, PostgreSQL and its processes.
  await client.addSimulatorBackupStorage({ name: 'bs', url: '/bs', totalCapacity: 2 ** 30, availableCapacity: 2 ** 30 });
  await client.reconnectConsoleProxyAgent({});
  const kids = processTree(a.child.pid!).filter((p) => p !== a.child.pid);
  t.ok(
    kids.some((p) => commandOf(p).includes(' console-proxy ')),
    'a console proxy agent runs',
  );
  t.ok(
    kids.some((p) => commandOf(p).includes(' simulator ')),
    'a simulator agent runs',
  );
  t.ok(
    kids.some((p) => /bin\/postgres /.test(commandOf(p))),
    'PostgreSQL runs',
  );
  // Writes in flight when it dies (not acknowledged: may or may not be there).
  const inflight = Promise.allSettled(Array.from({ length: 5 }, (_, i) => client.createZone({ name: `inflight-${i}` })));
  a.child.kill('SIGKILL');
  await a.exited;
  await inflight;
  await until('every child of the killed server to exit', () => kids.every((p) => !alive(p)), 60_000);
  t.pass(`all ${kids.length} processes under the server are gone`);

  const b = spawnServer({ ZSTACK_DATA_DIR: dataDir, ZSTACK_PORT: String(port) });
  t.teardown(async () => {
    if (b.child.exitCode === null) b.child.kill('SIGTERM');
    await b.exited;
  });
  const url2 = await b.ready;
  const c2 = new ZStackClient({ endpoint: url2, accountName: 'admin', password: 'password', pollIntervalMs: 20 });
  const found = await c2.queryZone({ q: ['name~=acked-%'] });
  t.same(found.inventories!.map((z) => z.name).sort(), names.sort(), 'every acknowledged zone is there');

  // A clean stop takes every child with it too.
  const kids2 = processTree(b.child.pid!).filter((p) => p !== b.child.pid);
  b.child.kill('SIGTERM');
  t.equal(await b.exited, 0, 'SIGTERM: a clean exit');
  await until('every child of the stopped server to exit', () => kids2.every((p) => !alive(p)), 60_000);
  t.notOk(existsSync(join(dataDir, 'server.lock')), 'the lock is released');
  t.notOk(existsSync(join(dataDir, 'postgres', 'postmaster.pid')), 'the database shut down cleanly');
});

// Any program holding the port, not only another server of ours.
t.test('a port held by another program', { skip: missing }, async (t) => {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => srv.close());
  const port = (srv.address() as { port: number }).port;
  await refused(t, { ZSTACK_DATA_DIR: tmp(t), ZSTACK_PORT: String(port) }, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use`));
});

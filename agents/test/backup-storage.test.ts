// Backup storage agent: real downloads (http, file) with md5 and progress, deadlines, capacities on every reply;
// and the simulated variant (sim:// pretend downloads, real URLs into a scratch directory).
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import t, { type Test } from 'tap';
import { until } from '../../test/lib/wait.js';
import { call, start } from './helpers.js';

const CHUNK = Buffer.alloc(64 * 1024, 7);
const IMAGE = Buffer.concat([CHUNK, Buffer.alloc(64 * 1024, 8), Buffer.alloc(64 * 1024, 9)]);
const IMAGE_MD5 = createHash('md5').update(IMAGE).digest('hex');

/** /image: IMAGE in three chunks, `gapMs` apart, with Content-Length; /missing: 404. */
// Serves IMAGE in three chunks, `gapMs` apart; with `held`, the rest waits after the first chunk until release().
async function imageServer(gapMs: number, opts: { held?: boolean } = {}) {
  let release = () => {};
  const released = opts.held ? new Promise<void>((r) => (release = r)) : Promise.resolve();
  const server = http.createServer(async (req, res) => {
    if (req.url !== '/image') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-length': IMAGE.length });
    for (let i = 0; i < 3; i++) {
      if (res.destroyed) return;
      res.write(IMAGE.subarray(i * CHUNK.length, (i + 1) * CHUNK.length));
      if (i === 0) await released;
      await new Promise((r) => setTimeout(r, gapMs));
    }
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    release: () => release(),
    close: () =>
      new Promise<void>((r) => {
        release();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'zstack-bs-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test('real backup storage: connect, download over http with progress and md5, delete', async (t) => {
  const root = await tempDir(t);
  const images = await imageServer(150, { held: true });
  t.teardown(images.close);
  const agent = await start({ kind: 'backup-storage', storageRoot: root });
  t.teardown(() => agent.close());
  const storagePath = join(root, 'bs', 'store');

  const connect = await call(agent, '/backupstorage/connect', { uuid: 'bs1', storagePath });
  t.equal(connect.body.success, true);
  t.ok(existsSync(storagePath), 'storage path created');
  t.ok(connect.body.totalCapacity > 0 && connect.body.availableCapacity > 0, 'capacity of the file system');
  t.same(Object.keys((await call(agent, '/backupstorage/ping', {})).body).sort(), ['availableCapacity', 'success', 'totalCapacity', 'uuid']);
  t.equal((await call(agent, '/backupstorage/echo', {}, { secret: null })).body.totalCapacity, connect.body.totalCapacity);

  const installPath = join(storagePath, 'images', 'img1', 'img1.qcow2');
  const downloading = call(agent, '/backupstorage/download', { imageUuid: 'img1', installPath, url: `${images.url}/image` }, { timeoutMs: 10_000 });
  // The image server holds the rest after the first chunk: progress is seen mid-way whatever the machine's load.
  const mid = await until('the first chunk is counted', async () => {
    const p = (await call(agent, '/backupstorage/download/progress', { imageUuid: 'img1' })).body;
    return p.progress > 0 ? p : undefined;
  });
  t.equal(mid.success, true);
  t.equal(mid.status, 'downloading');
  t.equal(mid.done, false);
  t.equal(mid.totalBytes, IMAGE.length);
  t.ok(mid.progress > 0 && mid.progress < 100, `progress visible mid-way (${mid.progress}%)`);
  t.ok(typeof mid.totalCapacity === 'number');
  const twice = await call(agent, '/backupstorage/download', { imageUuid: 'img1', installPath, url: `${images.url}/image` });
  t.match(twice.body.error, /already being downloaded/);
  images.release();

  const done = (await downloading).body;
  t.same([done.success, done.md5Sum, done.size, done.installPath], [true, IMAGE_MD5, IMAGE.length, installPath]);
  t.ok(done.availableCapacity > 0);
  t.same(await readFile(installPath), IMAGE, 'the file is on disk');
  const final = (await call(agent, '/backupstorage/download/progress', { imageUuid: 'img1' })).body;
  t.same([final.status, final.progress, final.done, final.md5Sum], ['succeeded', 100, true, IMAGE_MD5]);

  const deleted = await call(agent, '/backupstorage/delete', { installPath });
  t.equal(deleted.body.success, true);
  t.ok(deleted.body.totalCapacity > 0);
  t.notOk(existsSync(installPath));
  t.notOk(existsSync(join(storagePath, 'images', 'img1')), 'the image directory goes with it');
  t.equal((await call(agent, '/backupstorage/delete', { installPath })).body.success, true, 'absent = success');
});

t.test('real backup storage: file://, failures, deadlines, path checks — capacities on every reply', async (t) => {
  const root = await tempDir(t);
  const images = await imageServer(300);
  t.teardown(images.close);
  const agent = await start({ kind: 'backup-storage', storageRoot: root });
  t.teardown(() => agent.close());
  const storagePath = join(root, 'store');
  await call(agent, '/backupstorage/connect', { uuid: 'bs1', storagePath });

  const source = join(root, 'source.img');
  await writeFile(source, IMAGE);
  const fromFile = await call(agent, '/backupstorage/download', {
    imageUuid: 'f1',
    installPath: join(storagePath, 'f1', 'f1.img'),
    url: pathToFileURL(source).href,
  });
  t.same([fromFile.body.success, fromFile.body.md5Sum, fromFile.body.size], [true, IMAGE_MD5, IMAGE.length]);

  const missing = await call(agent, '/backupstorage/download', { imageUuid: 'm1', installPath: join(storagePath, 'm1'), url: `${images.url}/missing` });
  t.same([missing.body.success, missing.body.error], [false, `cannot fetch ${images.url}/missing: HTTP 404`]);
  t.ok(missing.body.totalCapacity > 0, 'failures carry capacities');
  t.equal((await call(agent, '/backupstorage/download/progress', { imageUuid: 'm1' })).body.status, 'failed');

  const slowPath = join(storagePath, 's1', 's1.img');
  const aborted = await call(agent, '/backupstorage/download', { imageUuid: 's1', installPath: slowPath, url: `${images.url}/image` }, { timeoutMs: 200 });
  t.match(aborted.body.error, /deadline exceeded/);
  t.ok(aborted.body.availableCapacity > 0);
  const leftIn = async () => (existsSync(join(storagePath, 's1')) ? await readdir(join(storagePath, 's1')) : []);
  t.ok(await until('the partial file is removed', async () => (await leftIn()).length === 0), 'no partial file left');
  const abortedProgress = (await call(agent, '/backupstorage/download/progress', { imageUuid: 's1' })).body;
  t.same([abortedProgress.status, abortedProgress.done], ['failed', true]);
  const records = (await call(agent, '/agent/records', {})).body.records;
  t.equal(records.find((r: { body: { imageUuid?: string } }) => r.body.imageUuid === 's1').outcome, 'aborted');

  const ownTimeout = await call(agent, '/backupstorage/download', { imageUuid: 's2', installPath: slowPath, url: `${images.url}/image`, timeout: 100 });
  t.match(ownTimeout.body.error, /exceeded its timeout of 100 ms/);

  const outside = await call(agent, '/backupstorage/download', { imageUuid: 'o1', installPath: '/etc/evil', url: pathToFileURL(source).href });
  t.match(outside.body.error, /outside/);
  const relative = await call(agent, '/backupstorage/delete', { installPath: 'images/x' });
  t.match(relative.body.error, /must be an absolute path/);
  const ftp = await call(agent, '/backupstorage/download', { imageUuid: 'x1', installPath: join(storagePath, 'x'), url: 'ftp://host/x' });
  t.match(ftp.body.error, /unsupported url scheme/);
  const unknown = await call(agent, '/backupstorage/download/progress', { imageUuid: 'never' });
  t.match(unknown.body.error, /no download of image never/);

  const badBody = await call(agent, '/backupstorage/download', { imageUuid: 'x' });
  t.equal(badBody.status, 400);
  t.ok(badBody.body.totalCapacity > 0, 'even a 400 carries capacities');

  await writeFile(join(root, 'a-file'), 'x');
  const onFile = await call(agent, '/backupstorage/connect', { uuid: 'bs1', storagePath: join(root, 'a-file') });
  t.match(onFile.body.error, /is not a directory/);
  const outsideRoot = await call(agent, '/backupstorage/connect', { uuid: 'bs1', storagePath: '/var/tmp/zstack-elsewhere' });
  t.match(outsideRoot.body.error, /outside/);
});

t.test('a backup storage agent that was never connected reports zero capacity', async (t) => {
  const agent = await start({ kind: 'backup-storage' });
  t.teardown(() => agent.close());
  t.same((await call(agent, '/backupstorage/ping', {})).body, { success: true, totalCapacity: 0, availableCapacity: 0 });
});

t.test('simulated backup storages: sim:// pretend downloads and real URLs', async (t) => {
  const scratch = await tempDir(t);
  const images = await imageServer(10);
  t.teardown(images.close);
  const agent = await start({ kind: 'simulator', storageRoot: scratch });
  t.teardown(() => agent.close());
  const bs = { target: 'bs1' };
  const TiB = 1024 ** 4;
  const connect = await call(agent, '/backupstorage/connect', { uuid: 'bs1', storagePath: '/zstack_bs' });
  t.same(connect.body, { success: true, totalCapacity: TiB, availableCapacity: TiB });

  const pretend = call(
    agent,
    '/backupstorage/download',
    { imageUuid: 'i1', installPath: '/zstack_bs/i1.qcow2', url: 'sim://centos7?size=1000&durationMs=300' },
    bs,
  );
  await new Promise((r) => setTimeout(r, 150));
  const mid = (await call(agent, '/backupstorage/download/progress', { imageUuid: 'i1' }, bs)).body;
  t.ok(mid.progress > 0 && mid.progress < 100, `pretend progress moves (${mid.progress}%)`);
  const done = (await pretend).body;
  t.same([done.success, done.size, done.md5Sum], [true, 1000, createHash('md5').update('sim://centos7?size=1000&durationMs=300').digest('hex')]);
  t.equal(done.availableCapacity, TiB - 1000);

  const real = (await call(agent, '/backupstorage/download', { imageUuid: 'i2', installPath: '/zstack_bs/i2.qcow2', url: `${images.url}/image` }, bs)).body;
  t.same([real.success, real.md5Sum, real.size], [true, IMAGE_MD5, IMAGE.length], 'real URL downloaded for real');
  const state = (await call(agent, '/simulator/backupstorage/state', { backupStorageUuid: 'bs1' })).body;
  t.equal(state.storagePath, '/zstack_bs');
  t.same(
    state.files.map((f: { installPath: string; simulated: boolean }) => [f.installPath, f.simulated]),
    [
      ['/zstack_bs/i1.qcow2', true],
      ['/zstack_bs/i2.qcow2', false],
    ],
  );
  const realPath = state.files[1].realPath;
  t.ok(realPath.startsWith(scratch) && existsSync(realPath), 'into the scratch directory');
  t.same(
    state.downloads.map((d: { status: string }) => d.status),
    ['succeeded', 'succeeded'],
  );
  t.equal(state.availableCapacity, TiB - 1000 - IMAGE.length);

  await call(agent, '/backupstorage/delete', { installPath: '/zstack_bs/i2.qcow2' }, bs);
  t.notOk(existsSync(realPath), 'delete removes the real file');

  const failing = await call(agent, '/backupstorage/download', { imageUuid: 'i3', installPath: '/zstack_bs/i3', url: 'sim://x?fail=true&durationMs=20' }, bs);
  t.match(failing.body.error, /simulated download failure/);

  await call(agent, '/simulator/backupstorage/config', { backupStorageUuid: 'bs1', totalCapacity: 5000, downloadSize: 10_000, downloadDurationMs: 0 });
  const full = await call(agent, '/backupstorage/download', { imageUuid: 'i4', installPath: '/zstack_bs/i4', url: 'sim://big' }, bs);
  t.match(full.body.error, /not enough space/);
  t.same([full.body.totalCapacity, full.body.availableCapacity], [5000, 4000]);

  const slow = await call(
    agent,
    '/backupstorage/download',
    { imageUuid: 'i5', installPath: '/zstack_bs/i5', url: 'sim://x?size=1&durationMs=5000' },
    { ...bs, timeoutMs: 100 },
  );
  t.match(slow.body.error, /deadline exceeded/);
  t.equal((await call(agent, '/simulator/backupstorage/state', { backupStorageUuid: 'nope' })).body.success, false);
});

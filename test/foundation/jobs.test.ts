// Jobs: 202 + poll, X-Job-UUID idempotency, deadlines (SYS.1001 naming API and step), restart recovery.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServer, http, pollJob } from '../lib/harness.js';
import { step } from '../../server/src/core/context.js';
import { App } from '../../server/src/app.js';

t.test('jobs', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const session = await s.client.login();
  const auth = { Authorization: `OAuth ${session}` };

  t.test('an async API answers 202 with location and apiTimeout, the poll answers 200', async (t) => {
    const res = await http(s.url, 'POST', '/zstack/v1/zones', { body: { params: { name: 'z-job' } }, headers: auth });
    t.equal(res.status, 202);
    t.match(res.json.location, /\/zstack\/v1\/api-jobs\/[0-9a-f]{32}$/);
    t.equal(res.json.apiTimeout, 30 * 60_000, 'default timeout of CreateZone is 30m');
    const done = await pollJob(res.json.location);
    t.equal(done.status, 200);
    t.equal(done.json.inventory.name, 'z-job');
    t.same(Object.keys(done.json), ['inventory', 'success'], 'reply keys in upstream order');
    const unknown = await http(s.url, 'GET', '/zstack/v1/api-jobs/0123456789abcdef0123456789abcdef');
    t.equal(unknown.status, 404);
    t.equal(unknown.json.error.code, 'SYS.1003');
  });

  t.test('X-Job-UUID: a retried request returns the same job and runs once', async (t) => {
    const jobUuid = 'abcdefabcdefabcdefabcdefabcdef01';
    const send = () => http(s.url, 'POST', '/zstack/v1/zones', { body: { params: { name: 'z-idem' } }, headers: { ...auth, 'X-Job-UUID': jobUuid } });
    const [a, b] = await Promise.all([send(), send()]);
    const c = await send();
    t.equal(a.status, 202);
    t.equal(b.json.location, a.json.location);
    t.equal(c.json.location, a.json.location);
    await pollJob(a.json.location);
    const zones = await s.client.queryZone({ q: ['name=z-idem'] });
    t.equal(zones.inventories!.length, 1, 'the zone was created once');
    const other = await http(s.url, 'PUT', `/zstack/v1/zones/${zones.inventories![0].uuid}/actions`, {
      body: { updateZone: { name: 'x' } },
      headers: { ...auth, 'X-Job-UUID': jobUuid },
    });
    t.equal(other.status, 400, 'the same job uuid for another API is refused');
    const withResource = 'abcdefabcdefabcdefabcdefabcdef02';
    const resourceUuid = '0123456789abcdef0123456789abcd02';
    const create = () =>
      http(s.url, 'POST', '/zstack/v1/zones', { body: { params: { name: 'z-res', resourceUuid } }, headers: { ...auth, 'X-Job-UUID': withResource } });
    const first = await create();
    await pollJob(first.json.location);
    const retry = await create();
    t.equal(retry.status, 202, 'a retried create with resourceUuid finds its job (not "resourceUuid already used")');
    t.equal(retry.json.location, first.json.location);
    const bad = await http(s.url, 'POST', '/zstack/v1/zones', { body: { params: { name: 'z' } }, headers: { ...auth, 'X-Job-UUID': 'not-a-uuid' } });
    t.equal(bad.status, 400);
    t.match(bad.json.error.details, /X-Job-UUID/);
  });

  t.test('deadline expiry inside a job: SYS.1001 naming the API and the step', async (t) => {
    const zone = (await s.client.createZone({ name: 'z-slow' })).inventory;
    const original = s.app.handlers.get('UpdateZone')!;
    let aborted = false;
    s.app.handlers.set('UpdateZone', {
      run: (): Promise<any> =>
        step('talk-to-slow-agent', async (signal) => {
          signal.addEventListener('abort', () => (aborted = true));
          await sleep(10_000, undefined, { signal }).catch(() => undefined);
          return { inventory: zone };
        }),
    });
    t.teardown(() => void s.app.handlers.set('UpdateZone', original));
    const started = Date.now();
    const res = await http(s.url, 'PUT', `/zstack/v1/zones/${zone.uuid}/actions`, { body: { updateZone: { name: 'y' } }, headers: { ...auth, 'X-API-Timeout': '1' } });
    t.equal(res.json.apiTimeout, 1000, 'the 202 reports the effective timeout');
    const done = await pollJob(res.json.location);
    const elapsed = Date.now() - started;
    t.equal(done.status, 503);
    t.equal(done.json.error.code, 'SYS.1001');
    t.match(done.json.error.details, /API\[UpdateZone\] timed out after \d+ ms \(timeout 1000 ms\) in step\[talk-to-slow-agent\]/);
    t.ok(elapsed < 5000, `failed near the deadline (${elapsed} ms), not after the 10 s of work`);
    t.ok(aborted, 'the step saw its signal abort');
  });

  t.test('X-API-Timeout must be whole seconds', async (t) => {
    const res = await http(s.url, 'POST', '/zstack/v1/zones', { body: { params: { name: 'z' } }, headers: { ...auth, 'X-API-Timeout': '0.5' } });
    t.equal(res.status, 400);
    t.match(res.json.error.details, /X-API-Timeout/);
  });
});

t.test('a job interrupted by a restart ends failed at the next start', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const session = await s.client.login();
  const zone = (await s.client.createZone({ name: 'z-crash' })).inventory;
  s.app.handlers.set('UpdateZone', { run: () => new Promise(() => undefined) });
  const res = await http(s.url, 'PUT', `/zstack/v1/zones/${zone.uuid}/actions`, { body: { updateZone: { name: 'y' } }, headers: { Authorization: `OAuth ${session}` } });
  t.equal(res.status, 202);
  const port = Number(new URL(s.url).port);
  await s.app.crash();
  const next = await App.create({ databaseUrl: s.databaseUrl, dataDir: s.dataDir, port, validateResponses: true });
  t.teardown(() => next.close());
  await next.listen();
  const done = await pollJob(res.json.location, 5000);
  t.equal(done.status, 503, 'the job is failed, not left running');
  t.equal(done.json.error.code, 'SYS.1006');
  t.match(done.json.error.details, /stopped before the job finished/);
});

// `Prefer: wait=N` (RFC 7240) on an async API: the call answers its finished job exactly as the poll would (200 or
// 503, with Preference-Applied and the job's Location), 202 when the job outlasts the wait or without the header,
// 400 for a malformed wait; the SDK creates a VM in one request and falls back to polling after a 202.
import { until } from '../lib/wait.js';
import t from 'tap';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServer, http, pollJob } from '../lib/harness.js';
import { buildWorld } from '../lib/world.js';
import { startFaultProxy } from '../../sdk/test/lib/fault-proxy.js';
import { ZStackClient, ZStackError, type RequestEvent } from '../../sdk/src/index.js';
import { ApiError, err } from '../../server/src/core/errors.js';
import { preferredWait } from '../../server/src/core/router.js';

const JOB_URL = /^http:\/\/[^/]+\/zstack\/v1\/api-jobs\/([0-9a-f]{32})$/;

t.test('Prefer header parsing (RFC 7240)', async (t) => {
  t.equal(preferredWait(undefined), undefined);
  t.equal(preferredWait('respond-async'), undefined, 'no wait preference');
  t.equal(preferredWait('wait=7'), 7);
  t.equal(preferredWait('respond-async, Wait = 3 ; foo=bar, handling=lenient'), 3, 'other preferences and parameters ignored, name case-insensitive');
  t.equal(preferredWait('return=minimal; x="a,wait=9", wait=4'), 4, 'a wait inside a quoted parameter is not a preference');
  t.equal(preferredWait('wait=2, wait=abc'), 2, 'only the first wait counts');
  t.equal(preferredWait(['handling=strict', 'wait=5']), 5, 'repeated headers');
  t.equal(preferredWait('wait="6"'), 6, 'quoted value');
  for (const bad of ['wait', 'wait=', 'wait=0', 'wait=31', 'wait=abc', 'wait=1.5', 'wait=-1', 'wait=10 s', 'wait=100']) {
    const refused = (() => {
      try {
        preferredWait(bad);
      } catch (e) {
        return e;
      }
    })();
    t.ok(refused instanceof ApiError && refused.error.code === 'SYS.1007' && refused.httpStatus === 400, `${bad} is refused (400 SYS.1007)`);
  }
});

t.test('the spec: Prefer on every asynchronous operation, documented', async (t) => {
  const doc = JSON.parse(readFileSync(new URL('../../openapi/dist/openapi.json', import.meta.url), 'utf8'));
  const param = doc.components.parameters.PreferWait;
  t.match(param, { name: 'Prefer', in: 'header' });
  t.match(param.description, /wait=<seconds>.*1–30/s);
  t.match(param.description, /Preference-Applied/);
  t.match(param.description, /usual 202/);
  t.match(param.description, /400/);
  let async = 0;
  for (const [path, item] of Object.entries<Record<string, any>>(doc.paths)) {
    for (const [method, op] of Object.entries<any>(item)) {
      const refs = (op.parameters ?? []).map((p: { $ref?: string }) => p.$ref);
      const isAsync = op['x-zstack']?.kind === 'async';
      t.equal(refs.includes('#/components/parameters/PreferWait'), isAsync, `${method.toUpperCase()} ${path}: Prefer ${isAsync ? 'accepted' : "not spec'd"}`);
      if (!isAsync) continue;
      async++;
      t.ok(op.responses['200'].$ref || op.responses['200'].headers?.['Preference-Applied'], `${op.operationId}: 200 documents Preference-Applied`);
      t.equal(op.responses['503'].$ref, '#/components/responses/JobFailed', `${op.operationId}: 503 documents the failed job`);
    }
  }
  t.ok(async > 50, `${async} asynchronous operations`);
});

t.test('Prefer: wait on asynchronous APIs', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const session = await s.client.login();
  const auth = { Authorization: `OAuth ${session}` };
  const zone = (await s.client.createZone({ name: 'z-prefer-base' })).inventory;
  const original = s.app.handlers.get('UpdateZone')!;
  const update = (headers: Record<string, string>, name = 'y') =>
    http(s.url, 'PUT', `/zstack/v1/zones/${zone.uuid}/actions`, { body: { updateZone: { name } }, headers: { ...auth, ...headers } });
  /** The poll's answer for the job at `location`, raw. */
  const pollOnce = (location: string) => http(s.url, 'GET', new URL(location).pathname);

  t.test("a job finished within the wait: 200 with exactly the poll's body, Preference-Applied and Location", async (t) => {
    const started = Date.now();
    const res = await http(s.url, 'POST', '/zstack/v1/zones', {
      body: { params: { name: 'z-prefer' } },
      headers: { ...auth, Prefer: 'respond-async, wait=5; x=y, handling=lenient' },
    });
    t.equal(res.status, 200, 'the final answer, not a 202');
    t.equal(res.headers.get('preference-applied'), 'wait=5');
    const location = res.headers.get('location')!;
    t.match(location, JOB_URL, "the job's Location is still there");
    t.equal(res.json.inventory.name, 'z-prefer');
    t.same(Object.keys(res.json), ['inventory', 'success']);
    t.ok(Date.now() - started < 5000, 'answered when the job ended, not after the whole wait');
    const polled = await pollOnce(location);
    t.equal(polled.status, 200);
    t.equal(res.text, polled.text, 'byte for byte what the poll answers');
    t.equal(polled.headers.get('preference-applied'), null, 'the poll itself applies no preference');
  });

  t.test('the call is held until its job ends', async (t) => {
    t.teardown(() => void s.app.handlers.set('UpdateZone', original));
    s.app.handlers.set('UpdateZone', { run: async (): Promise<any> => (await sleep(400), { inventory: zone }) });
    const started = Date.now();
    const res = await update({ Prefer: 'wait=5' });
    const elapsed = Date.now() - started;
    t.equal(res.status, 200);
    t.ok(elapsed >= 380, `held while the job ran (${elapsed} ms)`);
    t.equal(res.text, (await pollOnce(res.headers.get('location')!)).text);
  });

  t.test("a job that fails within the wait: the poll's 503 and error", async (t) => {
    t.teardown(() => void s.app.handlers.set('UpdateZone', original));
    s.app.handlers.set('UpdateZone', {
      run: async (): Promise<any> => {
        await sleep(50);
        throw err('SYS.1006', 'the zone could not be updated', err('SYS.1015', 'agent said no').error);
      },
    });
    const res = await update({ Prefer: 'wait=5' });
    t.equal(res.status, 503);
    t.equal(res.headers.get('preference-applied'), 'wait=5');
    t.match(res.headers.get('location'), JOB_URL);
    t.match(res.json, { error: { code: 'SYS.1006', details: 'the zone could not be updated', cause: { code: 'SYS.1015' } } });
    const polled = await pollOnce(res.headers.get('location')!);
    t.equal(polled.status, 503);
    t.equal(res.text, polled.text, 'the same error body as the poll');
  });

  t.test('a job longer than the wait: the usual 202, polled to its end', async (t) => {
    t.teardown(() => void s.app.handlers.set('UpdateZone', original));
    // The job runs until released: only the wait's end can answer the call.
    let releaseLong = () => {};
    const longReleased = new Promise<void>((r) => (releaseLong = r));
    t.teardown(() => releaseLong());
    s.app.handlers.set('UpdateZone', { run: async (): Promise<any> => (await longReleased, { inventory: zone }) });
    const started = Date.now();
    const res = await update({ Prefer: 'wait=1' });
    const elapsed = Date.now() - started;
    releaseLong();
    t.equal(res.status, 202);
    t.equal(res.headers.get('preference-applied'), null, 'no preference applied to a 202');
    t.same(Object.keys(res.json), ['location', 'apiTimeout']);
    t.match(res.json.location, JOB_URL);
    t.equal(res.headers.get('location'), res.json.location);
    t.ok(elapsed >= 950, `waited the 1 s asked for (${elapsed} ms)`);
    const done = await pollJob(res.json.location);
    t.equal(done.status, 200);
    t.equal(done.json.inventory.uuid, zone.uuid);
  });

  t.test("a malformed wait: 400 SYS.1007 in ZStack's shape, nothing runs", async (t) => {
    for (const bad of ['wait=abc', 'wait=0', 'wait=31', 'wait', 'wait=2.5', 'respond-async, wait=-3']) {
      const res = await http(s.url, 'POST', '/zstack/v1/zones', { body: { params: { name: 'z-malformed' } }, headers: { ...auth, Prefer: bad } });
      t.equal(res.status, 400, `${bad}: 400`);
      t.same(Object.keys(res.json), ['error'], `${bad}: only error`);
      t.match(
        res.json.error,
        { code: 'SYS.1007', description: String, details: /Prefer: wait must be a whole number of seconds from 1 to 30/ },
        `${bad}: SYS.1007`,
      );
    }
    t.equal((await s.client.queryZone({ q: ['name=z-malformed'], count: true })).total, 0, 'no job ran');
    const query = await http(s.url, 'GET', '/zstack/v1/zones?count=true', { headers: { ...auth, Prefer: 'wait=abc' } });
    t.equal(query.status, 200, 'APIs that are not asynchronous ignore Prefer');
  });

  t.test('without Prefer nothing changes: 202 at once', async (t) => {
    t.teardown(() => void s.app.handlers.set('UpdateZone', original));
    // The job runs until released: a 200 here could only come from holding the call.
    let releaseJob = () => {};
    const jobReleased = new Promise<void>((r) => (releaseJob = r));
    t.teardown(() => releaseJob());
    s.app.handlers.set('UpdateZone', { run: async (): Promise<any> => (await jobReleased, { inventory: zone }) });
    const res = await update({});
    releaseJob();
    t.equal(res.status, 202, 'not held');
    t.equal(res.headers.get('preference-applied'), null);
    t.same(Object.keys(res.json), ['location', 'apiTimeout']);
    t.equal((await pollJob(res.json.location)).status, 200);
    const other = await update({ Prefer: 'respond-async, return=minimal' });
    t.equal(other.status, 202, 'other preferences alone change nothing');
    await pollJob(other.json.location);
  });

  t.test('a retried request (same X-Job-UUID) with Prefer waits for and answers that job', async (t) => {
    t.teardown(() => void s.app.handlers.set('UpdateZone', original));
    let runs = 0;
    s.app.handlers.set('UpdateZone', { run: async (): Promise<any> => (runs++, await sleep(500), { inventory: zone }) });
    const jobUuid = 'abcdefabcdefabcdefabcdefabcdef51';
    const first = await update({ 'X-Job-UUID': jobUuid });
    t.equal(first.status, 202);
    const retry = await update({ 'X-Job-UUID': jobUuid, Prefer: 'wait=5' });
    t.equal(retry.status, 200, 'the running job was waited for');
    t.equal(retry.headers.get('location'), first.json.location);
    t.equal(runs, 1, 'the job ran once');
    const again = await update({ 'X-Job-UUID': jobUuid, Prefer: 'wait=5' });
    t.equal(again.status, 200, 'a finished job answers at once');
    t.equal(again.text, retry.text);
    t.equal(again.text, (await pollOnce(first.json.location)).text);

    // A create whose check fails on the retry ("resourceUuid already used") still gets its job's outcome.
    const resourceUuid = '0123456789abcdef0123456789abcd51';
    const create = (headers: Record<string, string>) =>
      http(s.url, 'POST', '/zstack/v1/zones', {
        body: { params: { name: 'z-prefer-res', resourceUuid } },
        headers: { ...auth, 'X-Job-UUID': 'abcdefabcdefabcdefabcdefabcdef52', ...headers },
      });
    const made = await create({ Prefer: 'wait=5' });
    t.equal(made.status, 200);
    const retried = await create({ Prefer: 'wait=5' });
    t.equal(retried.status, 200, "the retry answers the job's reply");
    t.equal(retried.text, made.text);
    t.equal((await create({})).status, 202, 'without Prefer the retry is the usual 202');
  });

  t.test('the wait ends when the client goes away', async (t) => {
    t.teardown(() => void s.app.handlers.set('UpdateZone', original));
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    t.teardown(() => release());
    s.app.handlers.set('UpdateZone', { run: async (): Promise<any> => (await released, { inventory: zone }) });
    const jobUuid = 'abcdefabcdefabcdefabcdefabcdef53';
    // The answer is looked at again (isRunningHere) once the wait is over.
    const looks: number[] = [];
    const jobs = s.app.jobs;
    const isRunningHere = jobs.isRunningHere;
    jobs.isRunningHere = (uuid: string) => (uuid === jobUuid && looks.push(Date.now()), isRunningHere.call(jobs, uuid));
    t.teardown(() => void (jobs.isRunningHere = isRunningHere));
    const abort = new AbortController();
    const sent = fetch(`${s.url}/zstack/v1/zones/${zone.uuid}/actions`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/json', 'X-Job-UUID': jobUuid, Prefer: 'wait=30' },
      body: JSON.stringify({ updateZone: { name: 'y' } }),
      signal: abort.signal,
    }).catch(() => undefined);
    await until('the call is held', () => looks.length === 1);
    t.equal(looks.length, 1, 'waiting');
    abort.abort();
    await sent;
    // Bounded well below the 30 s asked for: the wait ends because the client left, not because it ran out.
    t.ok(await until('the wait ended', () => looks.length === 2, 15_000), 'the wait ended when the client left, not after 30 s');
    release();
    t.equal((await pollJob(`${s.url}/zstack/v1/api-jobs/${jobUuid}`)).status, 200, 'the job itself went on');
  });
});

t.test('the SDK: one request per VM creation; a 202 is polled', async (t) => {
  t.setTimeout(120_000);
  const s = await startServer();
  t.teardown(() => s.close());
  const world = await buildWorld(s.client, { hosts: 1, virtualRouter: false });
  const seen: Array<{ method: string; url: string }> = [];
  const count = (req: IncomingMessage) => void seen.push({ method: req.method!, url: req.url! });
  s.app.http.server.on('request', count);
  t.teardown(() => void s.app.http.server.off('request', count));
  const sent: RequestEvent[] = [];
  const zs = new ZStackClient({
    endpoint: s.url,
    accountName: 'admin',
    password: 'password',
    pollIntervalMs: 20,
    hooks: { onRequest: (e) => void sent.push(e) },
  });
  await zs.login();
  const vmParams = (name: string) => ({
    name,
    instanceOfferingUuid: world.instanceOfferingUuid,
    imageUuid: world.imageUuid,
    l3NetworkUuids: [world.l3NetworkUuid],
  });

  t.test('CreateVmInstance: one request, the reply in it', async (t) => {
    seen.length = 0;
    sent.length = 0;
    const { inventory: vm } = await zs.createVmInstance(vmParams('vm-prefer'));
    t.equal(vm.state, 'Running');
    t.same(seen, [{ method: 'POST', url: '/zstack/v1/vm-instances' }], 'the server got exactly one request');
    t.equal(sent.length, 1);
    t.equal(sent[0].headers.Prefer, 'wait=10', "the SDK asks for the long poll's 10 s");
    t.match(sent[0].headers['X-Job-UUID'], /^[0-9a-f]{32}$/);
  });

  t.test('a failing job: its ZStackError from the one answer', async (t) => {
    const original = s.app.handlers.get('CreateZone')!;
    t.teardown(() => void s.app.handlers.set('CreateZone', original));
    s.app.handlers.set('CreateZone', {
      run: async (): Promise<any> => {
        throw err('SYS.1006', 'no zone today');
      },
    });
    seen.length = 0;
    sent.length = 0;
    const e = await zs.createZone({ name: 'z-fails' }).then(
      () => undefined,
      (x: unknown) => x,
    );
    t.ok(e instanceof ZStackError);
    t.match(e, { code: 'SYS.1006', details: 'no zone today', httpStatus: 503, apiName: 'CreateZone', jobUuid: sent[0]?.headers['X-Job-UUID'] });
    t.equal(seen.length, 1, 'one request');
  });

  t.test('with onProgress: no Prefer, polled as before', async (t) => {
    seen.length = 0;
    sent.length = 0;
    const polls: number[] = [];
    await zs.createZone({ name: 'z-progress' }, { onProgress: (p) => void polls.push(p.polls) });
    t.equal(sent[0].headers.Prefer, undefined);
    t.ok(
      seen.some((r) => r.method === 'GET' && r.url.startsWith('/zstack/v1/api-jobs/')),
      'the job was polled',
    );
  });

  t.test('start*: no Prefer, a 202 handle', async (t) => {
    sent.length = 0;
    const handle = await zs.startCreateZone({ name: 'z-start' });
    t.equal(sent[0].headers.Prefer, undefined);
    t.match(handle.location, JOB_URL);
    t.equal((await zs.waitJob(handle)).inventory.name, 'z-start');
  });

  t.test('a server that does not apply the preference: the 202 is polled', async (t) => {
    // A proxy that drops Prefer, as a server without this extension would ignore it.
    const proxy = await startFaultProxy(s.url, (r) => (delete r.headers.prefer, 'pass'));
    t.teardown(() => proxy.close());
    const viaProxy = new ZStackClient({ endpoint: proxy.url, accountName: 'admin', password: 'password', pollIntervalMs: 20 });
    const { inventory: vm } = await viaProxy.createVmInstance(vmParams('vm-polled'));
    t.equal(vm.state, 'Running');
    t.equal(proxy.count('POST', '/zstack/v1/vm-instances'), 1);
    t.ok(proxy.count('GET', '/zstack/v1/api-jobs/') >= 1, 'then polled');
  });
});

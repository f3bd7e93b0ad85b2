// The SDK against a live server: sessions (login on first use, re-login once, logout), job waiting (handles,
// resuming from another client, progress), timeouts, cancellation, query helpers and paging over 2,500 rows,
// error mapping, hooks with secrets redacted, toCurl, read-only mode, and one method per operation.
import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startServer } from '../../test/lib/harness.js';
import { zones } from '../../server/src/db/schema/index.js';
import { newUuid } from '../../server/src/core/ids.js';
import {
  OPERATIONS,
  ZStackClient,
  ZStackError,
  conditionsOf,
  hashPassword,
  isNotFound,
  isTimeout,
  type ErrorEvent,
  type JobHandle,
  type JobProgress,
  type RequestEvent,
  type ResponseEvent,
} from '../src/index.js';

const run = promisify(execFile);

t.test('SDK', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const admin = (extra: Partial<ConstructorParameters<typeof ZStackClient>[0]> = {}) =>
    new ZStackClient({ endpoint: s.url, accountName: 'admin', password: 'password', pollIntervalMs: 20, ...extra });
  const zs = admin();
  const { inventory: bs } = await zs.addSimulatorBackupStorage({ name: 'bs1', url: '/sim/bs1' });
  const slowImage = (name: string, durationMs: number) => ({
    name,
    url: `http://download.zstack.org/${name}.qcow2?size=1000000&durationMs=${durationMs}`,
    backupStorageUuids: [bs.uuid],
  });

  t.test('one method per operation, a start form per async API, a queryAll form per Query API', async (t) => {
    let checked = 0;
    for (const [name, op] of Object.entries(OPERATIONS)) {
      const method = name[0].toLowerCase() + name.slice(1);
      t.equal(typeof (zs as unknown as Record<string, unknown>)[method], 'function', method);
      if (op.kind === 'async') t.equal(typeof (zs as unknown as Record<string, unknown>)[`start${name}`], 'function', `start${name}`);
      if (op.kind === 'query') t.equal(typeof (zs as unknown as Record<string, unknown>)[`queryAll${name.slice(5)}`], 'function', `queryAll${name.slice(5)}`);
      checked++;
    }
    t.ok(checked >= 90, `${checked} operations`);
  });

  t.test('sessions: login on first use (shared by concurrent calls), re-login once when expired, logout', async (t) => {
    const logins: RequestEvent[] = [];
    const c = admin({ hooks: { onRequest: (e) => e.apiName === 'LogInByAccount' && logins.push(e) } });
    t.equal(c.sessionUuid, undefined);
    await Promise.all(Array.from({ length: 8 }, () => c.queryZone({ count: true })));
    t.equal(logins.length, 1, 'eight concurrent first calls, one login');
    const first = c.sessionUuid!;
    t.match(first, /^[0-9a-f]{32}$/);

    // The session dies on the server (another client logs it out): the next call logs in again, once.
    await zs.logOut({ sessionUuid: first });
    const zone = await c.createZone({ name: 'after-expiry' });
    t.equal(zone.inventory.name, 'after-expiry');
    t.equal(logins.length, 2, 'one re-login');
    t.not(c.sessionUuid, first);

    // Only a session, no credentials: the expiry is reported, not retried.
    const bare = new ZStackClient({ endpoint: s.url, sessionUuid: first });
    const e = await bare.queryZone({}).catch((x) => x);
    t.ok(e instanceof ZStackError);
    t.equal(e.code, 'ID.1001');
    t.equal(e.httpStatus, 401);
    t.ok(e.isAuth);

    // A session handed over (e.g. from zstack-cli) is used as is.
    const handed = new ZStackClient({ endpoint: s.url, sessionUuid: c.sessionUuid });
    t.equal((await handed.queryZone({ count: true })).success, true);

    const session = c.sessionUuid!;
    await c.logout();
    t.equal(c.sessionUuid, undefined);
    t.same((await zs.validateSession({ sessionUuid: session })).valid, false, 'the session is gone on the server');
  });

  t.test('waiting: typed replies, start* handles, waitJob from another client by handle, uuid or location', async (t) => {
    const { inventory } = await zs.createZone({ name: 'waited', description: 'd' });
    t.match(inventory, { name: 'waited', description: 'd', state: 'Enabled' });

    const handle = await zs.startCreateZone({ name: 'started' });
    t.match(handle, {
      apiName: 'CreateZone',
      jobUuid: /^[0-9a-f]{32}$/,
      location: new RegExp(`/zstack/v1/api-jobs/${handle.jobUuid}$`),
      apiTimeout: 30 * 60_000,
    });
    const stored = JSON.parse(JSON.stringify(handle)) as JobHandle<'CreateZone'>;
    const other = new ZStackClient({ endpoint: s.url }); // no credentials: polling needs no session
    const reply = await other.waitJob(stored);
    t.equal(reply.inventory.name, 'started', 'the handle resumes in another client (e.g. another process)');
    t.same(await other.waitJob(handle.jobUuid), reply, 'by uuid');
    t.same(await other.waitJob(handle.location), reply, 'by location');

    const mine = newUuid();
    const h2 = await zs.startCreateZone({ name: 'chosen-job' }, { jobUuid: mine });
    t.equal(h2.jobUuid, mine, 'a caller-chosen job uuid is used');
    const again = await zs.createZone({ name: 'chosen-job' }, { jobUuid: mine });
    t.equal(again.inventory.uuid, ((await zs.waitJob(h2)) as { inventory: { uuid: string } }).inventory.uuid, 'the same job uuid never runs twice');
    t.equal((await zs.queryZone({ q: { name: 'chosen-job' }, count: true })).total, 1);

    const unknown = await other.waitJob(newUuid()).catch((x) => x);
    t.ok(isNotFound(unknown), 'an unknown job is SYS.1003');
  });

  t.test('onProgress: elapsed time while polling, and the download progress of AddImage', async (t) => {
    const seen: JobProgress[] = [];
    const t0 = Date.now();
    const { inventory: img } = await zs.addImage(slowImage('progress', 1200), { onProgress: (p) => seen.push(p), pollIntervalMs: 100 });
    t.equal(img.status, 'Ready');
    t.ok(seen.length >= 4, `${seen.length} progress reports`);
    t.ok(seen.every((p, i) => p.apiName === 'AddImage' && p.polls === i + 1 && p.jobUuid === seen[0].jobUuid));
    t.ok(
      seen.every((p, i) => i === 0 || p.elapsedMs >= seen[i - 1].elapsedMs),
      'elapsed time grows',
    );
    t.ok(seen[seen.length - 1].elapsedMs <= Date.now() - t0);
    // The SDK follows the image it creates by choosing its uuid (`resourceUuid`, which the spec gives every create
    // API), or by its name when the server picks the uuid itself.
    const follows = seen.find((p) => p.resource) as { resource: { uuid: string } } | undefined;
    t.equal(follows?.resource.uuid, img.uuid, 'the image being created is followed');
    const percents = seen.map((p) => p.progress).filter((p): p is string => !!p);
    t.ok(percents.length > 0 && percents.every((p) => /^\d{1,3}%$/.test(p)), `image progress reported: ${percents.join(' ')}`);
    t.ok(
      percents.some((p) => p !== '0%'),
      'progress moves',
    );
  });

  t.test('timeouts: X-API-Timeout from timeoutMs, the server fails the job; the client bounds its own wait', async (t) => {
    const sent: RequestEvent[] = [];
    const c = admin({ hooks: { onRequest: (e) => sent.push(e) } });
    const t0 = Date.now();
    const e = await c.addImage(slowImage('too-slow', 6000), { timeoutMs: 1000 }).catch((x) => x);
    const took = Date.now() - t0;
    t.ok(e instanceof ZStackError && isTimeout(e), `${e}`);
    t.equal(e.code, 'SYS.1001');
    t.equal(e.httpStatus, 503, 'the server failed the job at its deadline');
    t.equal(e.apiName, 'AddImage');
    t.match(e.jobUuid, /^[0-9a-f]{32}$/);
    t.ok(took < 3500, `gave up after ${took} ms`);
    t.equal(sent.find((r) => r.apiName === 'AddImage' && r.method === 'POST')!.headers['X-API-Timeout'], '1', 'X-API-Timeout: 1 (seconds, rounded up)');

    // The client's own bound: waitJob gives up, the job keeps running and can be resumed.
    const handle = await zs.startAddImage(slowImage('resumable', 800));
    const t1 = Date.now();
    const w = await zs.waitJob(handle, { timeoutMs: 150 }).catch((x) => x);
    t.ok(isTimeout(w), 'the wait timed out');
    t.equal(w.httpStatus, 0, 'on the client');
    t.equal(w.jobUuid, handle.jobUuid);
    t.match(w.details, /resume with waitJob/);
    t.ok(Date.now() - t1 < 1000);
    const done = await zs.waitJob(handle);
    t.equal(done.inventory.status, 'Ready', 'resumed to completion');
  });

  t.test('AbortSignal cancels the request and the wait', async (t) => {
    const ac = new AbortController();
    const t0 = Date.now();
    setTimeout(() => ac.abort(), 200);
    const e = await zs.addImage(slowImage('aborted', 3000), { signal: ac.signal }).catch((x) => x);
    t.equal(e?.name, 'AbortError', 'the wait is cancelled');
    t.ok(Date.now() - t0 < 1000, `after ${Date.now() - t0} ms`);

    const pre = new AbortController();
    pre.abort(new Error('stop'));
    const sent: RequestEvent[] = [];
    const c = admin({ hooks: { onRequest: (e) => sent.push(e) } });
    t.equal((await c.queryZone({}, { signal: pre.signal }).catch((x) => x))?.message, 'stop', 'an aborted signal sends nothing (the reason is thrown)');
    t.equal(sent.filter((r) => r.apiName === 'QueryZone').length, 0);
  });

  t.test('query helpers: object conditions, lists, null, operators, fields as a list, count, sort', async (t) => {
    for (const [name, cpu] of [
      ['qa', 1],
      ['qb', 2],
      ['qc', 3],
    ] as const)
      await zs.createZone({ name, description: cpu === 2 ? undefined : `d${cpu}` });
    const names = async (q: Parameters<typeof zs.queryZone>[0]) => (await zs.queryZone(q)).inventories!.map((z) => z.name).sort();
    t.same(await names({ q: { name: 'qa' } }), ['qa']);
    t.same(await names({ q: 'name=qb' }), ['qb'], 'one string');
    t.same(await names({ q: ['name?=qa,qc'] }), ['qa', 'qc'], 'string list');
    t.same(await names({ q: { name: ['qa', 'qb', 'nope'] } }), ['qa', 'qb'], 'a list is ?=');
    t.same(await names({ q: { name: { '!?=': ['qa', 'qb'], '~=': 'q%' } } }), ['qc'], 'several operators AND');
    t.same(await names({ q: { name: { '~=': 'q_' }, description: null } }), ['qb'], 'null is "is null"');
    t.same(await names({ q: { name: { '~=': 'q_' }, description: { '!=': null } } }), ['qa', 'qc'], '!= null is "not null"');
    t.same(await names({ q: { name: { '>=': 'qb', '<': 'qc' } } }), ['qb']);
    const f = await zs.queryZone({ q: { name: 'qa' }, fields: ['name', 'uuid'] });
    t.same(Object.keys(f.inventories![0]).sort(), ['name', 'uuid']);
    t.same(await zs.queryZone({ q: { name: { '~=': 'q%' } }, count: true }), { total: 3, success: true });
    const desc = (await zs.queryZone({ q: { name: { '~=': 'q%' } }, sort: '-name' })).inventories!.map((z) => z.name);
    t.same(desc, ['qc', 'qb', 'qa']);

    t.same(conditionsOf({ cpuNum: { '>=': 2, '<=': 8 }, 'vmNics.ip': '10.0.0.5', state: ['Running', 'Stopped'], hostUuid: null, x: { 'not null': true } }), [
      'cpuNum>=2',
      'cpuNum<=8',
      'vmNics.ip=10.0.0.5',
      'state?=Running,Stopped',
      'hostUuid is null',
      'x not null',
    ]);
    t.throws(() => conditionsOf({ a: { '=>': 1 } }), /unknown query operator/);
    t.throws(() => conditionsOf({ a: { '>': [1, 2] } }), /a list only goes with/);
  });

  t.test('queryAll pages through 2,500 rows with start/limit', async (t) => {
    const now = new Date();
    const rows = Array.from({ length: 2500 }, (_, i) => ({ uuid: newUuid(), name: `bulk-${String(i).padStart(4, '0')}`, createDate: now, lastOpDate: now }));
    await s.app.db.insert(zones).values(rows);
    const pages: RequestEvent[] = [];
    const c = admin({ hooks: { onRequest: (e) => e.apiName === 'QueryZone' && pages.push(e) } });
    const seen = new Set<string>();
    const t0 = Date.now();
    for await (const z of c.queryAllZone({ q: { name: { '~=': 'bulk-%' } } }, { pageSize: 1000 })) seen.add(z.uuid);
    const ms = Date.now() - t0;
    t.equal(seen.size, 2500, 'every row once');
    t.same(
      pages.map((p) => new URL(p.url).searchParams.get('start')),
      ['0', '1000', '2000'],
      'three pages',
    );
    t.ok(pages.every((p) => new URL(p.url).searchParams.get('limit') === '1000'));
    t.comment(`queryAll over 2,500 zones in pages of 1000: ${ms} ms`);

    const firstTen: string[] = [];
    for await (const z of c.queryAllZone({ q: { name: { '~=': 'bulk-%' } }, sort: '+name', fields: ['name'] }, { pageSize: 3 })) {
      firstTen.push(z.name);
      if (firstTen.length === 10) break; // stopping early stops fetching
    }
    t.same(
      firstTen,
      Array.from({ length: 10 }, (_, i) => `bulk-000${i}`),
    );
    t.equal(pages.length, 3 + 4, 'four pages of 3 for ten rows');
  });

  t.test('errors: code, description, details, cause chain, httpStatus, jobUuid, apiName', async (t) => {
    const missing = newUuid();
    const nf = await zs.updateZone({ uuid: missing, name: 'x' }).catch((x) => x);
    t.ok(nf instanceof ZStackError && nf.isNotFound && isNotFound(nf));
    t.match(nf, { code: 'SYS.1003', httpStatus: 404, apiName: 'UpdateZone', description: /find/ });
    t.match(nf.details, missing);
    t.equal(nf.jobUuid, undefined, 'refused before a job existed: no job named');
    t.match(nf.request, { method: 'PUT', url: new RegExp(`/zstack/v1/zones/${missing}/actions$`) });

    const bad = await zs.queryZone({ q: ['nosuchfield=1'] }).catch((x) => x);
    t.match(bad, { code: 'SYS.1007', httpStatus: 400, apiName: 'QueryZone', isValidation: true, isNotFound: false });
    t.match(bad.message, /QueryZone, request [0-9a-f]{32}: SYS\.1007 .*nosuchfield/);
    t.equal(bad.jobUuid, undefined);

    const failed = await zs
      .addImage({ name: 'broken', url: 'http://example.com/x.qcow2?fail=true&durationMs=50', backupStorageUuids: [bs.uuid] })
      .catch((x) => x);
    t.ok(failed instanceof ZStackError);
    t.equal(failed.httpStatus, 503);
    t.match(failed.jobUuid, /^[0-9a-f]{32}$/, 'a failed job is named');
    // The call waited for its job (Prefer: wait) and got the failure in the POST's answer: the request named is that POST.
    t.match(failed.request, { method: 'POST', url: /\/zstack\/v1\/images$/ });
    t.ok(failed.causes.length >= 2, `cause chain: ${failed.causes.map((c: { code: string }) => c.code).join(' > ')}`);
    t.ok(failed.cause instanceof ZStackError, 'the ZStack cause chain is the Error.cause chain');
    t.equal(failed.rootCause, failed.causes[failed.causes.length - 1]);
    t.match(failed.rootCause.details, /simulated download failure/, 'the root cause is the agent failure');
    t.same(JSON.parse(JSON.stringify(failed)).code, failed.code, 'toJSON');
  });

  t.test('hooks see every exchange with secrets redacted; toCurl reproduces a call', async (t) => {
    const events: Array<RequestEvent | ResponseEvent | ErrorEvent> = [];
    const c = admin({ hooks: { onRequest: (e) => events.push(e), onResponse: (e) => events.push(e), onError: (e) => events.push(e) } });
    await c.createZone({ name: 'hooked' });
    await c.queryZone({ q: { name: 'hooked' } });
    const session = c.sessionUuid!;
    await c.validateSession({ sessionUuid: session });
    const text = JSON.stringify(events);
    t.ok(
      events.some((e) => e.url.endsWith('/zstack/v1/accounts/sessions/***/valid')),
      'a session uuid in the path is hidden',
    );
    t.notOk(text.includes(session), 'the session uuid never appears');
    t.notOk(text.includes(hashPassword('password')), 'nor the password hash');
    const login = events.find((e) => e.apiName === 'LogInByAccount' && !('status' in e)) as RequestEvent;
    t.same(login.body, { logInByAccount: { accountName: 'admin', password: '***' } });
    const loginReply = events.find((e) => e.apiName === 'LogInByAccount' && 'status' in e) as ResponseEvent;
    t.equal((loginReply.responseBody as { inventory: { uuid: string } }).inventory.uuid, '***');
    const create = events.find((e) => e.apiName === 'CreateZone' && e.method === 'POST' && !('status' in e)) as RequestEvent;
    t.equal(create.headers.Authorization, 'OAuth ***');
    t.match(create.headers['X-Job-UUID'], /^[0-9a-f]{32}$/, 'async calls carry a generated job uuid');
    t.match(create.curl, /^curl -X POST 'http:\/\/127\.0\.0\.1:\d+\/zstack\/v1\/zones' -H 'Authorization: OAuth \*\*\*'/);
    t.equal(create.headers.Prefer, 'wait=10', 'async calls ask to wait for their job');
    const exchanges = events.filter((e) => e.apiName === 'CreateZone' && 'status' in e) as ResponseEvent[];
    t.same(
      exchanges.map((e) => [e.method, e.status]),
      [['POST', 200]],
      'one exchange: the POST answered with the finished job',
    );
    t.ok(events.every((e) => e.id > 0 && e.attempt === 1));

    // A hook that throws never breaks a call.
    const rude = admin({
      hooks: {
        onRequest: () => {
          throw new Error('boom');
        },
      },
    });
    t.equal((await rude.queryZone({ count: true })).success, true);

    const curl = c.toCurl('QueryZone', { q: { name: 'hooked' }, fields: ['uuid', 'name'] });
    t.equal(curl, `curl -X GET '${s.url}/zstack/v1/zones?q=name%3Dhooked&fields=uuid%2Cname' -H 'Authorization: OAuth ***' -H 'X-ZStack-Errors: direct'`);
    t.match(c.toCurl('LogInByAccount', { accountName: 'admin', password: hashPassword('password') }), `"password":"***"`);
    t.match(
      c.toCurl('CreateZone', { name: "it's" }, { timeoutMs: 90_000, jobUuid: 'a'.repeat(32) }),
      `-H 'X-API-Timeout: 90' -H 'X-Job-UUID: ${'a'.repeat(32)}' -H 'Content-Type: application/json' -d '{"params":{"name":"it'\\''s"}}'`,
    );
    const real = c.toCurl('QueryZone', { q: { name: 'hooked' }, fields: ['uuid', 'name'] }, { redact: false });
    const { stdout } = await run('sh', ['-c', `${real} -s`]);
    t.same(JSON.parse(stdout), await c.queryZone({ q: { name: 'hooked' }, fields: ['uuid', 'name'] }), 'the unredacted curl returns what the SDK returns');
  });

  t.test('examples/sdk-quickstart.ts runs against the live server', async (t) => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'examples/sdk-quickstart.ts'], {
      env: { ...process.env, ZSTACK_ENDPOINT: s.url },
      cwd: new URL('../..', import.meta.url).pathname,
    });
    t.match(stdout, /^1\. created zone quickstart-\w+ \([0-9a-f]{32}\), state Enabled$/m);
    t.match(stdout, /^5\. UpdateZone failed: SYS\.1003 \(HTTP 404\)/m);
    t.match(stdout, /^7\. curl -X GET /m);
    t.match(stdout, /^done: zones deleted, logged out$/m);
    t.equal((await zs.queryZone({ q: { name: { '~=': 'quickstart-%' } }, count: true })).total, 0, 'it leaves nothing behind');
  });

  t.test('read-only mode refuses changes without sending them', async (t) => {
    const sent: RequestEvent[] = [];
    const ro = admin({ readOnly: true, hooks: { onRequest: (e) => sent.push(e) } });
    t.equal((await ro.queryZone({ count: true })).success, true, 'queries (and the login) go out');
    const e = await ro.createZone({ name: 'nope' }).catch((x) => x);
    t.match(e, { code: 'SDK.1001', httpStatus: 0, apiName: 'CreateZone' });
    t.notOk(sent.some((r) => r.apiName === 'CreateZone'));
  });
});

// The status contract (decision 3): as against upstream's REST server, a client that does not ask otherwise gets
// every failure of an asynchronous API — bad argument, unknown resource, invalid session, missing permission, wrong
// state — as a job that failed (202, then 503 {"error"} on the poll), and every failure of a synchronous API as 503
// with its ErrorCode. REST-layer faults (bad JSON, unknown route or action, bad headers) stay 4xx. Our SDK asks for
// the direct answer (`X-ZStack-Errors: direct`) and gets 400/401/403/404/409 at once.
import t from 'tap';
import { createHash } from 'node:crypto';
import { startServer, http } from '../lib/harness.js';
import { buildWorld } from '../lib/world.js';
import { UpstreamSdk } from './upstream-sdk.js';

t.test('status contract', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const zs = s.client;
  const w = await buildWorld(zs, { hosts: 1, virtualRouter: false });
  const sdk = new UpstreamSdk(s.url);
  await sdk.login();

  /** An async call as upstream's SDK makes it: 202 first, then the failure with its code on the poll. */
  const failsAsJob = async (what: string, method: string, path: string, body: unknown, code: string, client = sdk) => {
    const first = await client.send(method, path, body);
    t.equal(first.status, 202, `${what}: accepted (${JSON.stringify(first.json)})`);
    t.match(first.json?.location, /\/zstack\/v1\/api-jobs\/[0-9a-f]{32}$/);
    const done = await client.call(method, path, body);
    t.equal(done.status, 503, `${what}: the poll answers 503`);
    t.equal(done.json?.error?.code, code, `${what}: ${code} (${done.json?.error?.details})`);
  };

  await failsAsJob('bad argument', 'POST', '/zstack/v1/zones', { params: { description: 'no name' } }, 'SYS.1007');
  await failsAsJob(
    'unknown resource',
    'POST',
    '/zstack/v1/clusters',
    { params: { name: 'c', zoneUuid: 'a'.repeat(32), hypervisorType: 'Simulator' } },
    'SYS.1003',
  );
  await failsAsJob('wrong state', 'DELETE', `/zstack/v1/primary-storage/${w.primaryStorageUuid}`, undefined, 'SYS.1004');
  const anonymous = new UpstreamSdk(s.url);
  await failsAsJob('no session', 'POST', '/zstack/v1/zones', { params: { name: 'z' } }, 'ID.1001', anonymous);
  anonymous.session = 'b'.repeat(32);
  await failsAsJob('unknown session', 'POST', '/zstack/v1/zones', { params: { name: 'z' } }, 'ID.1001', anonymous);
  await zs.createAccount({ name: 'alice', password: createHash('sha512').update('pw').digest('hex') });
  const alice = new UpstreamSdk(s.url);
  await alice.login('alice', 'pw');
  t.ok(alice.session, 'alice is logged in');
  await failsAsJob(
    'missing permission',
    'PUT',
    '/zstack/v1/global-configurations/apiTimeout/CreateZone/actions',
    { updateGlobalConfig: { value: '1h' } },
    'ID.1002',
    alice,
  );
  t.same((await zs.queryZone({ q: ['name=z'] })).inventories, [], 'nothing was created');

  t.test('a refused call is a job like any other: Prefer: wait, X-Job-UUID', async (t) => {
    const waited = await sdk.send('POST', '/zstack/v1/zones', { params: {} }, { headers: { Prefer: 'wait=5' } });
    t.equal(waited.status, 503, 'with Prefer: wait, the failed job answers at once');
    t.equal(waited.json.error.code, 'SYS.1007');
    const jobUuid = 'c'.repeat(32);
    const first = await sdk.send(
      'POST',
      '/zstack/v1/clusters',
      { params: { name: 'c', zoneUuid: 'a'.repeat(32), hypervisorType: 'Simulator' } },
      { headers: { 'X-Job-UUID': jobUuid } },
    );
    const again = await sdk.send(
      'POST',
      '/zstack/v1/clusters',
      { params: { name: 'c', zoneUuid: 'a'.repeat(32), hypervisorType: 'Simulator' } },
      { headers: { 'X-Job-UUID': jobUuid } },
    );
    t.equal(first.json.location, again.json.location, 'a retry gets the same job');
    const poll = await sdk.send('GET', `/zstack/v1/api-jobs/${jobUuid}`, undefined, { headers: { 'X-Job-Wait-Ms': '5000' } });
    t.equal(poll.status, 503);
    t.equal(poll.json.error.code, 'SYS.1003');
  });

  t.test('sync failures are 503 with the ErrorCode', async (t) => {
    const login = await new UpstreamSdk(s.url).login('admin', 'wrong');
    t.equal(login.status, 503);
    t.equal(login.json.error.code, 'ID.1000');
    const query = await sdk.send('GET', '/zstack/v1/zones?q=colour=red');
    t.equal(query.status, 503);
    t.equal(query.json.error.code, 'SYS.1007');
    const anonymousQuery = await new UpstreamSdk(s.url).send('GET', '/zstack/v1/zones');
    t.equal(anonymousQuery.status, 503);
    t.equal(anonymousQuery.json.error.code, 'ID.1001');
  });

  t.test('REST-layer faults stay 4xx', async (t) => {
    const badJson = await sdk.send('POST', '/zstack/v1/zones', undefined, { raw: '{"params": ' });
    t.equal(badJson.status, 400);
    const noRoute = await sdk.send('GET', '/zstack/v1/nothing-here');
    t.equal(noRoute.status, 404);
    const noAction = await sdk.send('PUT', `/zstack/v1/zones/${w.zoneUuid}/actions`, { launchZone: {} });
    t.equal(noAction.status, 400);
    const badHeader = await sdk.send('POST', '/zstack/v1/zones', { params: { name: 'z' } }, { headers: { 'X-Job-UUID': 'nope' } });
    t.equal(badHeader.status, 400);
    t.equal(badHeader.json.error.code, 'SYS.1007');
    t.same((await zs.queryZone({ q: ['name=z'] })).inventories, [], 'nothing was created');
  });

  t.test('X-ZStack-Errors: direct (our SDK) answers at once with the status of the refusal', async (t) => {
    const auth = { Authorization: `OAuth ${sdk.session}` };
    const cases: Array<[string, string, string, unknown, number, string, Record<string, string>?]> = [
      ['bad argument', 'POST', '/zstack/v1/zones', { params: {} }, 400, 'SYS.1007'],
      ['no session', 'POST', '/zstack/v1/zones', { params: { name: 'z' } }, 401, 'ID.1001', {}],
      ['unknown resource', 'POST', '/zstack/v1/clusters', { params: { name: 'c', zoneUuid: 'a'.repeat(32), hypervisorType: 'Simulator' } }, 404, 'SYS.1003'],
      ['sync', 'GET', '/zstack/v1/zones?q=colour=red', undefined, 400, 'SYS.1007'],
    ];
    for (const [what, method, path, body, status, code, headers] of cases) {
      const r = await http(s.url, method, path, { body, headers: headers ?? auth });
      t.equal(r.status, status, what);
      t.equal(r.json?.error?.code, code, what);
    }
    const e = await zs.createCluster({ name: 'c', zoneUuid: 'a'.repeat(32), hypervisorType: 'Simulator' }).catch((x) => x);
    t.equal(e.httpStatus, 404, 'the SDK asks for it');
    t.equal(e.code, 'SYS.1003');
    const upstream = await http(s.url, 'POST', '/zstack/v1/zones', { body: { params: {} }, headers: auth, upstream: true });
    t.equal(upstream.status, 202, 'without it: the job');
  });
});

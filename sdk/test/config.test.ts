// Client configuration: defaults from the environment (ZSTACK_ENDPOINT, ZSTACK_ACCOUNT/ZSTACK_PASSWORD or
// ZSTACK_SESSION), explicit options winning, `env: false`; axios settings passed through (`axios`), and request
// interceptors on `zs.http` as middleware that can change every request the SDK sends.
import t from 'tap';
import { startServer } from '../../test/lib/harness.js';
import { ZStackClient } from '../src/index.js';

t.test('client configuration', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());

  t.test('the environment supplies endpoint and credentials', async (t) => {
    const env = { ZSTACK_ENDPOINT: s.url, ZSTACK_ACCOUNT: 'admin', ZSTACK_PASSWORD: 'password' };
    const zs = new ZStackClient({ env });
    t.equal(zs.endpoint, s.url);
    const zone = (await zs.createZone({ name: 'from-env' })).inventory;
    t.equal(zone.name, 'from-env', 'logged in with the environment’s account');

    // A session from the environment (e.g. one zstack-cli keeps) is used as is.
    const viaSession = new ZStackClient({ env: { ZSTACK_ENDPOINT: s.url, ZSTACK_SESSION: zs.sessionUuid } });
    t.equal((await viaSession.queryZone({ q: { uuid: zone.uuid } })).inventories?.[0]?.uuid, zone.uuid);

    // Explicit options win over the environment.
    const explicit = new ZStackClient({
      env: { ZSTACK_ENDPOINT: 'http://nowhere.invalid:1', ZSTACK_ACCOUNT: 'nobody' },
      endpoint: s.url,
      accountName: 'admin',
      password: 'password',
    });
    t.equal(explicit.endpoint, s.url);
    t.equal(explicit.options.accountName, 'admin');
    t.equal((await explicit.queryZone({ q: { uuid: zone.uuid } })).inventories?.length, 1);

    // ZSTACK_ACCOUNT_NAME (the Pulumi provider's name for it) is read too.
    t.equal(new ZStackClient({ env: { ZSTACK_ENDPOINT: s.url, ZSTACK_ACCOUNT_NAME: 'admin' } }).options.accountName, 'admin');
  });

  t.test('no endpoint anywhere, or env: false, is a clear error', async (t) => {
    t.throws(() => new ZStackClient({ env: {} }), /no endpoint .*ZSTACK_ENDPOINT/);
    const saved = process.env.ZSTACK_ENDPOINT;
    process.env.ZSTACK_ENDPOINT = s.url;
    t.teardown(() => (saved === undefined ? delete process.env.ZSTACK_ENDPOINT : (process.env.ZSTACK_ENDPOINT = saved)));
    t.equal(new ZStackClient().endpoint, s.url, 'process.env by default');
    t.throws(() => new ZStackClient({ env: false }), /no endpoint/, 'env: false reads nothing');
  });

  t.test('request interceptors change what the SDK sends; axios settings pass through', async (t) => {
    const zs = new ZStackClient({ endpoint: s.url, accountName: 'admin', password: 'password', axios: { headers: { 'X-From-Axios-Defaults': 'yes' } } });
    const seen: Array<{ url?: string; header?: unknown; defaults?: unknown }> = [];
    zs.http.interceptors.request.use((config) => {
      // Middleware: rewrite the query of every QueryZone to a condition that matches nothing.
      if (config.url?.startsWith('/zstack/v1/zones?')) config.url = '/zstack/v1/zones?q=name%3Dno-such-zone';
      config.headers.set('X-Trace-Id', 'trace-1');
      return config;
    });
    zs.http.interceptors.response.use((res) => {
      seen.push({ url: res.config.url, header: res.config.headers.get('X-Trace-Id'), defaults: res.config.headers.get('X-From-Axios-Defaults') });
      return res;
    });
    await zs.createZone({ name: 'intercepted' });
    const r = await zs.queryZone({ q: { name: 'intercepted' } });
    t.same(r.inventories, [], 'the interceptor’s rewrite was sent');
    t.ok(seen.length >= 3, 'login, create and query went through the interceptors');
    t.ok(
      seen.every((x) => x.header === 'trace-1' && x.defaults === 'yes'),
      'every request carried the added and the default header',
    );
  });
});

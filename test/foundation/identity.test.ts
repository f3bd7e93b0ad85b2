// Login, sessions (expiry, logout), accounts and admin-only operations.
import t from 'tap';
import { createHash } from 'node:crypto';
import { startServer, http } from '../lib/harness.js';
import { ZStackClient } from '../../sdk/src/index.js';
import { sessions } from '../../server/src/db/schema/index.js';

const sha512 = (s: string) => createHash('sha512').update(s).digest('hex');

t.test('identity', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());

  t.test('login', async (t) => {
    const bad = await http(s.url, 'PUT', '/zstack/v1/accounts/login', { body: { logInByAccount: { accountName: 'admin', password: sha512('wrong') } } });
    t.equal(bad.status, 401);
    t.equal(bad.json.error.code, 'ID.1000');
    const good = await http(s.url, 'PUT', '/zstack/v1/accounts/login', { body: { logInByAccount: { accountName: 'admin', password: sha512('password') } } });
    t.equal(good.status, 200);
    t.equal(good.json.inventory.accountUuid, '36c27e8ff05c4780bf6d2fa65700f22e');
    t.equal(good.json.inventory.userType, 'AccountVO');
    const sid = good.json.inventory.uuid;
    t.same((await http(s.url, 'GET', `/zstack/v1/accounts/sessions/${sid}/valid`)).json, { valid: true, success: true });
    t.equal((await http(s.url, 'DELETE', `/zstack/v1/accounts/sessions/${sid}`)).status, 200);
    t.same((await http(s.url, 'GET', `/zstack/v1/accounts/sessions/${sid}/valid`)).json, { valid: false, success: true });
    const after = await http(s.url, 'GET', '/zstack/v1/zones', { headers: { Authorization: `OAuth ${sid}` } });
    t.equal(after.status, 401, 'a logged-out session is refused');
  });

  t.test('expired sessions are refused; the SDK logs in again once', async (t) => {
    const client = new ZStackClient({ endpoint: s.url, accountName: 'admin', password: 'password' });
    const sid = await client.login();
    await s.app.db.update(sessions).set({ expiredDate: new Date(Date.now() - 1000) });
    const raw = await http(s.url, 'GET', '/zstack/v1/zones', { headers: { Authorization: `OAuth ${sid}` } });
    t.equal(raw.status, 401);
    t.equal(raw.json.error.code, 'ID.1001');
    const zones = await client.queryZone({});
    t.ok(Array.isArray(zones.inventories), 'the SDK re-logged in');
    t.not(client.sessionUuid, sid);
  });

  t.test('accounts', async (t) => {
    const acct = await s.client.createAccount({ name: 'alice', password: sha512('secret') });
    t.equal(acct.inventory.type, 'Normal');
    t.notOk('password' in acct.inventory, 'no password in the inventory');
    const dup = await s.client.createAccount({ name: 'alice', password: sha512('x') }).catch((e) => e);
    t.equal(dup.code, 'SYS.1007');
    const alice = new ZStackClient({ endpoint: s.url, accountName: 'alice', password: 'secret' });
    await alice.login();
    const denied = await alice.createAccount({ name: 'mallory', password: sha512('x') }).catch((e) => e);
    t.equal(denied.code, 'ID.1002');
    t.equal(denied.httpStatus, 403);
    await alice.updateAccount({ uuid: acct.inventory.uuid, password: sha512('new-secret') });
    const relogin = new ZStackClient({ endpoint: s.url, accountName: 'alice', password: 'new-secret' });
    t.ok(await relogin.login(), 'the changed password works');
    const found = await s.client.queryAccount({ q: ['name=alice'] });
    t.equal(found.inventories!.length, 1);
  });
});

// The console APIs against a live server: its console proxy agent is a real child process (spawn mode), the VM a
// simulated one with an RFB console. RequestConsoleAccess → a WebSocket to the returned address → the VNC
// handshake; token reuse, refusal (used, expired, wrong, revoked), revocation when the VM stops, the agent's
// status through QueryConsoleProxyAgent, killing it and ReconnectConsoleProxyAgent, UpdateConsoleProxyAgent, and
// the console page served by the server.
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { eq } from 'drizzle-orm';
import t from 'tap';
import { buildWorld } from '../../examples/lib-world.js';
import { closeOf, openWs, refused, rfbHandshake } from '../../agents/test/console-proxy-helpers.js';
import { consoleProxies } from '../../server/src/db/schema/index.js';
import { ZStackError } from '../../sdk/src/index.js';
import { http, startServer } from '../lib/harness.js';
import { freePort, sshdUnavailable, startSshd } from '../lib/sshd.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

// Agents of this test's servers listen on free ports (the default, 4900, may be taken by another server here).
process.env.ZSTACK_CONSOLE_PROXY_PORT = '0';

t.test('console access through the console proxy agent', async (t) => {
  const s = await startServer({ app: { consoleAgentOnDemand: false } }); // this test watches the agent started at boot
  t.teardown(() => s.close());
  const zs = s.client;
  const consoles = s.app.services.consoles;
  const nodeUuid = s.app.nodeUuid;
  const agentOf = async () => (await zs.queryConsoleProxyAgent({ q: [`uuid=${nodeUuid}`] })).inventories![0];

  // The agent is spawned when the node starts serving, while the world is built.
  const w = await buildWorld(zs, { virtualRouter: false, hosts: 2 });
  const vm = (
    await zs.createVmInstance({ name: 'vm-console', instanceOfferingUuid: w.instanceOfferingUuid, imageUuid: w.imageUuid, l3NetworkUuids: [w.l3NetworkUuid] })
  ).inventory;
  const url = (c: { scheme: string; hostname: string; port: number }, token: string) => `${c.scheme}://${c.hostname}:${c.port}/?token=${token}`;
  await until('the agent spawned at boot to connect', async () => (await agentOf())?.status === 'Connected');
  await zs.updateGlobalConfig({ category: 'console', name: 'agent.ping.interval', value: '1' });
  // Its WebSocket listener moves to a port of its own.
  const port = await freePort();
  const moved = (await zs.updateConsoleProxyAgent({ uuid: nodeUuid, consoleProxyOverriddenIp: '0.0.0.0', consoleProxyPort: port })).inventory;
  t.match(moved, { status: 'Connected', consoleProxyPort: port }, 'the agent restarted on its own port');

  t.test('QueryConsoleProxyAgent: one Connected agent per management node', async (t) => {
    const { inventories } = await zs.queryConsoleProxyAgent({});
    t.equal(inventories!.length, 1);
    t.match(inventories![0], {
      uuid: nodeUuid,
      managementIp: '127.0.0.1',
      type: 'ManagementServerConsoleProxy',
      status: 'Connected',
      state: 'Enabled',
      consoleProxyPort: port,
    });
    t.ok(consoles.agents.pid, 'a child process');
    t.not(consoles.agents.pid, process.pid);
    t.equal((await zs.queryConsoleProxyAgent({ q: ['status=Disconnected'], count: true })).total, 0);
  });

  t.test('RequestConsoleAccess → WebSocket → RFB handshake; tokens open one connection', async (t) => {
    const { inventory: c } = await zs.requestConsoleAccess({ vmInstanceUuid: vm.uuid });
    const agent = await agentOf();
    t.match(c, { scheme: 'ws', targetScheme: 'vnc', hostname: '127.0.0.1', port: agent.consoleProxyPort, token: /^[A-Za-z0-9_-]{16,}$/ });
    const expires = Date.parse(c.expiredDate + ' UTC');
    t.ok(Math.abs(expires - (Date.now() + 1800_000)) < 10_000, `expires in 30 minutes (${c.expiredDate})`);
    // A ready link: this server's console page at the address the caller used, for this token and proxy.
    const page = new URL(c.url!);
    t.equal(page.origin, new URL(s.url).origin, 'the console page is on the address the caller used');
    t.equal(page.pathname, '/zstack/console');
    t.same(Object.fromEntries(page.searchParams), { token: c.token, host: c.hostname, port: String(c.port) });
    const html = await fetch(c.url!);
    t.equal(html.status, 200, 'the page opens');
    t.match(html.headers.get('content-type'), /text\/html/);

    // Asked again before it was used: the same token (same session, VM, host and proxy).
    const again = (await zs.requestConsoleAccess({ vmInstanceUuid: vm.uuid })).inventory;
    t.equal(again.token, c.token, 'an unused token is handed out again');

    const opened = await openWs(url(c, c.token));
    const hs = await rfbHandshake(opened);
    t.equal(hs.version, 'RFB 003.008\n', "the simulated VM's banner");
    t.same(hs.types, [1, 1], 'security type None');
    t.equal(hs.securityResult, 0);
    t.equal(hs.name, vm.uuid, 'ServerInit names the VM');

    const reused = await refused(url(c, c.token));
    t.equal(reused.status, 403);
    t.match(reused.reason, /already used/);

    // Used: the next request gets a fresh token, which works while the first session stays open.
    const fresh = (await zs.requestConsoleAccess({ vmInstanceUuid: vm.uuid })).inventory;
    t.not(fresh.token, c.token, 'a used token is never handed out again');
    const second = await openWs(url(fresh, fresh.token));
    t.equal((await rfbHandshake(second)).version, 'RFB 003.008\n');
    second.ws.close();
    opened.ws.close();

    const wrong = await refused(url(c, 'A'.repeat(32)));
    t.equal(wrong.status, 401);
    t.match(wrong.reason, /unknown token/);
    t.equal((await refused(`${c.scheme}://${c.hostname}:${c.port}/`)).status, 401, 'no token');

    // Another session gets its own token: tokens are never shared between sessions.
    const other = new (zs.constructor as typeof import('../../sdk/src/index.js').ZStackClient)({
      endpoint: s.url,
      accountName: 'admin',
      password: 'password',
      pollIntervalMs: 20,
    });
    const theirs = (await other.requestConsoleAccess({ vmInstanceUuid: vm.uuid })).inventory;
    const mine = (await zs.requestConsoleAccess({ vmInstanceUuid: vm.uuid })).inventory;
    t.not(theirs.token, mine.token);
  });

  t.test('tokens expire (console/vnc.token.timeout)', async (t) => {
    await zs.updateGlobalConfig({ category: 'console', name: 'vnc.token.timeout', value: '1' });
    t.teardown(() => zs.updateGlobalConfig({ category: 'console', name: 'vnc.token.timeout', value: '1800' }));
    const { inventory: c } = await zs.requestConsoleAccess({ vmInstanceUuid: vm.uuid });
    await sleep(1200);
    const expired = await refused(url(c, c.token));
    t.equal(expired.status, 403);
    t.match(expired.reason, /expired/);
    const next = (await zs.requestConsoleAccess({ vmInstanceUuid: vm.uuid })).inventory;
    t.not(next.token, c.token, 'an expired token is not handed out again');
  });

  t.test('stopping the VM closes its console sessions and revokes its tokens; a Stopped VM gets 409', async (t) => {
    const { inventory: c } = await zs.requestConsoleAccess({ vmInstanceUuid: vm.uuid });
    const live = await openWs(url(c, c.token));
    await rfbHandshake(live);
    const closed = closeOf(live.ws);
    const { inventory: unused } = await zs.requestConsoleAccess({ vmInstanceUuid: vm.uuid });
    t.not(unused.token, c.token);

    await zs.stopVmInstance({ uuid: vm.uuid });
    const { code } = await closed;
    t.ok(code === 4001 || code === 1000, `the live session is closed (${code})`);
    const revoked = await until('the unused token to be revoked', async () => {
      const r = await refused(url(unused, unused.token));
      return /revoked/.test(r.reason) ? r : undefined;
    });
    t.equal(revoked.status, 403, 'the unused token is revoked');

    const e = await zs.requestConsoleAccess({ vmInstanceUuid: vm.uuid }).catch((x) => x);
    t.ok(e instanceof ZStackError);
    t.equal((await zs.requestConsoleAccess({ vmInstanceUuid: 'f'.repeat(32) }).catch((x) => x)).httpStatus, 404, 'unknown VM');
    t.equal(e.httpStatus, 409);
    t.equal(e.code, 'VM.1000');
    t.match(e.details, /Stopped/, 'names the state');

    await zs.startVmInstance({ uuid: vm.uuid });
    const after = (await zs.requestConsoleAccess({ vmInstanceUuid: vm.uuid })).inventory;
    t.not(after.token, unused.token);
    const reopened = await openWs(url(after, after.token));
    t.equal((await rfbHandshake(reopened)).version, 'RFB 003.008\n', 'console access works again once the VM runs');
    reopened.ws.close();
  });

  t.test('migrating the VM revokes its tokens', async (t) => {
    const { inventory: c } = await zs.requestConsoleAccess({ vmInstanceUuid: vm.uuid });
    await zs.migrateVm({ vmInstanceUuid: vm.uuid });
    await until('the token to be revoked', async () => /revoked/.test((await refused(url(c, c.token))).reason));
    const moved = (await zs.requestConsoleAccess({ vmInstanceUuid: vm.uuid })).inventory;
    t.not(moved.token, c.token);
    const opened = await openWs(url(moved, moved.token));
    t.equal((await rfbHandshake(opened)).version, 'RFB 003.008\n', 'the console on the new host');
    opened.ws.close();
  });

  t.test('pings: an agent that stops answering turns Disconnected, and Connected again when it answers', async (t) => {
    const pid = consoles.agents.pid!;
    process.kill(pid, 'SIGSTOP');
    try {
      await until('Disconnected after a failed ping', async () => (await agentOf()).status === 'Disconnected');
      t.pass('Disconnected (console/agent.ping.interval = 1 s)');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await until('Connected after a good ping', async () => (await agentOf()).status === 'Connected');
    t.equal(consoles.agents.pid, pid, 'the same process, not restarted');
  });

  t.test('a killed agent turns Disconnected; ReconnectConsoleProxyAgent brings it back', async (t) => {
    const { inventory: before } = await zs.requestConsoleAccess({ vmInstanceUuid: vm.uuid });
    const pid = consoles.agents.pid!;
    process.kill(pid, 'SIGKILL');
    await until('Disconnected', async () => (await agentOf()).status === 'Disconnected');
    t.pass('Disconnected in QueryConsoleProxyAgent');
    const e = await zs.requestConsoleAccess({ vmInstanceUuid: vm.uuid }).catch((x) => x);
    t.equal(e.code, 'SYS.1006', 'no console access while the agent is down');
    t.match(e.details, /Disconnected/);

    const all = await zs.reconnectConsoleProxyAgent({});
    t.same(all.inventory, { [nodeUuid]: true }, "every agent (this node's) reconnected");
    t.equal((await agentOf()).status, 'Connected');
    const unknown = await zs.reconnectConsoleProxyAgent({ agentUuids: ['f'.repeat(32)] });
    t.match(unknown.inventory['f'.repeat(32)], { code: 'SYS.1007' }, 'an unknown agent gets an error entry');
    t.not(consoles.agents.pid, pid, 'a new process');

    const { inventory: c } = await zs.requestConsoleAccess({ vmInstanceUuid: vm.uuid });
    t.not(c.token, before.token, 'tokens of the old agent are gone');
    const opened = await openWs(url(c, c.token));
    t.equal((await rfbHandshake(opened)).version, 'RFB 003.008\n', 'console access works again');
    opened.ws.close();
  });

  t.test('another management node: its own agent, restarted by it on request', async (t) => {
    const peer = await s.startPeer();
    t.teardown(() => peer.close());
    const peerAgent = async () => (await zs.queryConsoleProxyAgent({ q: [`uuid=${peer.nodeUuid}`] })).inventories![0];
    await until("the peer's agent to connect", async () => (await peerAgent())?.status === 'Connected');
    t.equal((await zs.queryConsoleProxyAgent({ count: true })).total, 2, 'one agent per management node');
    const pid = peer.services.consoles.agents.pid;
    t.ok(pid);
    t.not(pid, consoles.agents.pid);
    const r = await zs.reconnectConsoleProxyAgent({ agentUuids: [peer.nodeUuid] });
    t.same(r.inventory, { [peer.nodeUuid]: true }, 'asked through this node, done by the peer');
    t.not(peer.services.consoles.agents.pid, pid, 'the peer restarted its agent');
    t.equal(consoles.agents.pid !== undefined, true);
    await peer.close();
    t.equal((await zs.queryConsoleProxyAgent({ count: true })).total, 1, 'the agent row leaves with its node');
  });

  t.test('UpdateConsoleProxyAgent: overridden IP and port', async (t) => {
    const probe = await openWs(`ws://127.0.0.1:${(await agentOf()).consoleProxyPort}/?token=none`).catch((x) => x);
    t.equal(probe.status, 401, 'the listener answers on its port');
    const port2 = await freePort();
    const { inventory: a } = await zs.updateConsoleProxyAgent({ uuid: nodeUuid, consoleProxyOverriddenIp: 'localhost', consoleProxyPort: port2 });
    t.match(a, { consoleProxyOverriddenIp: 'localhost', consoleProxyPort: port2, status: 'Connected' });
    const { inventory: c } = await zs.requestConsoleAccess({ vmInstanceUuid: vm.uuid });
    t.match(c, { hostname: 'localhost', port: port2 });
    const opened = await openWs(url(c, c.token));
    t.equal((await rfbHandshake(opened)).version, 'RFB 003.008\n', 'through the moved listener');
    opened.ws.close();

    const cleared = (await zs.updateConsoleProxyAgent({ uuid: nodeUuid, consoleProxyOverriddenIp: '0.0.0.0' })).inventory;
    t.equal(cleared.consoleProxyOverriddenIp, undefined, '0.0.0.0 clears it');
    t.equal(cleared.consoleProxyPort, port2, 'the port stays');
    t.equal((await zs.requestConsoleAccess({ vmInstanceUuid: vm.uuid })).inventory.hostname, '127.0.0.1');

    const missing = await zs.updateConsoleProxyAgent({ uuid: 'f'.repeat(32), consoleProxyOverriddenIp: '10.0.0.1' }).catch((x) => x);
    t.equal(missing.httpStatus, 404);
    const invalid = await zs.updateConsoleProxyAgent({ uuid: nodeUuid, consoleProxyOverriddenIp: 'not a host' }).catch((x) => x);
    t.equal(invalid.httpStatus, 400);
  });

  t.test('destroying a VM revokes its tokens; expunging it forgets them', async (t) => {
    const vm2 = (
      await zs.createVmInstance({
        name: 'vm-destroyed',
        instanceOfferingUuid: w.instanceOfferingUuid,
        imageUuid: w.imageUuid,
        l3NetworkUuids: [w.l3NetworkUuid],
      })
    ).inventory;
    const { inventory: c } = await zs.requestConsoleAccess({ vmInstanceUuid: vm2.uuid });
    const live = await openWs(url(c, c.token));
    await rfbHandshake(live);
    const closed = closeOf(live.ws);
    const { inventory: unused } = await zs.requestConsoleAccess({ vmInstanceUuid: vm2.uuid });
    await zs.destroyVmInstance({ uuid: vm2.uuid });
    t.ok([1000, 4001].includes((await closed).code), 'the live session is closed');
    await until('the unused token to be revoked', async () => /revoked/.test((await refused(url(unused, unused.token))).reason));
    const rows = () => s.app.db.select().from(consoleProxies).where(eq(consoleProxies.vmInstanceUuid, vm2.uuid));
    t.ok((await rows()).length > 0 && (await rows()).every((r) => r.status === 'Inactive'), 'its paths are Inactive');
    await zs.expungeVmInstance({ uuid: vm2.uuid });
    await until('its paths to be forgotten', async () => (await rows()).length === 0);
    t.pass('deleted with the VM');
  });

  t.test('the console page is served by the server, without a session', async (t) => {
    const { inventory: c } = await zs.requestConsoleAccess({ vmInstanceUuid: vm.uuid });
    const page = await http(s.url, 'GET', `/zstack/console?token=${c.token}&host=${c.hostname}&port=${c.port}&title=vm-console`);
    t.equal(page.status, 200);
    t.match(page.headers.get('content-type'), /^text\/html/);
    t.match(page.text, /<title>vm-console - console<\/title>/);
    t.match(page.text, new RegExp(`"token":"${c.token}"`));
    t.equal(page.headers.get('cache-control'), 'no-store');
    const js = await http(s.url, 'GET', '/zstack/console/novnc/core/rfb.js');
    t.equal(js.status, 200, 'noVNC is served');
    const bad = await http(s.url, 'GET', '/zstack/console?port=4900');
    t.equal(bad.status, 400);
    t.equal(bad.json.error.code, 'SYS.1007');
  });

  // Last: the deployed agent's WebSocket listener takes port 4900 (the deployer does not pass another one).
  t.test('ssh mode: ReconnectConsoleProxyAgent deploys the agent with the deployer', { skip: sshdUnavailable() ?? false }, async (t) => {
    if (!(await portFree(4900))) return void t.pass('SKIP: port 4900 is taken on this machine');
    const sshd = await startSshd();
    t.teardown(() => sshd.stop());
    const keyFile = join(sshd.home, 'id_console');
    writeFileSync(keyFile, sshd.privateKey, { mode: 0o600 });
    const agentPort = await freePort();
    const set = (name: string, value: string) => zs.updateGlobalConfig({ category: 'console', name, value });
    await set('agent.deploy.sshPort', String(sshd.port));
    await set('agent.deploy.username', sshd.username);
    await set('agent.deploy.privateKeyFile', keyFile);
    await set('agent.deploy.installRoot', join(sshd.home, 'console-proxy'));
    await set('agent.deploy.agentPort', String(agentPort));
    await set('agent.deploy.mode', 'ssh');

    const r = await zs.reconnectConsoleProxyAgent({ agentUuids: [nodeUuid] });
    if (/EADDRINUSE/.test(JSON.stringify(r.inventory[nodeUuid]))) return void t.pass('SKIP: port 4900 was taken meanwhile');
    t.equal(r.inventory[nodeUuid], true, 'deployed and connected');
    t.equal(consoles.agents.pid, undefined, 'the spawned agent is gone');
    t.match(await agentOf(), { status: 'Connected', consoleProxyPort: 4900 });
    const { inventory: c } = await zs.requestConsoleAccess({ vmInstanceUuid: vm.uuid });
    t.match(c, { hostname: '127.0.0.1', port: 4900 });
    const opened = await openWs(url(c, c.token));
    t.equal((await rfbHandshake(opened)).version, 'RFB 003.008\n', 'through the deployed agent');
    opened.ws.close();
    const e = await zs.updateConsoleProxyAgent({ uuid: nodeUuid, consoleProxyOverriddenIp: '0.0.0.0', consoleProxyPort: 4901 }).catch((x) => x);
    t.equal(e.httpStatus, 400, "the deployed agent's port cannot be moved");

    // A redeploy with nothing changed leaves the running agent alone (and keeps its secret).
    t.same((await zs.reconnectConsoleProxyAgent({})).inventory, { [nodeUuid]: true });
  });
});

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '0.0.0.0', () => srv.close(() => resolve(true)));
  });
}

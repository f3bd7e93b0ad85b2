// UpdateKVMHost: the SSH login is changed (password sealed, never in the reply, the stored job or an error) and the
// next ReconnectHost deploys with it. Without an sshd: a new sshPort nobody listens on is what the reconnect is
// refused on. With a real sshd (test/lib/sshd.ts, root only): a wrong password is rejected, the right one logs in
// (the deploy is made to fail right after logging in, at detect-os, so no agent is installed: the test stays quick).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { eq } from 'drizzle-orm';
import { freePort, sshdUnavailable, startSshd } from '../lib/sshd.js';
import { startServer } from '../lib/harness.js';
import { ZStackError } from '../../sdk/src/index.js';
import { apiJobs, hosts } from '../../server/src/db/schema/index.js';
import { credentialVault } from '../../server/src/core/credentials.js';
import { newUuid } from '../../server/src/core/ids.js';

const s = await startServer();
t.teardown(() => s.close());
const zs = s.client;
const vault = credentialVault(s.app.contextOf('host'));
await zs.updateGlobalConfig({ category: 'host', name: 'connection.autoReconnectOnError', value: 'false' });

const zone = (await zs.createZone({ name: 'z' })).inventory;
const cluster = (await zs.createCluster({ zoneUuid: zone.uuid, name: 'kvm', hypervisorType: 'KVM' })).inventory;
// A KVM host as AddKVMHost leaves one whose agent went away: its login sealed, Disconnected (no deploy needed here).
const hostUuid = newUuid();
await s.app.db.insert(hosts).values({
  uuid: hostUuid,
  zoneUuid: zone.uuid,
  clusterUuid: cluster.uuid,
  name: 'kvm1',
  managementIp: '127.0.0.1',
  hypervisorType: 'KVM',
  architecture: 'x86_64',
  username: 'old-user',
  sshPort: 22,
  status: 'Disconnected',
  credential: vault.seal({ password: 'old-password', agentSecret: 'agent-secret-kept' }),
});
const sealed = async () => vault.open((await s.app.db.select().from(hosts).where(eq(hosts.uuid, hostUuid)))[0].credential!, 'test');
const failure = async (p: Promise<unknown>) => {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  if (!(e instanceof ZStackError)) throw new Error(`expected a ZStackError, got ${e === undefined ? 'success' : String(e)}`);
  return e;
};

t.test('the new login is sealed, answered without the password, stored without it', async (t) => {
  const port = await freePort();
  const r = await zs.updateKVMHost({ uuid: hostUuid, username: 'new-user', password: 'n3w-Passw0rd', sshPort: port, name: 'kvm1-renamed' });
  t.match(r.inventory, { username: 'new-user', sshPort: port, name: 'kvm1-renamed', status: 'Disconnected' }, 'the host is left as it was');
  t.notMatch(JSON.stringify(r), /n3w-Passw0rd|password/i, 'no password in the reply');
  t.match(await sealed(), { password: 'n3w-Passw0rd', agentSecret: 'agent-secret-kept' }, "sealed; the agent's secret kept");
  const [job] = await s.app.db.select().from(apiJobs).where(eq(apiJobs.apiName, 'UpdateKVMHost'));
  t.notMatch(JSON.stringify(job), /n3w-Passw0rd/, 'the stored job has no password');
  t.match(JSON.stringify(job.request), /\*{5}/, 'it is redacted there');

  // The reconnect uses the new port: nobody listens there.
  const e = await failure(zs.reconnectHost({ uuid: hostUuid }));
  t.match(e.errorCode, { code: 'HOST.1003' });
  t.match(e.details, new RegExp(`connection refused \\(is sshd running on port ${port}\\?\\)`));
  t.notMatch(JSON.stringify(e.errorCode), /n3w-Passw0rd/, 'nor in the error');

  await failure(zs.updateKVMHost({ uuid: hostUuid, sshPort: 70000 } as never)).then((x) => t.equal(x.code, 'SYS.1007'));
  await failure(zs.updateKVMHost({ uuid: hostUuid, username: '' })).then((x) => t.equal(x.code, 'SYS.1007'));
});

const unavailable = sshdUnavailable();
t.test('with a real sshd: a wrong password is refused, the updated one logs in', { skip: unavailable }, async (t) => {
  const sshd = await startSshd();
  t.teardown(() => sshd.stop());
  await zs.updateKVMHost({ uuid: hostUuid, username: sshd.username, password: 'not-the-password', sshPort: sshd.port });
  const wrong = await failure(zs.reconnectHost({ uuid: hostUuid }));
  t.match(wrong.details, new RegExp(`authentication failed for ${sshd.username}@127\\.0\\.0\\.1:${sshd.port} \\(password rejected\\)`));

  // The right password: the deploy logs in and then fails at detect-os (its install root cannot be made).
  const aFile = join(sshd.home, 'a-file');
  writeFileSync(aFile, 'not a directory\n');
  await zs.updateGlobalConfig({ category: 'kvm', name: 'agent.installRoot', value: join(aFile, 'root') });
  await zs.updateKVMHost({ uuid: hostUuid, password: sshd.password });
  const later = await failure(zs.reconnectHost({ uuid: hostUuid }));
  t.match(later.details, /task detect-os failed/, 'logged in with the new password');
  const runs = (await zs.queryHostDeployLog({ q: [`resourceUuid=${hostUuid}`], sort: '+id' })).inventories!;
  const last = runs.filter((l) => l.deployUuid === runs[runs.length - 1].deployUuid);
  t.same(
    last.filter((l) => l.status !== 'start').map((l) => `${l.task}:${l.status}`),
    ['connect:done', 'detect-os:fail'],
  );
});

// KVM hosts and SFTP backup storage deployed over SSH to a real sshd (test/lib/sshd.ts): the clear HOST.1003 errors
// of a failed add (wrong password, refused port, a failing task) with nothing left behind, AddKVMHost → Connected
// with capacity and OS facts, AddSftpBackupStorage → Connected, a VM on the KVM host, the killed agent → ping marks
// the host Disconnected → ReconnectHost redeploys → Connected, a no-change ReconnectHost that skips every task, a
// failed reconnect that leaves the host Disconnected, per-host agent secrets and credentials that never show.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { eq } from 'drizzle-orm';
import { freePort, sshdUnavailable, startSshd } from '../lib/sshd.js';
import { AGENT_SECRET, http, startServer, type TestServer } from '../lib/harness.js';
import { ZStackError, type ZStackClient } from '../../sdk/src/index.js';
import { backupStorage, hosts } from '../../server/src/db/schema/index.js';
import { credentialVault } from '../../server/src/core/credentials.js';
import { Semaphore } from '../../server/src/host/deploy.js';

const TASKS = ['connect', 'detect-os', 'check-runtime', 'upload-bundle', 'write-config', 'install-service', 'restart-agent', 'wait-echo'];

const unavailable = sshdUnavailable();
if (unavailable) {
  t.plan(0, `the KVM host tests need a real sshd: ${unavailable}`);
} else {
  await suite();
}

async function suite(): Promise<void> {
  const sshd = await startSshd();
  const s = await startServer();
  t.teardown(async () => {
    await s.close(); // first: no ping or reconnect may run against a stopped sshd
    await sshd.stop(); // also kills the agents the test user runs
  });
  const zs = s.client;
  const setting = (category: string, name: string, value: string) => zs.updateGlobalConfig({ category, name, value });
  const withoutAutoReconnect = async <T>(fn: () => Promise<T>): Promise<T> => {
    await setting('host', 'connection.autoReconnectOnError', 'false');
    try {
      return await fn();
    } finally {
      await setting('host', 'connection.autoReconnectOnError', 'true');
    }
  };

  const kvmRoot = join(sshd.home, 'kvm');
  await setting('host', 'ping.interval', '1');
  await setting('kvm', 'agent.installRoot', kvmRoot);
  await setting('kvm', 'agent.port', String(await freePort()));
  await setting('sftpBackupStorage', 'agent.installRoot', join(sshd.home, 'bs-agent'));
  await setting('sftpBackupStorage', 'agent.port', String(await freePort()));

  const { inventory: zone } = await zs.createZone({ name: 'zone-kvm' });
  const { inventory: cluster } = await zs.createCluster({ zoneUuid: zone.uuid, name: 'kvm', hypervisorType: 'KVM' });
  const login = { managementIp: sshd.host, username: sshd.username, password: sshd.password, sshPort: sshd.port, clusterUuid: cluster.uuid };
  const addHost = (extra: Record<string, unknown> = {}) => zs.addKVMHost({ name: 'kvm1', ...login, ...extra } as never);
  let hostUuid = '';

  t.test('a failed add: HOST.1003 naming the task, nothing left behind, the deploy log kept', async (t) => {
    const wrong = await failure(addHost({ password: 'not-the-password' }));
    t.match(wrong.errorCode, { code: 'HOST.1003', cause: { code: 'SYS.1006' } });
    t.match(wrong.details, /task connect failed on host 127\.0\.0\.1: authentication failed for .*@127\.0\.0\.1:\d+ \(password rejected\)/);

    const refused = await failure(addHost({ sshPort: await freePort() }));
    t.match(refused.errorCode, { code: 'HOST.1003', cause: { code: 'SYS.1006' } });
    t.match(refused.details, /task connect failed on host 127\.0\.0\.1: .*connection refused \(is sshd running on port \d+\?\)/);

    const aFile = join(sshd.home, 'a-file');
    writeFileSync(aFile, 'not a directory\n');
    await setting('kvm', 'agent.installRoot', join(aFile, 'root'));
    const task = await failure(addHost());
    await setting('kvm', 'agent.installRoot', kvmRoot);
    t.match(task.errorCode, { code: 'HOST.1003', cause: { code: 'SYS.1006' } });
    t.match(task.details, /task detect-os failed on host 127\.0\.0\.1: .*; exit code 1; stderr:\nmkdir: cannot create directory .*a-file.*: Not a directory/);

    t.same((await zs.queryHost({ q: [`managementIp=${sshd.host}`] })).inventories, [], 'the failed hosts are removed');
    t.same(await s.app.db.select().from(hosts), [], 'no row left Connecting');
    const logs = (await zs.queryHostDeployLog({ q: [`host=${sshd.host}`, 'status=fail'], sort: '+id' })).inventories!;
    t.same(
      logs.map((l) => l.task),
      ['connect', 'connect', 'detect-os'],
      'each failure is in the deploy log',
    );
    t.match(logs[2], { resourceType: 'HostVO', agentKind: 'kvm', level: 'ERROR', details: /Not a directory/ });
  });

  t.test('AddKVMHost: deployed, connected, capacity and OS facts; the agent has its own secret', async (t) => {
    const started = performance.now();
    const { inventory: h } = (await zs.addKVMHost({ name: 'kvm1', ...login } as never, { pollIntervalMs: 10 })) as Awaited<ReturnType<typeof addHost>>;
    const ms = performance.now() - started;
    t.comment(`AddKVMHost (first deploy + connect) took ${ms.toFixed(0)} ms`);
    hostUuid = h.uuid;
    t.match(h, { hypervisorType: 'KVM', status: 'Connected', state: 'Enabled', username: sshd.username, sshPort: sshd.port, managementIp: sshd.host });
    t.ok(h.totalCpuCapacity > 0 && h.totalMemoryCapacity > 0 && (h.cpuNum ?? 0) > 0, 'capacity from the agent');
    const osRelease = readFileSync('/etc/os-release', 'utf8');
    t.equal(h.osDistribution, /^ID=("?)(.*)\1$/m.exec(osRelease)![2], 'osDistribution: the os-release ID');
    t.equal(h.osVersion, /^VERSION_ID=("?)(.*)\1$/m.exec(osRelease)?.[2] ?? '', 'osVersion: VERSION_ID');
    t.ok(h.osRelease, `osRelease: ${h.osRelease}`);

    const log = await lastRun(zs, h.uuid);
    t.same(
      statuses(log),
      TASKS.map((task) => `${task}:${task === 'check-runtime' ? 'skip' : 'done'}`),
      'first deploy: every task did its work',
    );
    t.match(log[0], { resourceType: 'HostVO', agentKind: 'kvm', host: sshd.host, createDate: String });

    const [row] = await s.app.db.select().from(hosts).where(eq(hosts.uuid, h.uuid));
    t.equal(row.hostKey, sshd.hostKey, 'the host key seen on first contact is recorded');
    const secret = credentialVault(s.app.contextOf('host')).open(row.credential!, 'test').agentSecret!;
    t.ok(secret && secret !== AGENT_SECRET, 'a secret of its own');
    t.notOk(row.credential!.includes(sshd.password) || row.credential!.includes(secret), 'sealed at rest');
    const agentUrl = row.agentUrl!;
    const withDefault = await fetch(`${agentUrl}/host/capacity`, {
      method: 'POST',
      headers: { authorization: `Bearer ${AGENT_SECRET}`, 'content-type': 'application/json', 'x-zstack-target-uuid': h.uuid },
      body: '{}',
    });
    t.equal(withDefault.status, 401, "the agent refuses the node's default secret");

    // Credentials never appear: not in QueryHost (SDK and raw), not in the deploy log.
    const everything = JSON.stringify([
      await zs.queryHost({}),
      (await http(s.url, 'GET', `/zstack/v1/hosts/${h.uuid}`, { headers: { authorization: `OAuth ${zs.sessionUuid}` } })).json,
      await zs.queryHostDeployLog({}),
      h,
    ]);
    for (const secretText of [sshd.password, secret, 'credential', 'hostKey'])
      t.notOk(everything.includes(secretText), `no ${secretText === sshd.password ? 'password' : secretText === secret ? 'agent secret' : secretText}`);
    await t.rejects(zs.queryHost({ q: ['credential=x'] }), { code: 'SYS.1007' }, 'credential is not queryable');
    await t.rejects(addHost({ name: 'again' }), { code: 'SYS.1007', details: /managementIp/ }, 'managementIp is unique among hosts');
  });

  let bsUuid = '';
  t.test('AddSftpBackupStorage deploys the backup-storage agent and connects', async (t) => {
    const { inventory: bs } = await zs.addSftpBackupStorage({
      name: 'sftp',
      hostname: sshd.host,
      username: sshd.username,
      password: sshd.password,
      sshPort: sshd.port,
      url: join(sshd.home, 'bs'),
    });
    bsUuid = bs.uuid;
    t.match(bs, { type: 'SftpBackupStorage', status: 'Connected', hostname: sshd.host, username: sshd.username, sshPort: sshd.port });
    t.ok(bs.totalCapacity > 0, 'capacity of the real file system');
    t.same(
      statuses(await lastRun(zs, bs.uuid)),
      TASKS.map((task) => `${task}:${task === 'check-runtime' ? 'skip' : 'done'}`),
      'logged like a host',
    );
    t.match((await lastRun(zs, bs.uuid))[0], { resourceType: 'BackupStorageVO', agentKind: 'backup-storage' });
    const [row] = await s.app.db.select().from(backupStorage).where(eq(backupStorage.uuid, bs.uuid));
    t.equal(row.hostKey, sshd.hostKey);
    t.notOk(JSON.stringify(await zs.queryBackupStorage({})).includes(sshd.password), 'never the password');
    await zs.attachBackupStorageToZone({ zoneUuid: zone.uuid, backupStorageUuid: bs.uuid });

    const wrong = await failure(
      zs.addSftpBackupStorage({ name: 'bad', hostname: sshd.host, username: sshd.username, password: 'nope', sshPort: sshd.port, url: join(sshd.home, 'bs2') }),
    );
    t.match(wrong.errorCode, { code: 'HOST.1003', cause: { code: 'SYS.1006' }, details: /task connect failed/ });
    t.same((await zs.queryBackupStorage({ q: ['name=bad'] })).inventories, [], 'removed again');
  });

  t.test('a VM runs on the KVM host', async (t) => {
    const { inventory: ps } = await zs.addLocalPrimaryStorage({ name: 'local', zoneUuid: zone.uuid, url: join(sshd.home, 'ps') });
    await zs.attachPrimaryStorageToCluster({ clusterUuid: cluster.uuid, primaryStorageUuid: ps.uuid });
    const file = join(sshd.home, 'tiny.qcow2');
    writeFileSync(file, Buffer.alloc(64 * 1024, 5));
    const { inventory: image } = await zs.addImage({ name: 'tiny', url: `file://${file}`, format: 'qcow2', backupStorageUuids: [bsUuid] });
    t.equal(image.status, 'Ready', 'downloaded by the deployed backup-storage agent');
    const { inventory: offering } = await zs.createInstanceOffering({ name: 'small', cpuNum: 1, memorySize: 128 * 2 ** 20 });
    const { inventory: l2 } = await zs.createL2NoVlanNetwork({ name: 'l2', zoneUuid: zone.uuid, physicalInterface: 'eth0' });
    await zs.attachL2NetworkToCluster({ l2NetworkUuid: l2.uuid, clusterUuid: cluster.uuid });
    const { inventory: l3 } = await zs.createL3Network({ name: 'l3', l2NetworkUuid: l2.uuid });
    await zs.addIpRange({ l3NetworkUuid: l3.uuid, name: 'r', startIp: '10.20.0.10', endIp: '10.20.0.20', netmask: '255.255.255.0', gateway: '10.20.0.1' });
    const { inventory: vm } = await zs.createVmInstance({
      name: 'vm-on-kvm',
      instanceOfferingUuid: offering.uuid,
      imageUuid: image.uuid,
      l3NetworkUuids: [l3.uuid],
    } as never);
    t.match(vm, { state: 'Running', hostUuid });
    const [h] = (await zs.queryHost({ q: [`uuid=${hostUuid}`] })).inventories!;
    t.equal(h.availableCpuCapacity, h.totalCpuCapacity - 1, 'the VM holds a vCPU of the host');
  });

  t.test('killed agent → Disconnected by the ping → ReconnectHost redeploys → Connected', async (t) => {
    const pid = Number(readFileSync(join(kvmRoot, 'run', 'agent.pid'), 'utf8'));
    process.kill(pid, 'SIGKILL');
    const down = await until('the ping marks the host Disconnected', async () => (await hostRow(s, hostUuid)).status === 'Disconnected');
    t.ok(down, 'Disconnected');
    const { inventory: h } = await zs.reconnectHost({ uuid: hostUuid });
    t.equal(h.status, 'Connected');
    t.same(
      statuses(await lastRun(zs, hostUuid)),
      [
        'connect:skip',
        'detect-os:skip',
        'check-runtime:skip',
        'upload-bundle:skip',
        'write-config:skip',
        'install-service:skip',
        'restart-agent:done',
        'wait-echo:done',
      ],
      'only the restart',
    );
    t.not(Number(readFileSync(join(kvmRoot, 'run', 'agent.pid'), 'utf8')), pid, 'a new agent process');
  });

  t.test('a second ReconnectHost with nothing changed skips every task', async (t) => {
    const started = performance.now();
    const { inventory: h } = await zs.reconnectHost({ uuid: hostUuid }, { pollIntervalMs: 10 }); // a fixed poll: the time is the server's
    const ms = performance.now() - started;
    t.comment(`no-change ReconnectHost (deploy + connect) took ${ms.toFixed(0)} ms`);
    t.equal(h.status, 'Connected');
    const run = await lastRun(zs, hostUuid);
    t.same(
      statuses(run),
      TASKS.map((task) => `${task}:skip`),
    );
    t.comment(
      `of which the deploy: ${run
        .filter((l) => l.status !== 'start')
        .map((l) => `${l.task} ${l.durationMs}`)
        .join(', ')} ms`,
    );
    const runs = new Set((await zs.queryHostDeployLog({ q: [`resourceUuid=${hostUuid}`] })).inventories!.map((l) => l.deployUuid));
    t.equal(runs.size, 3, 'one logged run per deploy');
    t.same(
      (await zs.queryHostDeployLog({ q: ['kvmHost.name=kvm1', 'task=wait-echo', 'status=done'], count: true })).total,
      2,
      'expanded query through the host',
    );
  });

  t.test('a failed reconnect leaves the host Disconnected; the ping brings it back', async (t) => {
    await setting('kvm', 'agent.installRoot', join(sshd.home, 'a-file', 'root'));
    // The ping (every second) reconnects a Disconnected host by itself, passing through Connecting: with that off,
    // the status the failed call left is the only one there is to read.
    const e = await withoutAutoReconnect(async () => {
      const e = await failure(zs.reconnectHost({ uuid: hostUuid }));
      t.equal((await hostRow(s, hostUuid)).status, 'Disconnected', 'left Disconnected, not Connecting');
      return e;
    });
    await setting('kvm', 'agent.installRoot', kvmRoot);
    t.match(e.errorCode, { code: 'HOST.1003', cause: { code: 'SYS.1006' }, details: /task detect-os failed on host 127\.0\.0\.1/ });
    // The agent itself still runs (the failed deploy stopped before touching it): the next ping reconnects.
    t.ok(await until('the ping reconnects the host', async () => (await hostRow(s, hostUuid)).status === 'Connected'));
  });

  t.test('deploys are bounded by kvm/deploy.parallelismDegree, within the API deadline', async (t) => {
    let limit = 2;
    const sem = new Semaphore(() => limit);
    const a = await sem.acquire();
    const b = await sem.acquire();
    let third = false;
    const c = sem.acquire().then((r) => ((third = true), r));
    await new Promise((r) => setTimeout(r, 20));
    t.equal(third, false, 'the third waits');
    const aborted = new AbortController();
    const d = sem.acquire(aborted.signal);
    aborted.abort(new Error('deadline'));
    await t.rejects(d, /deadline/, 'a waiter leaves when its deadline aborts');
    a();
    (await c)();
    t.equal(third, true);
    limit = 1;
    b();
    t.equal(sem.running, 0);
    t.equal(s.app.globalConfig.getNumber('kvm', 'deploy.parallelismDegree'), 10, 'kvm/deploy.parallelismDegree defaults to 10');

    // With every slot taken, a ReconnectHost waits for one within its own deadline, then fails naming the step.
    await setting('kvm', 'deploy.parallelismDegree', '1');
    const slot = await s.app.services.agentDeployer.slots.acquire();
    try {
      const e = await withoutAutoReconnect(async () => {
        const e = await failure(zs.reconnectHost({ uuid: hostUuid }, { timeoutMs: 1000 }));
        t.equal((await hostRow(s, hostUuid)).status, 'Disconnected', 'left Disconnected, not Connecting');
        return e;
      });
      t.equal(e.code, 'SYS.1001');
      t.match(e.details, /API\[ReconnectHost\] timed out after \d+ ms .*in step\[deploy the kvm agent on host\[uuid:[0-9a-f]{32}, name:kvm1\]\]/);
    } finally {
      slot();
      await setting('kvm', 'deploy.parallelismDegree', '10');
    }
    t.ok(await until('the ping reconnects the host', async () => (await hostRow(s, hostUuid)).status === 'Connected'));
  });

  t.test('deleting the host and the backup storage deletes their deploy logs', async (t) => {
    const vms = (await zs.queryVmInstance({ q: [`hostUuid=${hostUuid}`] })).inventories!;
    for (const vm of vms) await zs.destroyVmInstance({ uuid: vm.uuid });
    await zs.deleteHost({ uuid: hostUuid });
    await zs.deleteBackupStorage({ uuid: bsUuid });
    t.equal((await zs.queryHostDeployLog({ q: [`resourceUuid?=${hostUuid},${bsUuid}`], count: true })).total, 0);
    t.ok((await zs.queryHostDeployLog({ count: true })).total! > 0, 'the failed adds keep theirs');
  });
}

type LogLine = { deployUuid: string; task: string; status: string; durationMs: number; [k: string]: unknown };

/** The lines of the resource's most recent deploy, in order. */
async function lastRun(zs: ZStackClient, resourceUuid: string): Promise<LogLine[]> {
  const lines = (await zs.queryHostDeployLog({ q: [`resourceUuid=${resourceUuid}`], sort: '+id' })).inventories! as LogLine[];
  const last = lines.at(-1)!.deployUuid;
  return lines.filter((l) => l.deployUuid === last);
}

/** `task:status` of the outcome lines (the `start` lines left out). */
const statuses = (lines: LogLine[]) => lines.filter((l) => l.status !== 'start').map((l) => `${l.task}:${l.status}`);

async function failure(p: Promise<unknown>): Promise<ZStackError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  if (!(e instanceof ZStackError)) throw new Error(`expected a ZStackError, got ${e === undefined ? 'success' : String(e)}`);
  return e;
}

async function hostRow(s: TestServer, uuid: string) {
  const [h] = await s.app.db.select().from(hosts).where(eq(hosts.uuid, uuid));
  return h;
}

async function until(what: string, fn: () => Promise<boolean>, timeoutMs = 15_000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

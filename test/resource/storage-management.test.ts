// Primary and backup storage management through the SDK on real PostgreSQL and the simulator agent: state changes
// (Disabled refuses new VMs, maintenance and a detach from the cluster stop the VMs on it), capacity figures before/after and the sync repairing
// a counter corrupted in the database, updates and secret hygiene of UpdateSftpBackupStorage, reconnects with the
// agents down (a clear error, the status recorded) and back up.
import t from 'tap';
import { eq, sql } from 'drizzle-orm';
import { startServer, http } from '../lib/harness.js';
import { buildWorld } from '../lib/world.js';
import { newUuid } from '../../server/src/core/ids.js';
import type { AgentPath, AgentRequest } from '../../server/src/agent-client/index.js';
import { apiJobs, backupStorage, primaryStorage } from '../../server/src/db/schema/index.js';
import { credentialVault } from '../../server/src/core/credentials.js';
import { fails } from '../lib/fails.js';

const GiB = 1024 ** 3;

t.test('primary and backup storage management', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const zs = s.client;
  const sim = <P extends AgentPath>(path: P, body: AgentRequest<P>) => s.app.agents.call(s.sim.url, path, body);
  const world = await buildWorld(zs, { virtualRouter: false });
  const psUuid = world.primaryStorageUuid;
  const newVm = async (name: string) =>
    (await zs.createVmInstance({ name, instanceOfferingUuid: world.instanceOfferingUuid, imageUuid: world.imageUuid, l3NetworkUuids: [world.l3NetworkUuid] }))
      .inventory;
  const ps = async () => (await zs.queryPrimaryStorage({ q: [`uuid=${psUuid}`] })).inventories![0];
  const vm1 = await newVm('vm1');
  const vm2 = await newVm('vm2');

  t.test('capacity figures and the sync repairing a corrupted counter', async (t) => {
    const before = await ps();
    const used = (await zs.queryVolume({ q: [`primaryStorageUuid=${psUuid}`] })).inventories!.reduce((sum, v) => sum + v.size, 0);
    t.ok(used > 0, 'the VMs hold volumes');
    t.equal(before.availableCapacity, before.totalCapacity - used, 'available = total − volumes');
    for (const by of [{ zoneUuids: [world.zoneUuid] }, { clusterUuids: [world.clusterUuid] }, { primaryStorageUuids: [psUuid] }, { all: true }]) {
      const c = await zs.getPrimaryStorageCapacity(by);
      t.match(c, { totalCapacity: before.totalCapacity, availableCapacity: before.availableCapacity }, `by ${Object.keys(by)[0]}`);
    }
    t.match(await zs.getPrimaryStorageCapacity({ zoneUuids: [newUuid()] }), { totalCapacity: 0, availableCapacity: 0 }, 'an empty zone counts nothing');
    await fails(t, zs.getPrimaryStorageCapacity({}), 'SYS.1007', /at least one/);

    await s.app.db
      .update(primaryStorage)
      .set({ availableCapacity: 5 * GiB })
      .where(eq(primaryStorage.uuid, psUuid));
    t.equal((await ps()).availableCapacity, 5 * GiB, 'counter corrupted');
    const synced = (await zs.syncPrimaryStorageCapacity({ primaryStorageUuid: psUuid })).inventory;
    t.equal(synced.availableCapacity, before.availableCapacity, 'the sync recomputes it from the volumes');

    // The periodic sync does the same without being asked.
    await s.app.db
      .update(primaryStorage)
      .set({ availableCapacity: 7 * GiB })
      .where(eq(primaryStorage.uuid, psUuid));
    await zs.updateGlobalConfig({ category: 'primaryStorage', name: 'capacity.syncInterval', value: '1' });
    const deadline = Date.now() + 20_000;
    while ((await ps()).availableCapacity !== before.availableCapacity && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    t.equal((await ps()).availableCapacity, before.availableCapacity, 'the periodic sync repaired it');
    await zs.updateGlobalConfig({ category: 'primaryStorage', name: 'capacity.syncInterval', value: '300' });
  });

  t.test('Disabled refuses new allocations; maintenance stops the VMs on it', async (t) => {
    t.equal((await zs.changePrimaryStorageState({ uuid: psUuid, stateEvent: 'disable' })).inventory.state, 'Disabled');
    await fails(t, newVm('refused'), 'HOST_ALLOCATION.1001', /primary storage/);
    t.equal((await zs.queryVmInstance({ q: [`uuid=${vm1.uuid}`] })).inventories![0].state, 'Running', 'VMs already there keep running');
    t.equal((await zs.changePrimaryStorageState({ uuid: psUuid, stateEvent: 'enable' })).inventory.state, 'Enabled');

    const m = (await zs.changePrimaryStorageState({ uuid: psUuid, stateEvent: 'maintain' })).inventory;
    t.equal(m.state, 'Maintenance');
    const states = (await zs.queryVmInstance({ q: [`uuid?=${vm1.uuid},${vm2.uuid}`] })).inventories!.map((v) => v.state);
    t.same(states, ['Stopped', 'Stopped'], 'every VM with a volume on it was stopped');
    await fails(t, zs.startVmInstance({ uuid: vm1.uuid }), 'HOST_ALLOCATION.1001', /primary storage/);
    await fails(t, zs.changePrimaryStorageState({ uuid: psUuid, stateEvent: 'pause' } as never), 'SYS.1007', /stateEvent/);
    await zs.changePrimaryStorageState({ uuid: psUuid, stateEvent: 'enable' });
    t.equal((await zs.startVmInstance({ uuid: vm1.uuid })).inventory.state, 'Running', 'enabled again, the VM starts');

    const renamed = (await zs.updatePrimaryStorage({ uuid: psUuid, name: 'ps-renamed', description: 'd' })).inventory;
    t.match(renamed, { name: 'ps-renamed', description: 'd', state: 'Enabled' });
  });

  t.test('DetachPrimaryStorageFromCluster stops the VMs running there with a volume on it', async (t) => {
    t.equal((await zs.queryVmInstance({ q: [`uuid=${vm1.uuid}`] })).inventories![0].state, 'Running');
    await zs.detachPrimaryStorageFromCluster({ clusterUuid: world.clusterUuid, primaryStorageUuid: psUuid });
    t.equal((await zs.queryVmInstance({ q: [`uuid=${vm1.uuid}`] })).inventories![0].state, 'Stopped', 'stopped before the storage left');
    await fails(t, zs.startVmInstance({ uuid: vm1.uuid }), 'HOST_ALLOCATION.1001', /primary storage/);
    await zs.attachPrimaryStorageToCluster({ clusterUuid: world.clusterUuid, primaryStorageUuid: psUuid });
    t.equal((await zs.startVmInstance({ uuid: vm1.uuid })).inventory.state, 'Running', 'attached again, the VM starts');
  });

  t.test('local storage reconnect with its agents down', async (t) => {
    const local = (await zs.addLocalPrimaryStorage({ name: 'local', zoneUuid: world.zoneUuid, url: '/zstack_local' })).inventory;
    await zs.attachPrimaryStorageToCluster({ clusterUuid: world.clusterUuid, primaryStorageUuid: local.uuid });
    for (const h of world.hostUuids) await zs.updateSimulatorHost({ uuid: h, failCommands: ['/primarystorage/capacity'] });
    await fails(
      t,
      zs.reconnectPrimaryStorage({ uuid: local.uuid }),
      'SYS.1006',
      /failed to reconnect primary storage.*no host.*simulated failure of \/primarystorage\/capacity/,
    );
    t.equal((await zs.queryPrimaryStorage({ q: [`uuid=${local.uuid}`] })).inventories![0].status, 'Disconnected', 'Disconnected recorded');
    await fails(t, zs.syncPrimaryStorageCapacity({ primaryStorageUuid: local.uuid }), 'SYS.1006', /failed to sync the capacity/);
    for (const h of world.hostUuids) await zs.updateSimulatorHost({ uuid: h, failCommands: [] });
    const back = (await zs.reconnectPrimaryStorage({ uuid: local.uuid })).inventory;
    t.equal(back.status, 'Connected');
    t.ok(back.totalCapacity > 0, 'capacity read again');
    await zs.detachPrimaryStorageFromCluster({ clusterUuid: world.clusterUuid, primaryStorageUuid: local.uuid });
  });

  t.test('backup storage: state, update, scan, capacity, reconnect with the agent down', async (t) => {
    const bsUuid = world.backupStorageUuid;
    t.equal((await zs.changeBackupStorageState({ uuid: bsUuid, stateEvent: 'disable' })).inventory.state, 'Disabled');
    await fails(
      t,
      zs.addImage({ name: 'img', url: 'http://example.com/x.qcow2', format: 'qcow2', mediaType: 'RootVolumeTemplate', backupStorageUuids: [bsUuid] } as never),
      'SYS.1010',
      /Disabled/,
    );
    await zs.changeBackupStorageState({ uuid: bsUuid, stateEvent: 'enable' });
    t.match((await zs.updateBackupStorage({ uuid: bsUuid, name: 'bs-renamed' })).inventory, { name: 'bs-renamed', state: 'Enabled' });

    const bs = (await zs.queryBackupStorage({ q: [`uuid=${bsUuid}`] })).inventories![0];
    t.match(await zs.getBackupStorageCapacity({ zoneUuids: [world.zoneUuid] }), { totalCapacity: bs.totalCapacity, availableCapacity: bs.availableCapacity });
    t.match(await zs.getBackupStorageCapacity({ backupStorageUuids: [bsUuid] }), { totalCapacity: bs.totalCapacity });
    await fails(t, zs.getBackupStorageCapacity({}), 'SYS.1007', /at least one/);
    await zs.scanBackupStorage({ backupStorageUuid: bsUuid });

    await sim('/simulator/backupstorage/config', { backupStorageUuid: bsUuid, failCommands: ['/backupstorage/connect', '/backupstorage/ping'] });
    await fails(t, zs.reconnectSftpBackupStorage({ uuid: bsUuid }), 'SYS.1006', /failed to connect backup storage.*simulated failure/);
    t.equal((await zs.queryBackupStorage({ q: [`uuid=${bsUuid}`] })).inventories![0].status, 'Disconnected', 'Disconnected recorded');
    await fails(t, zs.scanBackupStorage({ backupStorageUuid: bsUuid }), 'SYS.1006', /failed to scan/);
    await sim('/simulator/backupstorage/config', { backupStorageUuid: bsUuid, failCommands: [] });
    t.equal((await zs.reconnectSftpBackupStorage({ uuid: bsUuid })).inventory.status, 'Connected');
  });

  t.test('UpdateSftpBackupStorage keeps the password secret', async (t) => {
    const uuid = newUuid();
    const vault = credentialVault(s.app.contextOf('host'));
    const credential = vault.seal({ password: 'old-password', agentSecret: 'agent-secret-1' });
    await s.app.db.insert(backupStorage).values({
      uuid,
      name: 'sftp',
      url: '/bs',
      type: 'SftpBackupStorage',
      status: 'Connected',
      hostname: '10.0.0.9',
      username: 'root',
      sshPort: 22,
      credential,
      hostKey: 'k',
    });
    const secret = 'n3w-Secret-Passw0rd';
    const res = await http(s.url, 'PUT', `/zstack/v1/backup-storage/sftp/${uuid}/actions`, {
      body: { updateSftpBackupStorage: { password: secret, username: 'zstack', hostname: '10.0.0.10', sshPort: 2222 } },
      headers: { authorization: `OAuth ${zs.sessionUuid}`, prefer: 'wait=10' },
    });
    t.equal(res.status, 200, res.text);
    t.notOk(res.text.includes(secret), 'the reply has no password');
    t.match(res.json.inventory, { hostname: '10.0.0.10', username: 'zstack', sshPort: 2222 });
    t.notOk('password' in res.json.inventory);
    const [row] = await s.app.db.select().from(backupStorage).where(eq(backupStorage.uuid, uuid));
    t.same(vault.open(row.credential!, 'test'), { password: secret, agentSecret: 'agent-secret-1' }, 'sealed: new password, same agent secret');
    t.equal(row.hostKey, null, 'a new hostname forgets the host key');
    t.notOk(row.credential!.includes(secret), 'never stored in clear');
    const jobs = await s.app.db.select().from(apiJobs).where(eq(apiJobs.apiName, 'UpdateSftpBackupStorage'));
    t.ok(jobs.length > 0 && !JSON.stringify(jobs).includes(secret), 'the stored job has it redacted');
    const q = await http(s.url, 'GET', `/zstack/v1/backup-storage/sftp?q=uuid=${uuid}`, { headers: { authorization: `OAuth ${zs.sessionUuid}` } });
    t.equal(q.json.inventories.length, 1, 'QuerySftpBackupStorage finds it');
    t.notOk(q.text.includes(secret));
    t.equal((await zs.querySftpBackupStorage({})).inventories!.length, 1, 'only SFTP backup storage is listed');
    await fails(t, zs.updateSftpBackupStorage({ uuid: world.backupStorageUuid, password: 'x' }), 'SYS.1007', /not SftpBackupStorage/);
    await s.app.db.execute(sql`DELETE FROM backup_storage WHERE uuid = ${uuid}`);
  });
});

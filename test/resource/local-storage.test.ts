// Local storage's own APIs through the SDK on real PostgreSQL and the simulator agent: which host holds a volume,
// per-host capacity, the hosts a volume can move to, and LocalStorageMigrateVolume — an agent failure after the copy
// rolls back (the copy deleted, nothing moved), then the happy path moves the file, the record, the capacity and the
// VM's next start; a VM whose disk is on one host's local storage starts only there.
import t from 'tap';
import { startServer } from '../lib/harness.js';
import { buildWorld } from '../lib/world.js';
import { until } from '../lib/wait.js';
import { fails } from '../lib/fails.js';
import type { ChangeTracker } from '../../server/src/db/perf/index.js';

t.test('local storage: records, per-host capacity, volume migration', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const zs = s.client;
  const world = await buildWorld(zs, { virtualRouter: false });
  const [hostA, hostB] = world.hostUuids;
  // Only local storage in the cluster: the VM's root volume goes there.
  await zs.detachPrimaryStorageFromCluster({ clusterUuid: world.clusterUuid, primaryStorageUuid: world.primaryStorageUuid });
  const local = (await zs.addLocalPrimaryStorage({ name: 'local', zoneUuid: world.zoneUuid, url: '/zstack_local' })).inventory;
  await zs.attachPrimaryStorageToCluster({ clusterUuid: world.clusterUuid, primaryStorageUuid: local.uuid });
  const vm = (
    await zs.createVmInstance({
      name: 'vm1',
      instanceOfferingUuid: world.instanceOfferingUuid,
      imageUuid: world.imageUuid,
      l3NetworkUuids: [world.l3NetworkUuid],
      hostUuid: hostA,
    })
  ).inventory;
  const root = vm.allVolumes!.find((v) => v.type === 'Root')!;
  t.equal(root.primaryStorageUuid, local.uuid);

  // A VM start names its volumes' storages in its state event; local storage reads nothing when none of them is
  // host-local, and a storage's type is read once (types never change).
  const primary = s.app.contextOf('local-storage').use('primaryStorage');
  const tracker = (s.app as unknown as { database: { perf: { changes: ChangeTracker } } }).database.perf.changes;
  const statementsOf = async (uuids: string[]) => {
    const { result, tables } = await tracker.trackReads(() => primary.anyHostLocal(uuids));
    return { hostLocal: result, tables: [...tables] };
  };
  t.same(await statementsOf([world.primaryStorageUuid]), { hostLocal: false, tables: ['primary_storage'] }, 'first time: the type is read');
  t.same(await statementsOf([world.primaryStorageUuid]), { hostLocal: false, tables: [] }, 'then known: no statement');
  t.same(await statementsOf([local.uuid]), { hostLocal: true, tables: [] }, 'local storage: known since the VM started on it');

  const refOf = async () => (await zs.queryLocalStorageResourceRef({ q: [`resourceUuid=${root.uuid}`] })).inventories![0];
  const ref = await until('the root volume is recorded', refOf);
  t.match(ref, { primaryStorageUuid: local.uuid, hostUuid: hostA, size: root.size, resourceType: 'VolumeVO' });
  t.equal((await zs.queryLocalStorageResourceRef({ q: [`hostUuid=${hostB}`] })).inventories!.length, 0, 'nothing on host B');

  const capacity = async () => {
    const r = (await zs.getLocalStorageHostDiskCapacity({ primaryStorageUuid: local.uuid })).inventories;
    return new Map(r.map((c) => [c.hostUuid, c]));
  };
  const before = await capacity();
  const total = before.get(hostA)!.totalCapacity;
  t.ok(total > 0);
  t.equal(before.get(hostA)!.availableCapacity, total - root.size, 'host A: the volume holds its size');
  t.equal(before.get(hostB)!.availableCapacity, total, 'host B: all free');
  t.equal((await zs.getLocalStorageHostDiskCapacity({ primaryStorageUuid: local.uuid, hostUuid: hostB })).inventories.length, 1, 'one host asked');
  await fails(t, zs.getLocalStorageHostDiskCapacity({ primaryStorageUuid: world.primaryStorageUuid }), 'SYS.1007', /not LocalStorage/);

  await fails(t, zs.localStorageGetVolumeMigratableHosts({ volumeUuid: root.uuid }), 'SYS.1006', /please stop it before migration/);
  await zs.stopVmInstance({ uuid: vm.uuid });
  t.same(
    (await zs.localStorageGetVolumeMigratableHosts({ volumeUuid: root.uuid })).inventories.map((h) => h.uuid),
    [hostB],
    'host B is the only candidate',
  );
  await fails(t, zs.localStorageMigrateVolume({ volumeUuid: root.uuid, destHostUuid: hostA }), 'SYS.1007', /already on the host/);
  // Its disk is on host A: it cannot start anywhere else (upstream's local storage allocator).
  await fails(t, zs.startVmInstance({ uuid: vm.uuid, hostUuid: hostB }), 'SYS.1006', /local storage of host\[uuid:\w+\]: it can only start there/);
  t.equal((await zs.queryVmInstance({ q: [`uuid=${vm.uuid}`] })).inventories![0].state, 'Stopped', 'still Stopped, nothing reserved');

  t.test('an agent failure after the copy rolls back', async (t) => {
    await zs.updateSimulatorHost({ uuid: hostB, failCommands: ['/localstorage/volume/checkbits'] });
    await fails(
      t,
      zs.localStorageMigrateVolume({ volumeUuid: root.uuid, destHostUuid: hostB }),
      'SYS.1006',
      /simulated failure of \/localstorage\/volume\/checkbits/,
    );
    await zs.updateSimulatorHost({ uuid: hostB, failCommands: [] });
    t.equal((await refOf()).hostUuid, hostA, 'the volume is still recorded on host A');
    const after = await capacity();
    t.same(after.get(hostB), before.get(hostB), 'host B: the copy was deleted, nothing held');
    t.same(after.get(hostA), before.get(hostA), 'host A unchanged');
  });

  t.test('migration moves the file, the record, the capacity and the VM', async (t) => {
    const inv = (await zs.localStorageMigrateVolume({ volumeUuid: root.uuid, destHostUuid: hostB })).inventory;
    t.equal(inv.uuid, root.uuid);
    t.equal((await refOf()).hostUuid, hostB, 'recorded on host B');
    const after = await capacity();
    t.equal(after.get(hostA)!.availableCapacity, total, 'host A: free again');
    t.equal(after.get(hostA)!.availablePhysicalCapacity, before.get(hostB)!.availablePhysicalCapacity, 'host A: the source file was deleted');
    t.equal(after.get(hostB)!.availableCapacity, total - root.size, 'host B: the volume holds its size');
    t.equal(after.get(hostB)!.availablePhysicalCapacity, before.get(hostA)!.availablePhysicalCapacity, 'host B: the file is there');
    const vmNow = (await zs.queryVmInstance({ q: [`uuid=${vm.uuid}`] })).inventories![0];
    t.equal(vmNow.lastHostUuid, hostB, 'the VM starts where its root volume is');
    t.equal((await zs.startVmInstance({ uuid: vm.uuid })).inventory.hostUuid, hostB);
  });

  await fails(t, zs.localStorageMigrateVolume({ volumeUuid: world.imageUuid, destHostUuid: hostB }), 'SYS.1003', /VolumeVO/);
});

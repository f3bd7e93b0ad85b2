// Volume, image and offering lifecycle APIs of 1.1 through the SDK on one server (simulated hosts and storage):
// update and enable/disable of offerings and images (a Disabled one cannot create), recover after delete under the
// Delay policy, expunge returning the primary storage's bytes with the agent told (and an agent refusing it), the
// volume format list, and the attach candidates both ways (cluster reach, state rules, tenants).
import t from 'tap';
import { createHash } from 'node:crypto';
import { startServer, AGENT_SECRET, type TestServer } from '../lib/harness.js';
import { buildWorld, type World } from '../lib/world.js';
import { until } from '../lib/wait.js';
import { ZStackClient } from '../../sdk/src/index.js';
import { fails } from '../lib/fails.js';

const GiB = 2 ** 30;

async function records(s: TestServer, hostUuid: string): Promise<Array<{ path: string; outcome: string; body: any }>> {
  const res = await fetch(`${s.sim.url}/simulator/hosts/records`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${AGENT_SECRET}` },
    body: JSON.stringify({ hostUuid }),
  });
  return ((await res.json()) as { records?: any[] }).records ?? [];
}

let s: TestServer;
let zs: ZStackClient;
let w: World;
const uuid0 = '0123456789abcdef0123456789abcdef';

t.before(async () => {
  s = await startServer();
  zs = s.client;
  w = await buildWorld(zs, { hosts: 1, virtualRouter: false });
});
t.teardown(() => s?.close());

const createVm = (name: string, extra: Record<string, unknown> = {}) =>
  zs.createVmInstance({
    name,
    instanceOfferingUuid: w.instanceOfferingUuid,
    imageUuid: w.imageUuid,
    l3NetworkUuids: [w.l3NetworkUuid],
    ...extra,
  } as never);
const available = async (psUuid = w.primaryStorageUuid) => (await zs.queryPrimaryStorage({ q: [`uuid=${psUuid}`] })).inventories![0].availableCapacity;
const volumeOf = async (uuid: string) => (await zs.queryVolume({ q: [`uuid=${uuid}`] })).inventories![0];

t.test('offerings: update, disable (refused for creation), enable', async (t) => {
  const io = (await zs.updateInstanceOffering({ uuid: w.instanceOfferingUuid, name: 'small-renamed', description: 'one CPU' })).inventory;
  t.match(io, { name: 'small-renamed', description: 'one CPU', cpuNum: 1, state: 'Enabled' });
  t.equal((await zs.updateInstanceOffering({ uuid: w.instanceOfferingUuid })).inventory.name, 'small-renamed', 'nothing given: unchanged');
  await fails(t, zs.updateInstanceOffering({ uuid: uuid0, name: 'x' }), 404, 'SYS.1003', /InstanceOfferingVO/);
  await fails(t, zs.updateInstanceOffering({ uuid: w.instanceOfferingUuid, name: 'x'.repeat(256) }), 400, 'SYS.1007', /name/);
  await fails(t, zs.changeInstanceOfferingState({ uuid: w.instanceOfferingUuid, stateEvent: 'maintain' as never }), 400, 'SYS.1007', /stateEvent/);

  t.equal((await zs.changeInstanceOfferingState({ uuid: w.instanceOfferingUuid, stateEvent: 'disable' })).inventory.state, 'Disabled');
  await fails(t, createVm('refused'), 400, 'SYS.1007', /instance offering.*Disabled/);
  t.equal((await zs.changeInstanceOfferingState({ uuid: w.instanceOfferingUuid, stateEvent: 'enable' })).inventory.state, 'Enabled');

  const vr = (params: Record<string, unknown>) =>
    zs.createVirtualRouterOffering({
      cpuNum: 1,
      memorySize: 512 * 2 ** 20,
      zoneUuid: w.zoneUuid,
      managementNetworkUuid: w.l3NetworkUuid,
      imageUuid: w.imageUuid,
      ...params,
    } as never);
  const vrA = (await vr({ name: 'vr-a', isDefault: true })).inventory;
  const vrB = (await vr({ name: 'vr-b' })).inventory;
  t.match((await zs.updateVirtualRouterOffering({ uuid: vrB.uuid, name: 'vr-b2', isDefault: true })).inventory, { name: 'vr-b2', isDefault: true });
  const routers = (await zs.queryVirtualRouterOffering({})).inventories!;
  t.same(
    routers.map((o) => [o.name, o.isDefault]).sort(),
    [
      ['vr-a', false],
      ['vr-b2', true],
    ],
    'the default moved',
  );
  t.equal(vrA.isDefault, true);
  await fails(t, zs.updateVirtualRouterOffering({ uuid: w.instanceOfferingUuid, name: 'x' }), 404, 'SYS.1003', /VirtualRouterOfferingVO/);
  const iso = (await zs.addImage({ name: 'iso', url: 'http://example.com/x.iso', mediaType: 'ISO', backupStorageUuids: [w.backupStorageUuid] } as never))
    .inventory;
  await fails(t, zs.updateVirtualRouterOffering({ uuid: vrB.uuid, imageUuid: iso.uuid }), 400, 'SYS.1007', /RootVolumeTemplate/);

  const disk = (await zs.createDiskOffering({ name: 'd1', diskSize: GiB })).inventory;
  t.match((await zs.updateDiskOffering({ uuid: disk.uuid, description: 'one GiB' })).inventory, { name: 'd1', description: 'one GiB', diskSize: GiB });
  await fails(t, zs.updateDiskOffering({ uuid: uuid0, name: 'x' }), 404, 'SYS.1003', /DiskOfferingVO/);
  t.equal((await zs.changeDiskOfferingState({ uuid: disk.uuid, stateEvent: 'disable' })).inventory.state, 'Disabled');
  await fails(t, zs.createDataVolume({ name: 'v', diskOfferingUuid: disk.uuid } as never), 400, 'SYS.1007', /Disabled/);
  await fails(t, createVm('refused', { dataDiskOfferingUuids: [disk.uuid] }), 400, 'SYS.1007', /Disabled/);
  await zs.changeDiskOfferingState({ uuid: disk.uuid, stateEvent: 'enable' });
  t.equal((await zs.createDataVolume({ name: 'v', diskOfferingUuid: disk.uuid } as never)).inventory.status, 'NotInstantiated');
  t.equal((await zs.queryDiskOffering({ q: [`uuid=${disk.uuid}`] })).inventories![0].state, 'Enabled', 'the query agrees');
});

t.test('images: update, disable (refused for VMs), delete and recover under Delay', async (t) => {
  const img = (await zs.updateImage({ uuid: w.imageUuid, name: 'renamed', guestOsType: 'CentOS 7', platform: 'WindowsVirtio' })).inventory;
  t.match(img, { name: 'renamed', guestOsType: 'CentOS 7', platform: 'Windows', mediaType: 'RootVolumeTemplate', format: 'qcow2' });
  t.match((await zs.updateImage({ uuid: w.imageUuid, mediaType: 'ISO' })).inventory, { mediaType: 'ISO', format: 'iso' }, 'an ISO is in iso format');
  await fails(t, zs.updateImage({ uuid: w.imageUuid, mediaType: 'RootVolumeTemplate' }), 400, 'SYS.1007', /disk format/);
  t.match((await zs.updateImage({ uuid: w.imageUuid, mediaType: 'RootVolumeTemplate', format: 'qcow2', platform: 'Linux' })).inventory, {
    mediaType: 'RootVolumeTemplate',
    format: 'qcow2',
  });
  await fails(t, zs.updateImage({ uuid: w.imageUuid, format: 'vmdk' as never }), 400, 'SYS.1007', /format/);
  await fails(t, zs.updateImage({ uuid: uuid0, name: 'x' }), 404, 'SYS.1003', /ImageVO/);

  t.equal((await zs.changeImageState({ uuid: w.imageUuid, stateEvent: 'disable' })).inventory.state, 'Disabled');
  await fails(t, createVm('refused'), 400, 'SYS.1007', /image.*Disabled/);
  await zs.changeImageState({ uuid: w.imageUuid, stateEvent: 'enable' });

  const second = (
    await zs.addImage({ name: 'second', url: 'http://example.com/second.qcow2', format: 'qcow2', backupStorageUuids: [w.backupStorageUuid] } as never)
  ).inventory;
  await fails(t, zs.recoverImage({ imageUuid: second.uuid }), 409, 'SYS.1005', /not deleted on any backup storage/);
  await zs.deleteImage({ uuid: second.uuid });
  const deleted = (await zs.queryImage({ q: [`uuid=${second.uuid}`] })).inventories![0];
  t.match(deleted, { status: 'Deleted', backupStorageRefs: [{ status: 'Deleted' }] }, 'Delay keeps it Deleted');
  await fails(t, zs.recoverImage({ imageUuid: second.uuid, backupStorageUuids: [uuid0] }), 400, 'SYS.1007', /is not on the backup storage/);
  const back = (await zs.recoverImage({ imageUuid: second.uuid })).inventory;
  t.match(back, { status: 'Ready', backupStorageRefs: [{ backupStorageUuid: w.backupStorageUuid, status: 'Ready' }] });
  await fails(t, zs.recoverImage({ imageUuid: second.uuid, backupStorageUuids: [w.backupStorageUuid] }), 400, 'SYS.1007', /is not Deleted/);
  t.equal((await createVm('from-recovered', { imageUuid: second.uuid })).inventory.imageUuid, second.uuid, 'a recovered image creates VMs');
  await fails(t, zs.recoverImage({ imageUuid: uuid0 }), 404, 'SYS.1003', /ImageVO/);

  // Delay: what stays Deleted longer than image/expungePeriod is expunged by the periodic task.
  const third = (await zs.addImage({ name: 'third', url: 'http://example.com/third.qcow2', backupStorageUuids: [w.backupStorageUuid] } as never)).inventory;
  await zs.updateGlobalConfig({ category: 'image', name: 'expungePeriod', value: '1' });
  await zs.updateGlobalConfig({ category: 'image', name: 'expungeInterval', value: '1' });
  await zs.deleteImage({ uuid: third.uuid });
  await until('the Deleted image is expunged', async () => (await zs.queryImage({ q: [`uuid=${third.uuid}`] })).inventories!.length === 0);
  t.equal((await zs.queryImage({ q: [`uuid=${second.uuid}`] })).inventories!.length, 1, 'a recovered image stays');
  await zs.updateGlobalConfig({ category: 'image', name: 'expungeInterval', value: '3600' });
  await zs.updateGlobalConfig({ category: 'image', name: 'expungePeriod', value: '86400' });
});

t.test('volumes: update, state, recover, expunge with capacity returned and the agent told', async (t) => {
  t.same(
    (await zs.getVolumeFormat({})).formats.map((f) => f.format),
    ['qcow2', 'raw', 'iso'],
  );
  const vm = (await createVm('holder')).inventory;
  const before = await available();
  const vol = (await zs.createDataVolume({ name: 'data', diskSize: 2 * GiB, primaryStorageUuid: w.primaryStorageUuid } as never)).inventory;
  t.equal(await available(), before - 2 * GiB, 'the volume takes its bytes');
  t.match((await zs.updateVolume({ uuid: vol.uuid, name: 'data-renamed', description: 'kept' })).inventory, { name: 'data-renamed', description: 'kept' });
  await fails(t, zs.updateVolume({ uuid: uuid0, name: 'x' }), 404, 'SYS.1003', /VolumeVO/);

  await fails(t, zs.changeVolumeState({ uuid: vm.rootVolumeUuid!, stateEvent: 'disable' }), 503, 'SYS.1006', /root volume/);
  t.equal((await zs.changeVolumeState({ uuid: vol.uuid, stateEvent: 'disable' })).inventory.state, 'Disabled');
  await fails(t, zs.attachDataVolumeToVm({ volumeUuid: vol.uuid, vmInstanceUuid: vm.uuid }), 400, 'SYS.1007', /Disabled/);
  await zs.changeVolumeState({ uuid: vol.uuid, stateEvent: 'enable' });

  await fails(t, zs.recoverDataVolume({ uuid: vol.uuid }), 503, 'SYS.1006', /not in status of deleted/);
  await fails(t, zs.expungeDataVolume({ uuid: vol.uuid }), 503, 'SYS.1006', /not deleted yet/);
  await zs.deleteDataVolume({ uuid: vol.uuid });
  t.equal((await volumeOf(vol.uuid)).status, 'Deleted');
  t.equal(await available(), before - 2 * GiB, 'a Deleted volume keeps its bytes (it can come back)');
  await fails(t, zs.changeVolumeState({ uuid: vol.uuid, stateEvent: 'disable' }), 503, 'SYS.1006', /status of deleted/);
  t.match((await zs.recoverDataVolume({ uuid: vol.uuid })).inventory, { status: 'Ready', primaryStorageUuid: w.primaryStorageUuid });
  t.equal((await zs.attachDataVolumeToVm({ volumeUuid: vol.uuid, vmInstanceUuid: vm.uuid })).inventory.vmInstanceUuid, vm.uuid, 'usable again');
  await zs.deleteDataVolume({ uuid: vol.uuid });
  t.notOk((await volumeOf(vol.uuid)).vmInstanceUuid, 'deleting detached it');

  // The agent refuses the deletion: the expunge fails, the volume stays Deleted with its bytes.
  const hostUuid = w.hostUuids[0];
  await zs.updateSimulatorHost({ uuid: hostUuid, failCommands: ['/primarystorage/volume/delete'] });
  await fails(t, zs.expungeDataVolume({ uuid: vol.uuid }), 503, 'SYS.1006', /cannot delete the file/);
  t.equal((await volumeOf(vol.uuid)).status, 'Deleted', 'still Deleted');
  t.equal(await available(), before - 2 * GiB, 'bytes not given back');
  await zs.updateSimulatorHost({ uuid: hostUuid, failCommands: [] });

  t.same(await zs.expungeDataVolume({ uuid: vol.uuid }), { success: true });
  t.same((await zs.queryVolume({ q: [`uuid=${vol.uuid}`] })).inventories, [], 'gone');
  t.equal(await available(), before, 'the bytes are back');
  const deletes = (await records(s, hostUuid)).filter((r) => r.path === '/primarystorage/volume/delete' && r.body.installPath?.includes(vol.uuid));
  t.same(
    deletes.map((r) => r.outcome),
    ['failed', 'ok'],
    'the agent was asked twice: refused, then done',
  );
  t.same(await zs.expungeDataVolume({ uuid: vol.uuid }), { success: true }, 'an unknown volume: success');

  // Recover and expunge at once: they take turns on the volume; whichever comes second sees the other's outcome.
  const raced = (await zs.createDataVolume({ name: 'raced', diskSize: GiB, primaryStorageUuid: w.primaryStorageUuid } as never)).inventory;
  await zs.deleteDataVolume({ uuid: raced.uuid });
  const [recovered, expunged] = await Promise.allSettled([zs.recoverDataVolume({ uuid: raced.uuid }), zs.expungeDataVolume({ uuid: raced.uuid })]);
  const left = (await zs.queryVolume({ q: [`uuid=${raced.uuid}`] })).inventories!;
  if (recovered.status === 'fulfilled') {
    t.equal(expunged.status, 'rejected', 'recovered first: the expunge is refused');
    t.equal(left[0]?.status, 'Ready');
    await zs.deleteDataVolume({ uuid: raced.uuid });
    await zs.expungeDataVolume({ uuid: raced.uuid });
  } else {
    t.equal(expunged.status, 'fulfilled', 'expunged first: the recover is refused');
    t.same(left, []);
  }
  t.equal(await available(), before, 'either way the bytes add up');

  // The host cannot be reached: the expunge completes (bytes back) and a GC job deletes the file once it answers.
  const lost = (await zs.createDataVolume({ name: 'lost', diskSize: GiB, primaryStorageUuid: w.primaryStorageUuid } as never)).inventory;
  await zs.deleteDataVolume({ uuid: lost.uuid });
  await zs.updateSimulatorHost({ uuid: hostUuid, connected: false });
  t.same(await zs.expungeDataVolume({ uuid: lost.uuid }), { success: true });
  t.equal(await available(), before, 'the bytes are back');
  const jobs = (await zs.queryGCJob({ q: [`name=gc-volume-bits-${lost.uuid}-on-host-${hostUuid}`] })).inventories!;
  t.equal(jobs.length, 1, 'a GC job will delete the file');
  await zs.updateSimulatorHost({ uuid: hostUuid, connected: true });
  await zs.reconnectHost({ uuid: hostUuid });
});

t.test('attach candidates: cluster reach, states, tenants', async (t) => {
  // A second cluster with its own host and primary storage, which the first cluster's VMs cannot reach.
  const cluster2 = (await zs.createCluster({ zoneUuid: w.zoneUuid, name: 'cluster2', hypervisorType: 'Simulator' })).inventory;
  await zs.addSimulatorHost({ name: 'far', managementIp: '192.168.200.170', clusterUuid: cluster2.uuid, cpuCapacity: 8, memoryCapacity: 8 * GiB });
  const ps2 = (await zs.addSimulatorPrimaryStorage({ name: 'ps2', zoneUuid: w.zoneUuid, url: '/ps2', totalCapacity: 2 ** 40, availableCapacity: 2 ** 40 }))
    .inventory;
  await zs.attachPrimaryStorageToCluster({ clusterUuid: cluster2.uuid, primaryStorageUuid: ps2.uuid });
  await zs.attachL2NetworkToCluster({ l2NetworkUuid: w.l2NetworkUuid, clusterUuid: cluster2.uuid });

  const vm = (await createVm('target', { clusterUuid: w.clusterUuid })).inventory;
  const stopped = (await createVm('stopped', { clusterUuid: w.clusterUuid })).inventory;
  await zs.stopVmInstance({ uuid: stopped.uuid });
  const farVm = (await createVm('far-vm', { clusterUuid: cluster2.uuid })).inventory;
  const mk = async (name: string, primaryStorageUuid?: string) =>
    (await zs.createDataVolume({ name, diskSize: GiB, ...(primaryStorageUuid && { primaryStorageUuid }) } as never)).inventory;
  const near = await mk('near', w.primaryStorageUuid);
  const far = await mk('far', ps2.uuid);
  const bare = await mk('bare');
  const disabled = await mk('disabled', w.primaryStorageUuid);
  await zs.changeVolumeState({ uuid: disabled.uuid, stateEvent: 'disable' });
  const attached = await mk('attached', w.primaryStorageUuid);
  await zs.attachDataVolumeToVm({ volumeUuid: attached.uuid, vmInstanceUuid: stopped.uuid });
  const gone = await mk('gone', w.primaryStorageUuid);
  await zs.deleteDataVolume({ uuid: gone.uuid });

  const names = async (vmUuid: string, client = zs) =>
    (await client.getVmAttachableDataVolume({ vmInstanceUuid: vmUuid })).inventories
      .map((v) => v.name)
      .filter((n) => ['near', 'far', 'bare', 'disabled', 'attached', 'gone', 'alice-vol'].includes(n))
      .sort();
  t.same(await names(vm.uuid), ['bare', 'near'], 'Ready on a reachable storage, or NotInstantiated; Enabled, unattached, not Deleted');
  t.same(await names(farVm.uuid), ['bare', 'far'], 'the other cluster reaches the other storage');
  const vmsFor = async (volumeUuid: string, client = zs) => (await client.getDataVolumeAttachableVm({ volumeUuid })).inventories.map((v) => v.name).sort();
  t.ok((await vmsFor(near.uuid)).includes('target') && (await vmsFor(near.uuid)).includes('stopped'), 'Running and Stopped VMs of the cluster');
  t.notOk((await vmsFor(near.uuid)).includes('far-vm'), 'not a VM whose cluster cannot reach the storage');
  t.same(await vmsFor(far.uuid), ['far-vm']);
  t.ok((await vmsFor(bare.uuid)).includes('far-vm') && (await vmsFor(bare.uuid)).includes('target'), 'a NotInstantiated volume can go anywhere');
  await fails(t, zs.getDataVolumeAttachableVm({ volumeUuid: disabled.uuid }), 400, 'SYS.1007', /state\[Disabled\]/);
  await fails(t, zs.getDataVolumeAttachableVm({ volumeUuid: attached.uuid }), 400, 'SYS.1007', /has attached/);
  await fails(t, zs.getDataVolumeAttachableVm({ volumeUuid: vm.rootVolumeUuid! }), 400, 'SYS.1007', /Root volume/);
  await fails(t, zs.getDataVolumeAttachableVm({ volumeUuid: uuid0 }), 404, 'SYS.1003', /VolumeVO/);
  await zs.destroyVmInstance({ uuid: farVm.uuid });
  await fails(t, zs.getVmAttachableDataVolume({ vmInstanceUuid: farVm.uuid }), 503, 'SYS.1006', /Running or Stopped/);
  t.same(await vmsFor(far.uuid), [], 'a Destroyed VM is no candidate');

  // Tenants: each sees its own; the admin sees all.
  const sha512 = (x: string) => createHash('sha512').update(x).digest('hex');
  const tenant = async (name: string) => {
    await zs.createAccount({ name, password: sha512('pw') });
    return new ZStackClient({ endpoint: s.url, accountName: name, password: 'pw', pollIntervalMs: 20 });
  };
  const alice = await tenant('alice');
  const bob = await tenant('bob');
  const aliceVol = (await alice.createDataVolume({ name: 'alice-vol', diskSize: GiB } as never)).inventory;
  t.same(await vmsFor(aliceVol.uuid, alice), [], "alice owns no VM: none of the admin's are offered");
  t.ok((await names(vm.uuid)).includes('alice-vol'), 'the admin sees every candidate volume');
  await fails(t, bob.getDataVolumeAttachableVm({ volumeUuid: aliceVol.uuid }), 403, 'ID.1002', /permission/);
  await fails(t, alice.getVmAttachableDataVolume({ vmInstanceUuid: vm.uuid }), 403, 'ID.1002', /permission/);
  await fails(t, bob.expungeDataVolume({ uuid: aliceVol.uuid }), 403, 'ID.1002', /permission/);
});

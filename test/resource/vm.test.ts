// VMs, volumes and the virtual router through the SDK on real PostgreSQL and the simulator agent: creation with
// the virtual router made once (the seed's step-7 shape), the lifecycle with exact capacity totals, NICs and data
// volumes at run time, rollback of a failed start, state errors, and 200 concurrent creations on 20 hosts.
import t from 'tap';
import { and, eq, isNotNull } from 'drizzle-orm';
import { startServer, AGENT_SECRET, type TestServer } from '../lib/harness.js';
import { ZStackClient } from '../../sdk/src/index.js';
import { hosts, primaryStorage, usedIps, vmInstances, vmNics, volumes } from '../../server/src/db/schema/index.js';
import { newUuid } from '../../server/src/core/ids.js';
import { fails } from '../lib/fails.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const IMAGE_SIZE = 467206656;
const DATE = /^[A-Z][a-z]{2} \d{1,2}, \d{4} \d{1,2}:\d{2}:\d{2} [AP]M$/;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Assert = (...args: any[]) => unknown;
interface TestT {
  ok: Assert;
  equal: Assert;
  match: Assert;
}

/** The simulator's control API. */
async function sim(s: TestServer, path: string, body: object): Promise<any> {
  const res = await fetch(s.sim.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${AGENT_SECRET}` },
    body: JSON.stringify(body),
  });
  return res.json();
}

const recordsOf = async (s: TestServer, hostUuid: string) =>
  ((await sim(s, '/simulator/hosts/records', { hostUuid })).records ?? []) as Array<{ path: string; body: any }>;
const simVms = async (s: TestServer, hostUuid: string) => ((await sim(s, '/simulator/vms', { hostUuid })).vms ?? []) as Array<any>;

interface Env {
  zone: { uuid: string };
  cluster: { uuid: string };
  hostUuids: string[];
  ps: { uuid: string; url: string };
  image: { uuid: string };
  offering: { uuid: string };
  vrOffering: { uuid: string };
  l3: { uuid: string };
  l2: { uuid: string };
}

/** Zone, a Simulator cluster with hosts, simulated primary + backup storage, images, offerings, L2/L3 with VR DHCP+DNS. */
async function buildEnv(zs: ZStackClient, opts: { hosts: number; rangeEnd?: string }): Promise<Env> {
  const { inventory: zone } = await zs.createZone({ name: 'zone1' });
  const { inventory: cluster } = await zs.createCluster({ zoneUuid: zone.uuid, name: 'cluster1', hypervisorType: 'Simulator' });
  const hostUuids: string[] = [];
  await Promise.all(
    Array.from({ length: opts.hosts }, async (_, i) => {
      const { inventory: h } = await zs.addSimulatorHost({
        name: `host${i + 1}`,
        managementIp: `10.0.0.${i + 1}`,
        clusterUuid: cluster.uuid,
        cpuCapacity: 8,
        memoryCapacity: 16 * GiB,
      });
      hostUuids.push(h.uuid);
    }),
  );
  const { inventory: ps } = await zs.addSimulatorPrimaryStorage({ name: 'ps1', zoneUuid: zone.uuid, url: '/zstack_ps', totalCapacity: 1024 * GiB });
  await zs.attachPrimaryStorageToCluster({ primaryStorageUuid: ps.uuid, clusterUuid: cluster.uuid });
  const { inventory: bs } = await zs.addSimulatorBackupStorage({ name: 'bs1', url: '/zstack_bs' });
  await zs.attachBackupStorageToZone({ backupStorageUuid: bs.uuid, zoneUuid: zone.uuid });
  const { inventory: image } = await zs.addImage({
    name: 'ttylinux',
    url: `http://download.zstack.org/ttylinux.qcow2?size=${IMAGE_SIZE}`,
    format: 'qcow2',
    platform: 'Linux',
    backupStorageUuids: [bs.uuid],
  });
  const { inventory: vrImage } = await zs.addImage({
    name: 'vr',
    url: `http://download.zstack.org/vr.qcow2?size=${IMAGE_SIZE}`,
    format: 'qcow2',
    platform: 'Linux',
    system: true,
    backupStorageUuids: [bs.uuid],
  });
  const { inventory: offering } = await zs.createInstanceOffering({ name: 'small', cpuNum: 1, memorySize: 256 * MiB });

  const { inventory: l2 } = await zs.createL2NoVlanNetwork({ name: 'l2', zoneUuid: zone.uuid, physicalInterface: 'eth0' });
  await zs.attachL2NetworkToCluster({ l2NetworkUuid: l2.uuid, clusterUuid: cluster.uuid });
  const { inventory: l3 } = await zs.createL3Network({ name: 'l3-etpz', l2NetworkUuid: l2.uuid });
  await zs.addDnsToL3Network({ l3NetworkUuid: l3.uuid, dns: '8.8.8.8' });
  await zs.addIpRange({
    l3NetworkUuid: l3.uuid,
    name: 'ipr',
    startIp: '192.168.200.10',
    endIp: opts.rangeEnd ?? '192.168.201.199',
    netmask: '255.255.252.0',
    gateway: '192.168.200.1',
  } as never);
  const vr = (await zs.queryNetworkServiceProvider({ q: ['type=VirtualRouter'] })).inventories![0];
  if (!vr.attachedL2NetworkUuids?.includes(l2.uuid))
    await zs.attachNetworkServiceProviderToL2Network({ l2NetworkUuid: l2.uuid, networkServiceProviderUuid: vr.uuid });
  await zs.attachNetworkServiceToL3Network({ l3NetworkUuid: l3.uuid, networkServices: { [vr.uuid]: ['DHCP', 'DNS'] } });
  const { inventory: vrOffering } = await zs.createVirtualRouterOffering({
    name: 'vr-offering',
    cpuNum: 1,
    memorySize: 512 * MiB,
    zoneUuid: zone.uuid,
    managementNetworkUuid: l3.uuid,
    imageUuid: vrImage.uuid,
    isDefault: true,
  });
  return { zone, cluster, hostUuids, ps, image, offering, vrOffering, l3, l2 };
}

/** Capacity and addresses add up exactly: hosts hold what their VMs use, storage what its volumes use, one IP per NIC. */
async function assertTotals(t: TestT & { same: Assert }, s: TestServer, env: Env, label: string) {
  const db = s.app.db;
  const hs = await db.select().from(hosts);
  const placed = await db.select().from(vmInstances).where(isNotNull(vmInstances.hostUuid));
  for (const h of hs) {
    const on = placed.filter((v) => v.hostUuid === h.uuid);
    t.equal(
      h.totalCpuCapacity - h.availableCpuCapacity,
      on.reduce((n, v) => n + v.cpuNum, 0),
      `${label}: cpu held on ${h.name}`,
    );
    t.equal(
      h.totalMemoryCapacity - h.availableMemoryCapacity,
      on.reduce((n, v) => n + v.memorySize, 0),
      `${label}: memory held on ${h.name}`,
    );
  }
  const [ps] = await db.select().from(primaryStorage).where(eq(primaryStorage.uuid, env.ps.uuid));
  const vols = await db.select().from(volumes).where(eq(volumes.primaryStorageUuid, env.ps.uuid));
  t.equal(
    ps.totalCapacity - ps.availableCapacity,
    vols.reduce((n, v) => n + v.size, 0),
    `${label}: primary storage held`,
  );
  const ips = await db.select().from(usedIps).where(eq(usedIps.l3NetworkUuid, env.l3.uuid));
  const nics = await db
    .select()
    .from(vmNics)
    .where(and(eq(vmNics.l3NetworkUuid, env.l3.uuid), isNotNull(vmNics.usedIpUuid)));
  t.equal(ips.length, nics.length, `${label}: one used IP per NIC holding one`);
  t.same(new Set(nics.map((n) => n.ip)).size, nics.length, `${label}: no IP twice`);
}

const VR_KEYS = [
  'allVolumes',
  'allocatorStrategy',
  'applianceVmType',
  'clusterUuid',
  'cpuNum',
  'cpuSpeed',
  'createDate',
  'defaultRouteL3NetworkUuid',
  'hostUuid',
  'hypervisorType',
  'imageUuid',
  'instanceOfferingUuid',
  'lastHostUuid',
  'lastOpDate',
  'managementNetworkUuid',
  'memorySize',
  'name',
  'platform',
  'publicNetworkUuid',
  'rootVolumeUuid',
  'state',
  'status',
  'type',
  'uuid',
  'vmNics',
  'zoneUuid',
];
const NIC_KEYS = ['createDate', 'deviceId', 'gateway', 'ip', 'l3NetworkUuid', 'lastOpDate', 'mac', 'metaData', 'netmask', 'uuid', 'vmInstanceUuid'];
const VOLUME_KEYS = [
  'createDate',
  'description',
  'deviceId',
  'format',
  'installPath',
  'lastOpDate',
  'name',
  'primaryStorageUuid',
  'rootImageUuid',
  'size',
  'state',
  'status',
  'type',
  'uuid',
  'vmInstanceUuid',
];

t.test('vms, volumes and the virtual router', async (t) => {
  t.setTimeout(300_000);
  const s = await startServer();
  t.teardown(() => s.close());
  const zs = s.client;
  const env = await buildEnv(zs, { hosts: 2 });
  const create = (name: string, extra: Record<string, unknown> = {}) =>
    zs.createVmInstance({ name, instanceOfferingUuid: env.offering.uuid, imageUuid: env.image.uuid, l3NetworkUuids: [env.l3.uuid], ...extra } as never);
  /** CreateVmInstance's reply is built from the rows the flow wrote: it must be what a query returns right after. */
  const sameAsQuery = async (t: { same: (a: unknown, b: unknown, m: string) => boolean }, vm: any) =>
    t.same(vm, (await zs.queryVmInstance({ q: [`uuid=${vm.uuid}`] })).inventories![0], `${vm.name}: the reply equals the query's inventory`);

  let vm1: any;
  t.test('create: the virtual router comes first, once, in the seed shape', async (t) => {
    vm1 = (await create('vm1')).inventory;
    await sameAsQuery(t, vm1);
    t.match(vm1, {
      name: 'vm1',
      type: 'UserVm',
      state: 'Running',
      cpuNum: 1,
      memorySize: 256 * MiB,
      zoneUuid: env.zone.uuid,
      clusterUuid: env.cluster.uuid,
      defaultL3NetworkUuid: env.l3.uuid,
      allocatorStrategy: 'LeastVmPreferredHostAllocatorStrategy',
    });
    t.ok(env.hostUuids.includes(vm1.hostUuid));
    t.equal(vm1.lastHostUuid, vm1.hostUuid);
    t.equal(vm1.vmNics.length, 1);
    t.match(vm1.vmNics[0], { deviceId: 0, l3NetworkUuid: env.l3.uuid, netmask: '255.255.252.0', gateway: '192.168.200.1', mac: /^fa:([0-9a-f]{2}:){4}00$/ });
    t.same(
      vm1.allVolumes.map((v: any) => [v.type, v.name, v.deviceId, v.status]),
      [['Root', 'ROOT-for-vm1', 0, 'Ready']],
    );
    t.equal(vm1.allVolumes[0].description, `Root volume for VM[uuid:${vm1.uuid}]`);
    t.equal(
      vm1.allVolumes[0].installPath,
      `/zstack_ps/rootVolumes/acct-36c27e8ff05c4780bf6d2fa65700f22e/vol-${vm1.rootVolumeUuid}/${vm1.rootVolumeUuid}.qcow2`,
    );
    t.equal(vm1.allVolumes[0].size, IMAGE_SIZE);

    const { inventories: vrs } = await zs.queryVirtualRouterVm({});
    t.equal(vrs!.length, 1, 'one virtual router');
    const vr: any = vrs![0];
    t.same(Object.keys(vr).sort(), VR_KEYS, 'VirtualRouterVmInventory keys as in the seed');
    t.match(vr, {
      name: `virtualRouter.l3.${env.l3.uuid}`,
      type: 'ApplianceVm',
      applianceVmType: 'VirtualRouter',
      state: 'Running',
      status: 'Connected',
      allocatorStrategy: 'LeastVmPreferredHostAllocatorStrategy',
      managementNetworkUuid: env.l3.uuid,
      publicNetworkUuid: env.l3.uuid,
      defaultRouteL3NetworkUuid: env.l3.uuid,
      instanceOfferingUuid: env.vrOffering.uuid,
      cpuNum: 1,
      memorySize: 512 * MiB,
      platform: 'Linux',
      zoneUuid: env.zone.uuid,
      clusterUuid: env.cluster.uuid,
    });
    t.match(vr.createDate, DATE);
    t.equal(vr.vmNics.length, 1, 'one NIC: management = public = guest network');
    t.same(Object.keys(vr.vmNics[0]).sort(), NIC_KEYS);
    t.match(vr.vmNics[0], { metaData: '7', deviceId: 0, l3NetworkUuid: env.l3.uuid, vmInstanceUuid: vr.uuid });
    t.same(Object.keys(vr.allVolumes[0]).sort(), VOLUME_KEYS);
    t.match(vr.allVolumes[0], {
      name: `ROOT-for-virtualRouter.l3.${env.l3.uuid}`,
      description: `Root volume for VM[uuid:${vr.uuid}]`,
      type: 'Root',
      status: 'Ready',
      format: 'qcow2',
      deviceId: 0,
      vmInstanceUuid: vr.uuid,
      primaryStorageUuid: env.ps.uuid,
    });

    const state = await sim(s, '/simulator/virtualrouter/state', { virtualRouterUuid: vr.uuid });
    t.equal(state.initialized, true, 'the router agent got /virtualrouter/init');
    t.match(state.dhcpEntries, [{ ip: vm1.vmNics[0].ip, mac: vm1.vmNics[0].mac }], 'the VM NIC has its DHCP entry');
    t.match(state.dns, [{ dnsAddress: '8.8.8.8' }]);

    const vm2 = (await create('vm2')).inventory;
    t.equal((await zs.queryVirtualRouterVm({ count: true })).total, 1, 'a second VM reuses the router');
    t.not(vm2.vmNics[0].ip, vm1.vmNics[0].ip);
    t.equal((await sim(s, '/simulator/virtualrouter/state', { virtualRouterUuid: vr.uuid })).dhcpEntries.length, 2);

    await zs.destroyVmInstance({ uuid: vm2.uuid });
    t.equal(
      (await sim(s, '/simulator/virtualrouter/state', { virtualRouterUuid: vr.uuid })).dhcpEntries.length,
      1,
      "the destroyed VM's DHCP entry is withdrawn",
    );
    await zs.expungeVmInstance({ uuid: vm2.uuid });
    await assertTotals(t, s, env, 'after create');
  });

  t.test('queries through expansions', async (t) => {
    const byIp = await zs.queryVmInstance({ q: [`vmNics.ip=${vm1.vmNics[0].ip}`] });
    t.same(
      byIp.inventories!.map((x) => x.uuid),
      [vm1.uuid],
    );
    const host = (await zs.queryHost({ q: [`uuid=${vm1.hostUuid}`] })).inventories![0];
    const onHost = await zs.queryVmInstance({ q: [`host.managementIp=${host.managementIp}`, 'type=UserVm'] });
    t.ok(onHost.inventories!.some((x) => x.uuid === vm1.uuid));
    t.equal((await zs.queryVmInstance({ q: [`vmNics.l3NetworkUuid=${env.l3.uuid}`], count: true })).total, 2);
    t.equal((await zs.queryVmNic({ q: [`vmInstanceUuid=${vm1.uuid}`] })).inventories!.length, 1);
    t.equal((await zs.queryVolume({ q: [`vmInstanceUuid=${vm1.uuid}`, 'type=Root'] })).inventories![0].uuid, vm1.rootVolumeUuid);
  });

  t.test('lifecycle: stop, start, reboot, migrate, destroy, recover, expunge', async (t) => {
    const uuid = vm1.uuid;
    const stopped = (await zs.stopVmInstance({ uuid })).inventory;
    t.equal(stopped.state, 'Stopped');
    t.notOk(stopped.hostUuid, 'a stopped VM has no host');
    t.equal(stopped.lastHostUuid, vm1.hostUuid);
    await assertTotals(t, s, env, 'stopped');
    t.equal((await zs.stopVmInstance({ uuid })).inventory.state, 'Stopped', 'stopping a stopped VM succeeds');
    await fails(
      t,
      zs.rebootVmInstance({ uuid }),
      409,
      'VM.1000',
      /current vm instance state\[Stopped\] doesn't allow to proceed message\[RebootVmInstance\], allowed states are \[NoState, Running, Crashed\]/,
    );
    await fails(t, zs.migrateVm({ vmInstanceUuid: uuid }), 409, 'VM.1000', /state\[Stopped\]/);

    const started = (await zs.startVmInstance({ uuid })).inventory;
    t.equal(started.state, 'Running');
    t.equal(started.hostUuid, vm1.hostUuid, 'back on its last host');
    await assertTotals(t, s, env, 'started');
    t.equal((await zs.rebootVmInstance({ uuid })).inventory.state, 'Running');
    t.ok(
      (await recordsOf(s, started.hostUuid!)).some((r) => r.path === '/vm/reboot' && r.body.uuid === uuid),
      'the host agent got /vm/reboot',
    );

    const other = env.hostUuids.find((h) => h !== started.hostUuid)!;
    const migrated = (await zs.migrateVm({ vmInstanceUuid: uuid })).inventory;
    t.match(migrated, { state: 'Running', hostUuid: other, lastHostUuid: started.hostUuid });
    t.ok(
      (await simVms(s, other)).some((v) => v.uuid === uuid),
      'the simulator moved the VM',
    );
    await assertTotals(t, s, env, 'migrated');
    await fails(t, zs.migrateVm({ vmInstanceUuid: uuid, hostUuid: other }), 400, 'SYS.1007', /already on host/);
    await fails(t, zs.migrateVm({ vmInstanceUuid: uuid, hostUuid: newUuid() }), 404, 'SYS.1003', /hostUuid/);

    t.same(await zs.destroyVmInstance({ uuid }), { success: true });
    const destroyed = (await zs.queryVmInstance({ q: [`uuid=${uuid}`] })).inventories![0];
    t.match(destroyed, { state: 'Destroyed' });
    t.notOk(destroyed.hostUuid);
    t.notOk(
      (await simVms(s, other)).some((v) => v.uuid === uuid),
      'gone from the host',
    );
    await assertTotals(t, s, env, 'destroyed');
    await fails(t, zs.startVmInstance({ uuid }), 409, 'VM.1000', /state\[Destroyed\]/);
    t.same(await zs.destroyVmInstance({ uuid }), { success: true }, 'destroying a destroyed VM succeeds');

    const recovered = (await zs.recoverVmInstance({ uuid })).inventory;
    t.equal(recovered.state, 'Stopped');
    t.equal(recovered.vmNics[0].ip, vm1.vmNics[0].ip, 'the old address comes back when free');
    await assertTotals(t, s, env, 'recovered');
    await fails(t, zs.expungeVmInstance({ uuid }), 409, 'VM.1000', /ExpungeVmInstance.*allowed states are \[Destroyed\]/);
    await zs.destroyVmInstance({ uuid });
    t.same(await zs.expungeVmInstance({ uuid }), { success: true });
    t.same((await zs.queryVmInstance({ q: [`uuid=${uuid}`] })).inventories, []);
    t.same((await zs.queryVolume({ q: [`uuid=${vm1.rootVolumeUuid}`] })).inventories, [], 'the root volume went with it');
    await assertTotals(t, s, env, 'expunged');
    t.same(await zs.destroyVmInstance({ uuid: newUuid() }), { success: true }, 'an unknown uuid is a success');
  });

  t.test('strategies: JustCreate and CreateStopped', async (t) => {
    const just = (await create('just', { strategy: 'JustCreate' })).inventory;
    t.match(just, { state: 'Created' });
    await sameAsQuery(t, just);
    t.notOk(just.hostUuid);
    t.equal(just.allVolumes[0].status, 'NotInstantiated');
    t.equal(just.vmNics.length, 1);
    const started = (await zs.startVmInstance({ uuid: just.uuid })).inventory;
    t.match(started, { state: 'Running' });
    t.equal(started.allVolumes[0].status, 'Ready');
    await zs.destroyVmInstance({ uuid: just.uuid });
    await zs.expungeVmInstance({ uuid: just.uuid });

    const again = (await create('just2', { strategy: 'JustCreate' })).inventory;
    await zs.destroyVmInstance({ uuid: again.uuid });
    t.same((await zs.queryVmInstance({ q: [`uuid=${again.uuid}`] })).inventories, [], 'a Created VM is deleted from the database only');

    const cs = (await create('stopped', { strategy: 'CreateStopped' })).inventory;
    t.match(cs, { state: 'Stopped' });
    await sameAsQuery(t, cs);
    t.notOk(cs.hostUuid);
    t.ok(cs.lastHostUuid);
    t.equal(cs.allVolumes[0].status, 'Ready');
    await assertTotals(t, s, env, 'CreateStopped');
    await zs.destroyVmInstance({ uuid: cs.uuid });
    await zs.expungeVmInstance({ uuid: cs.uuid });
    await assertTotals(t, s, env, 'strategies done');
  });

  t.test('NICs and data volumes at run time', async (t) => {
    const vm = (await create('hotplug')).inventory;
    const records = await recordsOf(s, vm.hostUuid!);
    const startCmd = records.find((r) => r.path === '/vm/start' && r.body.vmInstanceUuid === vm.uuid)!.body;
    t.match(startCmd.nics[0], { bridgeName: 'br_eth0', physicalInterface: 'eth0', l3NetworkUuid: env.l3.uuid }, 'a NIC names its L2 bridge');
    t.notOk('flatDhcp' in startCmd.nics[0], 'DHCP by the virtual router, not Flat');
    const rootCreate = records.find((r) => r.path === '/primarystorage/volume/create' && r.body.volumeUuid === vm.rootVolumeUuid)!.body;
    t.match(
      rootCreate,
      {
        imageInstallPath: `/zstack_ps/imagecache/template/${env.image.uuid}/${env.image.uuid}.qcow2`,
        backupStorageInstallPath: new RegExp(env.image.uuid),
      },
      'the root volume names its image in the primary storage cache and on the backup storage',
    );
    const { inventory: l3b } = await zs.createL3Network({ name: 'l3b', l2NetworkUuid: env.l2.uuid });
    await zs.addIpRange({
      l3NetworkUuid: l3b.uuid,
      name: 'r',
      startIp: '10.9.0.10',
      endIp: '10.9.0.20',
      netmask: '255.255.255.0',
      gateway: '10.9.0.1',
    } as never);
    const attached = (await zs.attachL3NetworkToVm({ vmInstanceUuid: vm.uuid, l3NetworkUuid: l3b.uuid, staticIp: '10.9.0.15' })).inventory;
    const nic = attached.vmNics.find((n) => n.l3NetworkUuid === l3b.uuid)!;
    t.match(nic, { ip: '10.9.0.15', deviceId: 1, mac: /:01$/ });
    t.ok(
      (await recordsOf(s, vm.hostUuid!)).some((r) => r.path === '/vm/attachnic' && r.body.nic.mac === nic.mac && r.body.nic.bridgeName === 'br_eth0'),
      'the host agent got /vm/attachnic',
    );
    t.ok((await simVms(s, vm.hostUuid!)).find((v) => v.uuid === vm.uuid).nics.some((n: any) => n.mac === nic.mac));
    await fails(t, zs.attachL3NetworkToVm({ vmInstanceUuid: vm.uuid, l3NetworkUuid: l3b.uuid }), 503, 'SYS.1006', /already has a NIC/);
    await fails(t, zs.attachL3NetworkToVm({ vmInstanceUuid: vm.uuid, l3NetworkUuid: newUuid() }), 503, 'SYS.1003', /L3NetworkVO/);
    const detached = (await zs.detachL3NetworkFromVm({ vmNicUuid: nic.uuid })).inventory;
    t.equal(detached.vmNics.length, 1);
    t.ok((await recordsOf(s, vm.hostUuid!)).some((r) => r.path === '/vm/detachnic' && r.body.nic.mac === nic.mac));
    t.equal((await s.app.db.select().from(usedIps).where(eq(usedIps.l3NetworkUuid, l3b.uuid))).length, 0, 'its IP is free again');
    await fails(t, zs.detachL3NetworkFromVm({ vmNicUuid: newUuid() }), 404, 'SYS.1003', /VmNicVO/);

    const { inventory: offering } = await zs.createDiskOffering({ name: 'd10', diskSize: 10 * GiB });
    const { inventory: vol } = await zs.createDataVolume({ name: 'data1', diskOfferingUuid: offering.uuid } as never);
    t.match(vol, { status: 'NotInstantiated', type: 'Data', size: 10 * GiB });
    const att = (await zs.attachDataVolumeToVm({ volumeUuid: vol.uuid, vmInstanceUuid: vm.uuid })).inventory;
    t.match(att, { status: 'Ready', vmInstanceUuid: vm.uuid, deviceId: 1, primaryStorageUuid: env.ps.uuid });
    t.ok((await recordsOf(s, vm.hostUuid!)).some((r) => r.path === '/vm/attachdatavolume' && r.body.volume.volumeUuid === vol.uuid));
    await assertTotals(t, s, env, 'data volume attached');
    await fails(t, zs.attachDataVolumeToVm({ volumeUuid: vol.uuid, vmInstanceUuid: vm.uuid }), 400, 'SYS.1007', /already attached/);
    await fails(t, zs.attachDataVolumeToVm({ volumeUuid: vm.rootVolumeUuid!, vmInstanceUuid: vm.uuid }), 400, 'SYS.1007', /Root volume/);
    const det = (await zs.detachDataVolumeFromVm({ uuid: vol.uuid })).inventory;
    t.notOk(det.vmInstanceUuid);
    t.ok((await recordsOf(s, vm.hostUuid!)).some((r) => r.path === '/vm/detachdatavolume' && r.body.volume.volumeUuid === vol.uuid));
    t.same(await zs.deleteDataVolume({ uuid: vol.uuid }), { success: true });
    t.equal((await zs.queryVolume({ q: [`uuid=${vol.uuid}`] })).inventories![0].status, 'Deleted', 'Delay policy keeps it Deleted');
    await fails(t, zs.deleteDataVolume({ uuid: vol.uuid }), 503, 'SYS.1006', /already deleted/);
    t.same(await zs.deleteDataVolume({ uuid: newUuid() }), { success: true });

    const withData = (await create('with-data', { dataDiskOfferingUuids: [offering.uuid] })).inventory;
    await sameAsQuery(t, withData);
    t.same(
      withData.allVolumes.map((v) => [v.type, v.deviceId, v.status, v.name]),
      [
        ['Root', 0, 'Ready', 'ROOT-for-with-data'],
        ['Data', 1, 'Ready', 'DATA-for-with-data'],
      ],
    );
    t.equal((await simVms(s, withData.hostUuid!)).find((v) => v.uuid === withData.uuid).dataVolumes.length, 1, 'started with its data volume');
    const dataUuid = withData.allVolumes[1].uuid;
    await zs.destroyVmInstance({ uuid: withData.uuid });
    t.notOk((await zs.queryVolume({ q: [`uuid=${dataUuid}`] })).inventories![0].vmInstanceUuid, 'destroy detaches data volumes; they stay');
    await zs.expungeVmInstance({ uuid: withData.uuid });
    t.equal((await zs.queryVolume({ q: [`uuid=${dataUuid}`] })).inventories![0].status, 'Ready');
    await assertTotals(t, s, env, 'data volume outlives its VM');
    await zs.updateGlobalConfig({ category: 'volume', name: 'deletionPolicy', value: 'Direct' });
    await zs.deleteDataVolume({ uuid: dataUuid });
    t.same((await zs.queryVolume({ q: [`uuid=${dataUuid}`] })).inventories, [], 'Direct policy removes it');
    await zs.updateGlobalConfig({ category: 'volume', name: 'deletionPolicy', value: 'Delay' });
    await assertTotals(t, s, env, 'data volume deleted');

    const { inventory: direct } = await zs.createDataVolume({ name: 'on-ps', diskSize: GiB, primaryStorageUuid: env.ps.uuid } as never);
    t.match(direct, { status: 'Ready', primaryStorageUuid: env.ps.uuid });
    await fails(t, zs.createDataVolume({ name: 'x', diskOfferingUuid: newUuid() } as never), 404, 'SYS.1003', /diskOfferingUuid/);
    await zs.destroyVmInstance({ uuid: vm.uuid });
    await zs.expungeVmInstance({ uuid: vm.uuid });
    await assertTotals(t, s, env, 'hot-plug done');
  });

  t.test('a failing /vm/start rolls everything back', async (t) => {
    for (const h of env.hostUuids) await zs.updateSimulatorHost({ uuid: h, failCommands: ['/vm/start'] });
    const before = {
      vms: (await s.app.db.select().from(vmInstances)).length,
      vols: (await s.app.db.select().from(volumes)).length,
      nics: (await s.app.db.select().from(vmNics)).length,
      ips: (await s.app.db.select().from(usedIps)).length,
    };
    await fails(t, create('doomed', { dataDiskOfferingUuids: [] }), 503, 'SYS.1006', /simulated failure of \/vm\/start/);
    t.same(
      {
        vms: (await s.app.db.select().from(vmInstances)).length,
        vols: (await s.app.db.select().from(volumes)).length,
        nics: (await s.app.db.select().from(vmNics)).length,
        ips: (await s.app.db.select().from(usedIps)).length,
      },
      before,
      'no VM, volume, NIC or IP left',
    );
    await assertTotals(t, s, env, 'after rollback');
    for (const h of env.hostUuids) await zs.updateSimulatorHost({ uuid: h, failCommands: [] });
  });

  t.test('checks before the job', async (t) => {
    await fails(t, create('x', { imageUuid: newUuid() }), 404, 'SYS.1003', /imageUuid/);
    await fails(t, create('x', { l3NetworkUuids: [newUuid()] }), 404, 'SYS.1003', /l3NetworkUuids/);
    await fails(t, create('x', { instanceOfferingUuid: newUuid() }), 404, 'SYS.1003', /instanceOfferingUuid/);
    await fails(
      t,
      zs.createVmInstance({ name: 'x', imageUuid: env.image.uuid, l3NetworkUuids: [env.l3.uuid] } as never),
      400,
      'SYS.1007',
      /instanceOfferingUuid/,
    );
    await fails(t, create('x', { hostUuid: newUuid() }), 404, 'SYS.1003', /hostUuid/);
    await fails(t, zs.startVmInstance({ uuid: newUuid() }), 404, 'SYS.1003', /VmInstanceVO/);
    const big = await zs.createInstanceOffering({ name: 'huge', cpuNum: 1, memorySize: 64 * GiB });
    await fails(t, create('huge', { instanceOfferingUuid: big.inventory.uuid }), 503, 'HOST_ALLOCATION.1001', /not enough capacity/);
    await assertTotals(t, s, env, 'after failed allocation');
  });

  t.test('a disconnected host: operations fail fast, destroy still works', async (t) => {
    const vm = (await create('lonely')).inventory;
    await zs.updateSimulatorHost({ uuid: vm.hostUuid!, connected: false });
    await s.app.services.hosts.setStatus(vm.hostUuid!, 'Disconnected');
    await fails(t, zs.stopVmInstance({ uuid: vm.uuid }), 503, 'HOST.1010', /Disconnected/);
    t.same(await zs.destroyVmInstance({ uuid: vm.uuid }), { success: true });
    t.equal((await zs.queryVmInstance({ q: [`uuid=${vm.uuid}`] })).inventories![0].state, 'Destroyed');
    await zs.updateSimulatorHost({ uuid: vm.hostUuid!, connected: true });
    await zs.reconnectHost({ uuid: vm.hostUuid! });
    await zs.expungeVmInstance({ uuid: vm.uuid });
    await assertTotals(t, s, env, 'after the disconnected destroy');
  });

  t.test('the virtual router: reconnect, destroy, recreated on demand', async (t) => {
    const vr = (await zs.queryVirtualRouterVm({})).inventories![0];
    const re = (await zs.reconnectVirtualRouter({ vmInstanceUuid: vr.uuid })).inventory;
    t.match(re, { uuid: vr.uuid, status: 'Connected' });
    await fails(t, zs.reconnectVirtualRouter({ vmInstanceUuid: newUuid() }), 404, 'SYS.1003', /VirtualRouterVmVO/);
    t.same(await zs.destroyVmInstance({ uuid: vr.uuid }), { success: true });
    t.equal((await zs.queryVirtualRouterVm({ count: true })).total, 0, 'an appliance VM is removed directly');
    const vm = (await create('after-vr')).inventory;
    const vrs = (await zs.queryVirtualRouterVm({})).inventories!;
    t.equal(vrs.length, 1, 'a new router for the next VM');
    t.not(vrs[0].uuid, vr.uuid);
    await zs.destroyVmInstance({ uuid: vm.uuid });
    await zs.expungeVmInstance({ uuid: vm.uuid });
    await assertTotals(t, s, env, 'end');

    // Without a virtual router offering the router cannot be made, and the VM that needed it is rolled back.
    await zs.destroyVmInstance({ uuid: vrs[0].uuid });
    await zs.deleteInstanceOffering({ uuid: env.vrOffering.uuid });
    await fails(t, create('no-router'), 503, 'SYS.1006', /no virtual router offering for zone/);
    t.equal((await zs.queryVmInstance({ count: true })).total, 0, 'nothing left of it');
    await assertTotals(t, s, env, 'after the missing offering');
    const image = (await zs.queryImage({ q: ['name=vr'] })).inventories![0];
    env.vrOffering = (
      await zs.createVirtualRouterOffering({
        name: 'vr-offering2',
        cpuNum: 1,
        memorySize: 512 * MiB,
        zoneUuid: env.zone.uuid,
        managementNetworkUuid: env.l3.uuid,
        imageUuid: image.uuid,
        isDefault: true,
      })
    ).inventory;
  });
  t.test('maintenance moves VMs; deleting an L3, a host, the primary storage', async (t) => {
    const vm = (await create('mover')).inventory;
    const from = vm.hostUuid!;
    await zs.changeHostState({ uuid: from, stateEvent: 'maintain' });
    const moved = (await zs.queryVmInstance({ q: [`uuid=${vm.uuid}`] })).inventories![0];
    t.match(moved, { state: 'Running' });
    t.not(moved.hostUuid, from, 'migrated off the host going to maintenance');
    t.equal((await zs.queryVmInstance({ q: [`hostUuid=${from}`], count: true })).total, 0, 'nothing left on it (the router moved too)');
    await zs.changeHostState({ uuid: from, stateEvent: 'enable' });
    await assertTotals(t, s, env, 'after maintenance');

    const { inventory: l3c } = await zs.createL3Network({ name: 'l3c', l2NetworkUuid: env.l2.uuid });
    await zs.addIpRange({
      l3NetworkUuid: l3c.uuid,
      name: 'r',
      startIp: '10.8.0.10',
      endIp: '10.8.0.20',
      netmask: '255.255.255.0',
      gateway: '10.8.0.1',
    } as never);
    await zs.attachL3NetworkToVm({ vmInstanceUuid: vm.uuid, l3NetworkUuid: l3c.uuid });
    await zs.deleteL3Network({ uuid: l3c.uuid });
    const after = (await zs.queryVmInstance({ q: [`uuid=${vm.uuid}`] })).inventories![0];
    t.match(after, { state: 'Running' }, 'the VM survives the deletion of one of its L3 networks');
    t.same(
      after.vmNics.map((n) => n.l3NetworkUuid),
      [env.l3.uuid],
      'its NIC there is gone',
    );

    const host = after.hostUuid!;
    await zs.deleteHost({ uuid: host });
    const orphan = (await zs.queryVmInstance({ q: [`uuid=${vm.uuid}`] })).inventories![0];
    t.match(orphan, { state: 'Stopped' }, 'deleting its host stops the VM');
    t.notOk(orphan.hostUuid);
    await assertTotals(t, s, env, 'after host deletion');

    await zs.deletePrimaryStorage({ uuid: env.ps.uuid, deleteMode: 'Enforcing' });
    t.equal((await zs.queryVmInstance({ count: true })).total, 0, 'deleting the primary storage deletes the VMs on it (the router too)');
    t.equal((await zs.queryVolume({ q: ['type=Root'], count: true })).total, 0);
    t.equal((await s.app.db.select().from(usedIps).where(eq(usedIps.l3NetworkUuid, env.l3.uuid))).length, 0, 'their IPs are free');
  });
});

t.test('200 concurrent creations on 20 hosts, through two management nodes', async (t) => {
  t.setTimeout(300_000);
  const s = await startServer();
  t.teardown(() => s.close());
  const zs = s.client;
  const env = await buildEnv(zs, { hosts: 20 });
  // Half the calls go to a second management node on the same database: the router must still be made once.
  const peer = await s.startPeer();
  const zs2 = new ZStackClient({ endpoint: peer.url, accountName: 'admin', password: 'password', pollIntervalMs: 20 });
  const started = Date.now();
  const results = await Promise.allSettled(
    Array.from({ length: 200 }, (_, i) =>
      (i % 2 ? zs2 : zs).createVmInstance({
        name: `vm-${i}`,
        instanceOfferingUuid: env.offering.uuid,
        imageUuid: env.image.uuid,
        l3NetworkUuids: [env.l3.uuid],
      } as never),
    ),
  );
  // Reported, not asserted (timing goals live in bench/): the rate CI reached, with the suite running around it.
  t.comment(`200 concurrent creations through two nodes: ${(200 / ((Date.now() - started) / 1000)).toFixed(1)} VMs/s`);
  const failed = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
  t.equal(
    failed.length,
    0,
    failed
      .map((f) => String(f.reason?.message ?? f.reason))
      .slice(0, 3)
      .join('; ') || 'all created',
  );
  t.equal((await zs.queryVirtualRouterVm({ count: true })).total, 1, 'exactly one virtual router');
  const nics = await s.app.db.select().from(vmNics);
  t.equal(nics.length, 201);
  t.equal(new Set(nics.map((n) => n.ip)).size, 201, 'no duplicate IP');
  t.equal(new Set(nics.map((n) => n.mac)).size, 201, 'no duplicate MAC');
  const running = await s.app.db.select().from(vmInstances).where(eq(vmInstances.state, 'Running'));
  t.equal(running.length, 201);
  await assertTotals(t, s, env, '200 VMs');
  const perHost = new Map<string, number>();
  for (const v of running) perHost.set(v.hostUuid!, (perHost.get(v.hostUuid!) ?? 0) + 1);
  t.equal(perHost.size, 20, 'every host got VMs');
  // The reservation commits without waiting for the disk, for its own transaction only: every pooled connection
  // still commits synchronously afterwards (a session-wide setting would make later acknowledged writes losable).
  const pool = s.app.database.pool!;
  const clients = await Promise.all(Array.from({ length: Math.max(1, pool.idleCount) }, () => pool.connect()));
  try {
    for (const c of clients) t.equal((await c.query<{ v: string }>('SELECT current_setting($1) AS v', ['synchronous_commit'])).rows[0].v, 'on');
  } finally {
    for (const c of clients) c.release();
  }
});

// The rest of L2/L3 and the virtual router APIs through the SDK (one server, one world): UpdateL2Network,
// QueryL2VlanNetwork, ChangeL3NetworkState (what a Disabled L3 refuses), UpdateIpRange, GetFreeIp /
// CheckIpAvailability / GetIpAddressCapacity against the IP allocator before and after a VM, GetVmAttachableL3Network,
// UpdateVirtualRouterOffering (one default per zone, also under concurrent updates), CreateVirtualRouterVm and
// QueryApplianceVm / ListApplianceVm.
import t from 'tap';
import { startServer } from '../lib/harness.js';
import { buildWorld } from '../lib/world.js';
import { fails } from '../lib/fails.js';

const UNKNOWN = 'ffffffffffffffffffffffffffffffff';

t.test('L2/L3 and virtual router APIs', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const zs = s.client;
  const world = await buildWorld(zs, { virtualRouter: false, hosts: 1 });
  const l3 = world.l3NetworkUuid;

  // ---- L2
  const renamed = (await zs.updateL2Network({ uuid: world.l2NetworkUuid, name: 'l2-renamed', description: 'the flat one' })).inventory;
  t.match(renamed, { name: 'l2-renamed', description: 'the flat one', type: 'L2NoVlanNetwork', physicalInterface: 'eth0' });
  await fails(t, zs.updateL2Network({ uuid: world.l2NetworkUuid, name: 'x'.repeat(256) }), 'SYS.1007', /name/);
  await fails(t, zs.updateL2Network({ uuid: UNKNOWN, name: 'x' }), 'SYS.1003', /L2NetworkVO/);
  const vlan = (await zs.createL2VlanNetwork({ name: 'l2-vlan', zoneUuid: world.zoneUuid, physicalInterface: 'eth1', vlan: 10 })).inventory;
  const vlans = (await zs.queryL2VlanNetwork({})).inventories!;
  t.same(
    vlans.map((l) => [l.uuid, l.vlan]),
    [[vlan.uuid, 10]],
    'QueryL2VlanNetwork lists the VLAN network only',
  );
  t.equal((await zs.queryL2VlanNetwork({ q: ['vlan=10'], count: true })).total, 1);

  // ---- IP range
  const range = (await zs.updateIpRange({ uuid: world.ipRangeUuid, name: 'ipr-renamed', description: 'seed range' })).inventory;
  t.match(range, { name: 'ipr-renamed', description: 'seed range', startIp: '192.168.201.180', endIp: '192.168.201.199' });
  await fails(t, zs.updateIpRange({ uuid: UNKNOWN, name: 'x' }), 'SYS.1003', /IpRangeVO/);

  // ---- free IPs and capacity, before and after a VM
  const capacity = async () => {
    const c = await zs.getIpAddressCapacity({ l3NetworkUuids: [l3] });
    return [c.totalCapacity, c.availableCapacity];
  };
  t.same(await capacity(), [20, 20], 'an empty range: 20 of 20 free');
  t.same(await zs.getIpAddressCapacity({ ipRangeUuids: [world.ipRangeUuid] }).then((c) => c.availableCapacity), 20);
  t.same(await zs.getIpAddressCapacity({ all: true }).then((c) => c.totalCapacity), 20);
  await fails(t, zs.getIpAddressCapacity({}), 'SYS.1007', /at least one/);

  const vm = (
    await zs.createVmInstance({
      name: 'vm1',
      instanceOfferingUuid: world.instanceOfferingUuid,
      imageUuid: world.imageUuid,
      l3NetworkUuids: [l3],
      systemTags: [`staticIp::${l3}::192.168.201.181`],
    } as never)
  ).inventory;
  const vmIp = vm.vmNics[0].ip;
  t.equal(vmIp, '192.168.201.181', 'the VM took its static IP');
  t.same(await capacity(), [20, 19], 'a VM takes one address');
  t.same(await zs.getIpAddressCapacity({ zoneUuids: [world.zoneUuid] }).then((c) => [c.totalCapacity, c.availableCapacity]), [20, 19]);

  const first = (await zs.getFreeIp({ l3NetworkUuid: l3, limit: 3 })).inventories;
  t.same(
    first.map((f) => f.ip),
    ['192.168.201.180', '192.168.201.182', '192.168.201.183'],
    'free IPs ascend and skip the used one',
  );
  t.match(first[0], { ipRangeUuid: world.ipRangeUuid, netmask: '255.255.252.0', gateway: '192.168.200.1' });
  const all = (await zs.getFreeIp({ l3NetworkUuid: l3, limit: -1 })).inventories.map((f) => f.ip);
  t.equal(all.length, 19, 'a negative limit lists every free address: as many as the capacity says');
  t.notOk(all.includes(vmIp), 'GetFreeIp never returns a used address');
  t.equal((await zs.getFreeIp({ l3NetworkUuid: l3 })).inventories.length, 19, 'default limit 100');
  t.same(
    (await zs.getFreeIp({ l3NetworkUuid: l3, ipRangeUuid: world.ipRangeUuid, start: '192.168.201.197' })).inventories.map((f) => f.ip),
    ['192.168.201.197', '192.168.201.198', '192.168.201.199'],
    'start skips the lower addresses',
  );
  await fails(t, zs.getFreeIp({ l3NetworkUuid: l3, start: '300.1.1.1' }), 'SYS.1007', /start/);
  await fails(t, zs.getFreeIp({ l3NetworkUuid: UNKNOWN }), 'SYS.1003', /L3NetworkVO/);

  t.equal((await zs.checkIpAvailability({ l3NetworkUuid: l3, ip: '192.168.201.190' })).available, true, 'a free address');
  t.equal((await zs.checkIpAvailability({ l3NetworkUuid: l3, ip: vmIp })).available, false, 'a used address');
  t.equal((await zs.checkIpAvailability({ l3NetworkUuid: l3, ip: '192.168.200.1' })).available, false, 'the gateway');
  t.equal((await zs.checkIpAvailability({ l3NetworkUuid: l3, ip: '10.0.0.1' })).available, false, 'outside the ranges');
  await fails(t, zs.checkIpAvailability({ l3NetworkUuid: l3, ip: 'not-an-ip' }), 'SYS.1007', /invalid IP\[not-an-ip\]/);

  // ---- L3 state, attachable L3s
  const l3b = (await zs.createL3Network({ name: 'l3-b', l2NetworkUuid: world.l2NetworkUuid })).inventory;
  await zs.addIpRange({ l3NetworkUuid: l3b.uuid, name: 'r', startIp: '10.10.0.10', endIp: '10.10.0.20', netmask: '255.255.255.0', gateway: '10.10.0.1' });
  t.same(
    (await zs.getVmAttachableL3Network({ vmInstanceUuid: vm.uuid })).inventories.map((l) => l.uuid),
    [l3b.uuid],
    'attachable: the Enabled L3 on the cluster the VM is not on yet',
  );
  const disabled = (await zs.changeL3NetworkState({ uuid: l3b.uuid, stateEvent: 'disable' })).inventory;
  t.equal(disabled.state, 'Disabled');
  t.same((await zs.getVmAttachableL3Network({ vmInstanceUuid: vm.uuid })).inventories, [], 'a Disabled L3 is not attachable');
  await fails(t, zs.attachL3NetworkToVm({ vmInstanceUuid: vm.uuid, l3NetworkUuid: l3b.uuid }), 'SYS.1006', /is disabled/);
  await fails(
    t,
    zs.createVmInstance({ name: 'vm2', instanceOfferingUuid: world.instanceOfferingUuid, imageUuid: world.imageUuid, l3NetworkUuids: [l3b.uuid] }),
    'SYS.1007',
    /Disabled/,
  );
  await fails(t, zs.changeL3NetworkState({ uuid: l3b.uuid, stateEvent: 'off' as never }), 'SYS.1007', /stateEvent/);
  t.equal((await zs.changeL3NetworkState({ uuid: l3b.uuid, stateEvent: 'enable' })).inventory.state, 'Enabled');
  await zs.attachL3NetworkToVm({ vmInstanceUuid: vm.uuid, l3NetworkUuid: l3b.uuid });
  t.same((await zs.getVmAttachableL3Network({ vmInstanceUuid: vm.uuid })).inventories, [], 'nothing left to attach');
  await fails(t, zs.getVmAttachableL3Network({ vmInstanceUuid: UNKNOWN }), 'SYS.1003', /VmInstanceVO/);

  // ---- virtual router offerings: one default per zone
  const vro = (name: string, isDefault: boolean) =>
    zs
      .createVirtualRouterOffering({
        name,
        cpuNum: 1,
        memorySize: 256 * 2 ** 20,
        zoneUuid: world.zoneUuid,
        managementNetworkUuid: l3,
        imageUuid: world.imageUuid,
        isDefault,
      })
      .then((r) => r.inventory);
  const a = await vro('vro-a', true);
  const b = await vro('vro-b', false);
  const defaults = async () => (await zs.queryVirtualRouterOffering({ q: ['isDefault=true'] })).inventories!.map((o) => o.name);
  t.same(await defaults(), ['vro-a']);
  const bDefault = (await zs.updateVirtualRouterOffering({ uuid: b.uuid, isDefault: true, name: 'vro-b2', description: 'now default' })).inventory;
  t.match(bDefault, { name: 'vro-b2', description: 'now default', isDefault: true });
  t.same(await defaults(), ['vro-b2'], 'the previous default stepped down');
  await zs.updateVirtualRouterOffering({ uuid: b.uuid, isDefault: false });
  t.same(await defaults(), [], 'isDefault=false leaves the zone without a default');
  await Promise.all([zs.updateVirtualRouterOffering({ uuid: a.uuid, isDefault: true }), zs.updateVirtualRouterOffering({ uuid: b.uuid, isDefault: true })]);
  t.equal((await defaults()).length, 1, 'two concurrent updates to default: exactly one default');
  await fails(t, zs.updateVirtualRouterOffering({ uuid: world.instanceOfferingUuid, name: 'x' }), 'SYS.1003', /VirtualRouterOfferingVO/);
  await fails(t, zs.updateVirtualRouterOffering({ uuid: a.uuid, imageUuid: UNKNOWN }), 'SYS.1003', /ImageVO/);

  // ---- CreateVirtualRouterVm, QueryApplianceVm
  const l3c = (await zs.createL3Network({ name: 'l3-c', l2NetworkUuid: vlan.uuid })).inventory;
  await zs.attachL2NetworkToCluster({ l2NetworkUuid: vlan.uuid, clusterUuid: world.clusterUuid });
  await zs.addIpRange({ l3NetworkUuid: l3c.uuid, name: 'r', startIp: '10.20.0.10', endIp: '10.20.0.20', netmask: '255.255.255.0', gateway: '10.20.0.1' });
  const vr = (
    await zs.createVirtualRouterVm({
      name: 'vr-by-hand',
      instanceOfferingUuid: a.uuid,
      imageUuid: world.imageUuid,
      l3NetworkUuids: [l3c.uuid],
      managementNetworkUuid: l3,
    })
  ).inventory;
  t.match(vr, { name: 'vr-by-hand', type: 'ApplianceVm', applianceVmType: 'VirtualRouter', state: 'Running', status: 'Connected', managementNetworkUuid: l3 });
  const guest = vr.vmNics.find((n) => n.l3NetworkUuid === l3c.uuid);
  t.equal(guest?.ip, '10.20.0.1', "the guest NIC holds the guest network's gateway");
  t.equal(vr.vmNics.length, 2, 'management+public NIC and guest NIC');
  const appliances = (await zs.queryApplianceVm({})).inventories!;
  t.same(
    appliances.map((v) => v.uuid),
    [vr.uuid],
    'QueryApplianceVm lists appliance VMs only',
  );
  t.equal(appliances[0].applianceVmType, 'VirtualRouter');
  t.equal((await zs.queryApplianceVm({ q: [`uuid=${vm.uuid}`] })).inventories!.length, 0, 'a user VM is no appliance');
  t.same(
    (await zs.listApplianceVm({})).inventories!.map((v: { uuid: string }) => v.uuid),
    [vr.uuid],
    "1.1's ListApplianceVm answers the same",
  );
  await fails(
    t,
    zs.createVirtualRouterVm({ name: 'vr2', instanceOfferingUuid: a.uuid, imageUuid: world.imageUuid, l3NetworkUuids: [l3c.uuid], managementNetworkUuid: l3 }),
    'SYS.1007',
    /already has a virtual router/,
  );
  await fails(
    t,
    zs.createVirtualRouterVm({ name: 'vr3', instanceOfferingUuid: a.uuid, imageUuid: world.imageUuid, l3NetworkUuids: [UNKNOWN], managementNetworkUuid: l3 }),
    'SYS.1003',
    /L3NetworkVO/,
  );
  await fails(
    t,
    zs.createVirtualRouterVm({ name: 'vr4', instanceOfferingUuid: a.uuid, imageUuid: world.imageUuid, l3NetworkUuids: [], managementNetworkUuid: l3 }),
    'SYS.1007',
    /l3NetworkUuids/,
  );
});

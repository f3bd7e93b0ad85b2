// Release notes §9, "Upgrade Virtual Router Provider To Flat Network Provider", performed exactly as printed there
// through the generated SDK on simulated hosts: every reply has the seed's shape (every key the seed shows, with
// the same JSON type, nested lists included) and the seed's values wherever they do not depend on generated uuids,
// dates or capacities.
import t, { type Test } from 'tap';
import { startServer } from '../lib/harness.js';
import { buildWorld } from '../lib/world.js';
import * as seed from './seed-replies.js';

type Json = unknown;
const kind = (v: Json) => (Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v);

/** Every key of `expected` is in `actual` with the same JSON type; lists are compared element-wise to the seed's first element. */
function sameShape(t: Test, actual: Json, expected: Json, path = '$'): void {
  if (kind(actual) !== kind(expected)) {
    t.fail(`${path}: expected ${kind(expected)}, got ${kind(actual)} (${JSON.stringify(actual)?.slice(0, 80)})`);
    return;
  }
  if (Array.isArray(expected)) {
    const a = actual as Json[];
    if (expected.length === 0) t.same(a, [], `${path} is empty as in the seed`);
    else {
      t.ok(a.length > 0, `${path} is not empty`);
      a.forEach((item, i) => sameShape(t, item, expected[0], `${path}[${i}]`));
    }
    return;
  }
  if (expected && typeof expected === 'object') {
    for (const [k, v] of Object.entries(expected)) {
      if (!(k in (actual as object))) t.fail(`${path}.${k} is missing`);
      else sameShape(t, (actual as Record<string, Json>)[k], v, `${path}.${k}`);
    }
  }
}

t.test('§9: move an L3 network from the VirtualRouter provider to the Flat provider', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const zs = s.client;
  const w = await buildWorld(zs);
  // A user VM on the L3 makes the VirtualRouter provider create its appliance VM, as in the seed's world.
  const vm = (
    await zs.createVmInstance({
      name: 'vm1',
      instanceOfferingUuid: w.instanceOfferingUuid,
      imageUuid: w.imageUuid,
      l3NetworkUuids: [w.l3NetworkUuid],
    })
  ).inventory;
  t.equal(vm.state, 'Running');

  // 1. Obtain the UUID of the virtual router provider
  const refs = await zs.queryNetworkServiceL3NetworkRef({ q: [`l3NetworkUuid=${w.l3NetworkUuid}`] });
  sameShape(t, refs, seed.step1QueryNetworkServiceL3NetworkRef, 'step1');
  t.same(refs.inventories!.map((r) => r.networkServiceType).sort(), ['DHCP', 'DNS']);
  t.ok(refs.inventories!.every((r) => r.networkServiceProviderUuid === w.virtualRouterProviderUuid && r.l3NetworkUuid === w.l3NetworkUuid));
  const vrProvider = refs.inventories![0].networkServiceProviderUuid;

  // 2. Detach the virtual router provider from the L3 network
  const detached = await zs.detachNetworkServiceFromL3Network({ l3NetworkUuid: w.l3NetworkUuid, networkServices: { [vrProvider]: ['DHCP', 'DNS'] } });
  sameShape(t, detached, seed.step2DetachNetworkServiceFromL3Network, 'step2');
  const l3 = detached.inventory;
  t.same(l3.networkServices, [], 'no network services left');
  t.same(l3.dns, ['8.8.8.8']);
  t.match(l3, { name: 'l3-etpz', state: 'Enabled', system: false, type: 'L3BasicNetwork', l2NetworkUuid: w.l2NetworkUuid, zoneUuid: w.zoneUuid });
  t.match(l3.ipRanges[0], { startIp: '192.168.201.180', endIp: '192.168.201.199', gateway: '192.168.200.1', netmask: '255.255.252.0', name: 'ipr-dk7p' });

  // 3. Get the flat network provider UUID
  const flat = await zs.queryNetworkServiceProvider({ q: ['type=Flat'] });
  sameShape(t, flat, seed.step3QueryNetworkServiceProvider, 'step3');
  t.equal(flat.inventories!.length, 1);
  t.match(flat.inventories![0], {
    name: 'Flat Network Service Provider',
    description: 'Flat Network Service Provider',
    type: 'Flat',
  });
  t.same(flat.inventories![0].networkServiceTypes, ['DHCP', 'Userdata']);
  const flatUuid = flat.inventories![0].uuid;

  // 4. Get L2 UUID for the L3 network (the seed's `fields=l2NetworkUuid, uuid=<uuid>`)
  const l2only = await zs.queryL3Network({ fields: 'l2NetworkUuid', q: [`uuid=${w.l3NetworkUuid}`] });
  t.same(
    l2only,
    { inventories: [{ l2NetworkUuid: w.l2NetworkUuid }], schema: { 'inventories[0]': 'org.zstack.header.network.l3.L3NetworkInventory' }, success: true },
    "step4 is exactly the seed shape (plus the REST API's schema map, as upstream's)",
  );

  // 5. Attach the flat network provider to the L2 network
  const attachedProvider = await zs.attachNetworkServiceProviderToL2Network({ l2NetworkUuid: w.l2NetworkUuid, networkServiceProviderUuid: flatUuid });
  sameShape(t, attachedProvider, seed.step5AttachNetworkServiceProviderToL2Network, 'step5');
  t.ok(attachedProvider.inventory.attachedL2NetworkUuids.includes(w.l2NetworkUuid));

  // 6. Attach the flat network provider to the L3 network
  const attached = await zs.attachNetworkServiceToL3Network({ l3NetworkUuid: w.l3NetworkUuid, networkServices: { [flatUuid]: ['DHCP', 'Userdata'] } });
  sameShape(t, attached, seed.step6AttachNetworkServiceToL3Network, 'step6');
  t.same(
    attached.inventory.networkServices.map((n) => [n.networkServiceProviderUuid, n.networkServiceType]),
    [
      [flatUuid, 'DHCP'],
      [flatUuid, 'Userdata'],
    ],
    'Flat DHCP and Userdata, in that order',
  );

  // 7. Delete the virtual router VM
  const vrs = await zs.queryVirtualRouterVm({});
  sameShape(t, vrs, seed.step7QueryVirtualRouterVm, 'step7');
  t.equal(vrs.inventories!.length, 1, 'one virtual router for the L3');
  const vr = vrs.inventories![0];
  t.match(vr, {
    name: `virtualRouter.l3.${w.l3NetworkUuid}`,
    applianceVmType: 'VirtualRouter',
    type: 'ApplianceVm',
    state: 'Running',
    status: 'Connected',
    allocatorStrategy: 'LeastVmPreferredHostAllocatorStrategy',
    managementNetworkUuid: w.l3NetworkUuid,
    publicNetworkUuid: w.l3NetworkUuid,
    defaultRouteL3NetworkUuid: w.l3NetworkUuid,
    zoneUuid: w.zoneUuid,
    clusterUuid: w.clusterUuid,
  });
  t.equal(vr.allVolumes[0].name, `ROOT-for-virtualRouter.l3.${w.l3NetworkUuid}`);
  t.equal(vr.allVolumes[0].type, 'Root');
  t.equal(vr.vmNics[0].l3NetworkUuid, w.l3NetworkUuid);
  t.match(vr.vmNics[0].mac, /^fa:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}:00$/);
  const destroyed = await zs.destroyVmInstance({ uuid: vr.uuid });
  t.same(destroyed, seed.step7DestroyVmInstance, 'step7 destroy');

  // 8. Reconnect all hosts
  const hosts = await zs.queryHost({});
  // The seed's hosts are KVM hosts; `username` is a KVM host's field (its SSH login), which simulated hosts have
  // not. Every other field of the seed's host inventory is there.
  const { username: _kvmOnly, ...simulatedHostShape } = seed.step8QueryHost.inventories[0];
  sameShape(t, hosts, { ...seed.step8QueryHost, inventories: [simulatedHostShape] }, 'step8');
  t.ok(hosts.inventories!.every((h) => h.hypervisorType === 'Simulator'));
  t.equal(hosts.inventories!.length, 2);
  for (const h of hosts.inventories!) {
    t.match(h, { state: 'Enabled', status: 'Connected' });
    const r = await zs.reconnectHost({ uuid: h.uuid });
    t.equal(r.success, true);
    t.equal(r.inventory.status, 'Connected');
  }

  // The user VM lives on: its NIC still has its address, now served by the Flat provider.
  const after = await zs.queryVmInstance({ q: [`uuid=${vm.uuid}`] });
  t.equal(after.inventories![0].state, 'Running');
  t.equal(after.inventories![0].vmNics[0].ip, vm.vmNics[0].ip);
});

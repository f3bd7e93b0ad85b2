// Records real replies as the API reference's response examples: drives a test server through the SDK (the seed's
// world, a VM and its life, queries and reads) and writes each operation's first reply to
// openapi/examples/replies.json; `npm run generate` then puts them in the spec (openapi/scripts/generate.mjs).
//   npx tsx test/docs/record-replies.ts && npm run generate
// test/docs/reply-examples.test.ts keeps the recorded replies valid against the spec.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer } from '../lib/harness.js';
import { buildWorld } from '../lib/world.js';

const s = await startServer();
const zs = s.client;
const replies: Record<string, unknown> = {};
const call = zs.call.bind(zs);
(zs as { call: unknown }).call = async (apiName: string, params: unknown, options: unknown) => {
  const reply = (await call(apiName as never, params as never, options as never)) as Record<string, unknown>;
  // A query's example shows two of its inventories.
  const shown = Array.isArray(reply?.inventories) ? { ...reply, inventories: reply.inventories.slice(0, 2) } : reply;
  replies[apiName] ??= JSON.parse(JSON.stringify(shown));
  return reply;
};

try {
  await zs.getVersion();
  const w = await buildWorld(zs, { virtualRouter: false });
  await zs.attachNetworkServiceToL3Network({ l3NetworkUuid: w.l3NetworkUuid, networkServices: { [w.flatProviderUuid]: ['DHCP'] } });
  const disk = (await zs.createDiskOffering({ name: 'disk-1G', diskSize: 2 ** 30 })).inventory;
  const vm = (
    await zs.createVmInstance({
      name: 'vm1',
      instanceOfferingUuid: w.instanceOfferingUuid,
      imageUuid: w.imageUuid,
      l3NetworkUuids: [w.l3NetworkUuid],
      dataDiskOfferingUuids: [disk.uuid],
    })
  ).inventory;
  await zs.stopVmInstance({ uuid: vm.uuid });
  await zs.startVmInstance({ uuid: vm.uuid });
  await zs.rebootVmInstance({ uuid: vm.uuid });
  const vol = (await zs.createDataVolume({ name: 'data-1', diskOfferingUuid: disk.uuid })).inventory;
  await zs.attachDataVolumeToVm({ vmInstanceUuid: vm.uuid, volumeUuid: vol.uuid });
  await zs.detachDataVolumeFromVm({ uuid: vol.uuid });
  await zs.createVolumeSnapshot({ volumeUuid: vm.rootVolumeUuid!, name: 'snap-1' });
  const sg = (await zs.createSecurityGroup({ name: 'sg-1' })).inventory;
  await zs.addSecurityGroupRule({
    securityGroupUuid: sg.uuid,
    rules: [{ type: 'Ingress', protocol: 'TCP', startPort: 22, endPort: 22, allowedCidr: '0.0.0.0/0' }],
  });
  await zs.createAccount({ name: 'tenant-1', password: 'password' });
  for (const q of [
    'queryZone',
    'queryCluster',
    'queryHost',
    'queryPrimaryStorage',
    'queryBackupStorage',
    'queryImage',
    'queryL2Network',
    'queryL3Network',
    'queryIpRange',
    'queryVmInstance',
    'queryVmNic',
    'queryVolume',
    'queryVolumeSnapshot',
    'queryInstanceOffering',
    'queryDiskOffering',
    'queryNetworkServiceProvider',
    'queryNetworkServiceL3NetworkRef',
    'querySecurityGroup',
    'queryAccount',
    'queryGlobalConfig',
    'queryManagementNode',
  ] as const) {
    await (zs[q] as (p: object) => Promise<unknown>).call(zs, {});
  }
  await zs.getFreeIp({ l3NetworkUuid: w.l3NetworkUuid, limit: 2 });
  await zs.getIpAddressCapacity({ l3NetworkUuids: [w.l3NetworkUuid] });
  await zs.getCpuMemoryCapacity({ zoneUuids: [w.zoneUuid] });
  await zs.getPrimaryStorageCapacity({ zoneUuids: [w.zoneUuid] });
  await zs.getVmAttachableDataVolume({ vmInstanceUuid: vm.uuid });
  await zs.destroyVmInstance({ uuid: vm.uuid });
  await zs.expungeVmInstance({ uuid: vm.uuid });
} finally {
  await s.close();
}
const sorted = Object.fromEntries(Object.entries(replies).sort(([a], [b]) => a.localeCompare(b)));
const file = join(import.meta.dirname, '../../openapi/examples/replies.json');
writeFileSync(file, JSON.stringify(sorted, null, 2) + '\n');
console.log(`${Object.keys(sorted).length} replies recorded in ${file}`);
process.exit(0);

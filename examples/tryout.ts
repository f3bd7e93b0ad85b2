// The tryout: from an empty server to running VMs on simulated hosts, then volumes and networks attached and
// detached while the VMs run. It builds the release notes' §9 starting point — an L3 network whose DHCP and DNS come
// from the VirtualRouter provider, served by a virtual router VM — and ends with the command that migrates it to
// the Flat provider. Start the server with `npm start`, then: `npx tsx examples/tryout.ts`
// (ZSTACK_ENDPOINT, ZSTACK_ACCOUNT_NAME, ZSTACK_PASSWORD override the defaults).
import { ZStackClient } from '../sdk/src/index.js';
import { buildWorld } from './lib-world.js';

const zs = new ZStackClient({
  endpoint: process.env.ZSTACK_ENDPOINT ?? 'http://127.0.0.1:8080',
  accountName: process.env.ZSTACK_ACCOUNT_NAME ?? 'admin',
  password: process.env.ZSTACK_PASSWORD ?? 'password',
});
const log = (...args: unknown[]) => console.log('•', ...args);

const w = await buildWorld(zs);
log(`zone, cluster, ${w.hostUuids.length} simulated hosts, storage, the tiny image and L3 network ${w.l3NetworkUuid} are ready`);
log('the L3 gets DHCP and DNS from the VirtualRouter provider (a virtual router VM starts with its first VM)');

const vms = [];
for (const name of ['tryout-vm1', 'tryout-vm2']) {
  const { inventory } = await zs.createVmInstance({
    name,
    instanceOfferingUuid: w.instanceOfferingUuid,
    imageUuid: w.imageUuid,
    l3NetworkUuids: [w.l3NetworkUuid],
  });
  vms.push(inventory);
  log(`${inventory.name} is ${inventory.state} on host ${inventory.hostUuid} with IP ${inventory.vmNics[0].ip}`);
}

const [router] = (await zs.queryVirtualRouterVm({ q: [`name=virtualRouter.l3.${w.l3NetworkUuid}`] })).inventories!;
log(`virtual router ${router.uuid} is ${router.state}, serving the L3`);

const disk = await zs.createDiskOffering({ name: 'disk-1G', diskSize: 2 ** 30 });
const volume = (await zs.createDataVolume({ name: 'data1', diskOfferingUuid: disk.inventory.uuid })).inventory;
await zs.attachDataVolumeToVm({ volumeUuid: volume.uuid, vmInstanceUuid: vms[0].uuid });
log(`data volume ${volume.name} attached to ${vms[0].name} while it runs`);
await zs.detachDataVolumeFromVm({ uuid: volume.uuid });
log(`…and detached again`);

const l3b = (await zs.createL3Network({ name: 'second-net', l2NetworkUuid: w.l2NetworkUuid })).inventory;
await zs.addIpRangeByNetworkCidr({ l3NetworkUuid: l3b.uuid, name: 'r2', networkCidr: '10.20.0.0/24' });
const withNic = (await zs.attachL3NetworkToVm({ vmInstanceUuid: vms[1].uuid, l3NetworkUuid: l3b.uuid })).inventory;
const nic = withNic.vmNics.find((n) => n.l3NetworkUuid === l3b.uuid)!;
log(`${vms[1].name} got a second NIC at run time: ${nic.ip}`);
await zs.detachL3NetworkFromVm({ vmNicUuid: nic.uuid });
log(`…and lost it again`);

await zs.stopVmInstance({ uuid: vms[0].uuid });
await zs.startVmInstance({ uuid: vms[0].uuid });
log(`${vms[0].name} stopped and started again; done. Try: QueryVmInstance with q=vmNics.ip=${vms[0].vmNics[0].ip}`);
log(`next, release notes §9 (VirtualRouter → Flat): npx tsx examples/section9-migration.ts ${w.l3NetworkUuid}`);

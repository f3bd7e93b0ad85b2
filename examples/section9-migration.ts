// Release notes §9 as a script: move an L3 network from the VirtualRouter provider to the Flat provider.
//   npx tsx examples/section9-migration.ts <l3NetworkUuid>
// Same steps as the release notes; safe to run twice (each step checks first).
import { ZStackClient } from '../sdk/src/index.js';

const l3NetworkUuid = process.argv[2];
if (!l3NetworkUuid) {
  console.error('usage: section9-migration.ts <l3NetworkUuid>');
  process.exit(2);
}
const zs = new ZStackClient({
  endpoint: process.env.ZSTACK_ENDPOINT ?? 'http://127.0.0.1:8080',
  accountName: process.env.ZSTACK_ACCOUNT_NAME ?? 'admin',
  password: process.env.ZSTACK_PASSWORD ?? 'password',
});

// 1. the services the L3 gets from the VirtualRouter provider
const providers = (await zs.queryNetworkServiceProvider({})).inventories!;
const vr = providers.find((p) => p.type === 'VirtualRouter')!;
const flat = providers.find((p) => p.type === 'Flat')!;
const refs = (await zs.queryNetworkServiceL3NetworkRef({ q: [`l3NetworkUuid=${l3NetworkUuid}`] })).inventories!;
const fromVr = refs.filter((r) => r.networkServiceProviderUuid === vr.uuid).map((r) => r.networkServiceType);
console.log(`1. VirtualRouter provides ${fromVr.join(', ') || 'nothing'} on L3 ${l3NetworkUuid}`);
// 2. detach them
if (fromVr.length) await zs.detachNetworkServiceFromL3Network({ l3NetworkUuid, networkServices: { [vr.uuid]: fromVr } });
console.log('2. detached');
// 3./4./5. the Flat provider, attached to the L3's L2
const [{ l2NetworkUuid }] = (await zs.queryL3Network({ fields: 'l2NetworkUuid', q: [`uuid=${l3NetworkUuid}`] })).inventories!;
await zs.attachNetworkServiceProviderToL2Network({ l2NetworkUuid: l2NetworkUuid!, networkServiceProviderUuid: flat.uuid });
console.log(`3-5. Flat provider ${flat.uuid} attached to L2 ${l2NetworkUuid}`);
// 6. Flat DHCP and Userdata on the L3
const have = new Set(refs.filter((r) => r.networkServiceProviderUuid === flat.uuid).map((r) => r.networkServiceType));
const want = ['DHCP', 'Userdata'].filter((s) => !have.has(s));
if (want.length) await zs.attachNetworkServiceToL3Network({ l3NetworkUuid, networkServices: { [flat.uuid]: want } });
console.log('6. Flat DHCP and Userdata attached');
// 7. the virtual router VM of this L3 is no longer needed
for (const router of (await zs.queryVirtualRouterVm({ q: [`name=virtualRouter.l3.${l3NetworkUuid}`] })).inventories!) {
  await zs.destroyVmInstance({ uuid: router.uuid });
  console.log(`7. destroyed virtual router ${router.uuid}`);
}
// 8. reconnect all hosts
for (const host of (await zs.queryHost({})).inventories!) {
  await zs.reconnectHost({ uuid: host.uuid });
  console.log(`8. reconnected host ${host.name}`);
}

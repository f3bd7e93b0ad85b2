// 1.1-shaped requests (../shared/reference/zstack-1.1-apis.md): every field a served API's 1.1 message declares is
// taken, with 1.1's ranges (`cpuSpeed`, `type` fields, vlan 0 and 4095, `type=ApplianceVm`, optional `format` and
// `value`).
import t from 'tap';
import { startServer } from '../lib/harness.js';
import { buildWorld } from '../lib/world.js';
import { UpstreamSdk } from './upstream-sdk.js';

t.test('1.1 parameter shapes', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const zs = s.client;
  const w = await buildWorld(zs, { hosts: 1 });
  const sdk = new UpstreamSdk(s.url);
  await sdk.login();
  const ok = (r: { status: number; json: any }, what: string) => {
    t.equal(r.status, 200, `${what}: ${JSON.stringify(r.json?.error ?? '')}`);
    return r.json?.inventory;
  };

  const zone = ok(await sdk.call('POST', '/zstack/v1/zones', { params: { name: 'z11', description: 'd', type: 'zstack' } }), 'CreateZone type=zstack');
  t.equal(zone.type, 'zstack');
  const bad = await sdk.call('POST', '/zstack/v1/zones', { params: { name: 'z12', type: 'vmware' } });
  t.equal(bad.json?.error?.code, 'SYS.1007', "CreateZone refuses a type 1.1's validValues refuse");

  const io = ok(
    await sdk.call('POST', '/zstack/v1/instance-offerings', { params: { name: 'io11', cpuNum: 1, cpuSpeed: 512, memorySize: 2 ** 27, type: 'UserVm' } }),
    'CreateInstanceOffering cpuSpeed',
  );
  t.equal(io.cpuSpeed, 512, 'cpuSpeed is recorded');
  const vro = ok(
    await sdk.call('POST', '/zstack/v1/instance-offerings/virtual-routers', {
      params: {
        name: 'vro11',
        cpuNum: 1,
        cpuSpeed: 1,
        memorySize: 2 ** 29,
        type: 'VirtualRouter',
        zoneUuid: w.zoneUuid,
        managementNetworkUuid: w.l3NetworkUuid,
        imageUuid: w.imageUuid,
      },
    }),
    'CreateVirtualRouterOffering cpuSpeed + type',
  );
  t.equal(vro.type, 'VirtualRouter');

  for (const vlan of [0, 4095]) {
    const l2 = ok(
      await sdk.call('POST', '/zstack/v1/l2-networks/vlan', {
        params: { name: `vlan${vlan}`, zoneUuid: w.zoneUuid, physicalInterface: `eth${vlan}`, vlan, type: 'L2VlanNetwork' },
      }),
      `vlan ${vlan}`,
    );
    t.equal(l2.vlan, vlan);
  }
  const out = await sdk.call('POST', '/zstack/v1/l2-networks/vlan', {
    params: { name: 'vlan4096', zoneUuid: w.zoneUuid, physicalInterface: 'eth9', vlan: 4096 },
  });
  t.equal(out.json?.error?.code, 'SYS.1007', 'vlan 4096 is out of range');
  ok(
    await sdk.call('POST', '/zstack/v1/l2-networks/no-vlan', {
      params: { name: 'nv', zoneUuid: w.zoneUuid, physicalInterface: 'eth7', type: 'L2NoVlanNetwork' },
    }),
    'CreateL2NoVlanNetwork type',
  );
  ok(
    await sdk.call('POST', '/zstack/v1/primary-storage/local-storage', { params: { name: 'ls', zoneUuid: w.zoneUuid, url: '/local', type: 'LocalStorage' } }),
    'AddLocalPrimaryStorage type',
  );

  const img = ok(
    await sdk.call('POST', '/zstack/v1/images', {
      params: {
        name: 'noformat',
        url: 'http://download.zstack.org/templates/zstack-image-1.2.qcow2',
        backupStorageUuids: [w.backupStorageUuid],
        mediaType: 'RootVolumeTemplate',
        system: false,
      },
    }),
    'AddImage without format',
  );
  t.ok(img.format, 'a format is chosen');

  const vm = ok(
    await sdk.call('POST', '/zstack/v1/vm-instances', {
      params: { name: 'vm11', instanceOfferingUuid: w.instanceOfferingUuid, imageUuid: w.imageUuid, l3NetworkUuids: [w.l3NetworkUuid], type: 'ApplianceVm' },
    }),
    'CreateVmInstance type=ApplianceVm',
  );
  t.equal(vm.state, 'Running');

  const before = (await zs.queryGlobalConfig({ q: ['category=apiTimeout', 'name=CreateZone'] })).inventories![0].value;
  const kept = ok(
    await sdk.call('PUT', '/zstack/v1/global-configurations/apiTimeout/CreateZone/actions', { updateGlobalConfig: {} }),
    'UpdateGlobalConfig without value',
  );
  t.equal(kept.value, before, 'the value is unchanged');
});

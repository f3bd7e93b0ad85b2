// The VM system tags 1.1 acts on: `hostname::` (validated, unique on the default L3, the guest's DHCP hostname) and
// `staticIp::<l3>::<ip>` (the NIC's address), on CreateVmInstance and through SetVmHostname/DeleteVmHostname/
// SetVmStaticIp/DeleteVmStaticIp; and tags through the 1.1 RPC endpoint.
import t from 'tap';
import { AGENT_SECRET, startServer, type TestServer } from '../lib/harness.js';
import { buildWorld } from '../lib/world.js';
import { Cli11 } from '../wire/cli11.js';

async function vrState(s: TestServer, l3Uuid: string): Promise<{ dhcpEntries: Array<{ ip: string; hostname?: string }> }> {
  const [vr] = (await s.client.queryVirtualRouterVm({ q: [`managementNetworkUuid=${l3Uuid}`] })).inventories!;
  const res = await fetch(s.sim.url + '/simulator/virtualrouter/state', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${AGENT_SECRET}` },
    body: JSON.stringify({ virtualRouterUuid: vr.uuid }),
  });
  return (await res.json()) as never;
}

t.test('VM tags', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const zs = s.client;
  const w = await buildWorld(zs);
  const base = { instanceOfferingUuid: w.instanceOfferingUuid, imageUuid: w.imageUuid, l3NetworkUuids: [w.l3NetworkUuid] };

  t.test('CreateVmInstance with hostname:: and staticIp::', async (t) => {
    const vm = (
      await zs.createVmInstance({
        ...base,
        name: 'web',
        systemTags: ['hostname::web-1', `staticIp::${w.l3NetworkUuid}::192.168.201.190`],
        userTags: ['frontend'],
      })
    ).inventory;
    t.equal(vm.vmNics[0].ip, '192.168.201.190', "the NIC has the tag's address");
    const tags = (await zs.querySystemTag({ q: [`resourceUuid=${vm.uuid}`], sort: '+tag' })).inventories!.map((x) => x.tag);
    t.same(tags, ['hostname::web-1', `staticIp::${w.l3NetworkUuid}::192.168.201.190`]);
    t.same(
      (await zs.queryVmInstance({ q: ['__userTag__=frontend'] })).inventories!.map((v) => v.uuid),
      [vm.uuid],
    );
    t.same(
      (await zs.queryVmInstance({ q: ['__systemTag__~=hostname::%'] })).inventories!.map((v) => v.uuid),
      [vm.uuid],
    );
    t.same(
      (await zs.queryVmNic({ q: [`vmInstance.__userTag__=frontend`] })).inventories!.map((n) => n.uuid),
      [vm.vmNics[0].uuid],
      'through an expanded field',
    );
    const entry = (await vrState(s, w.l3NetworkUuid)).dhcpEntries.find((e) => e.ip === '192.168.201.190');
    t.equal(entry?.hostname, 'web-1', "the router's DHCP entry names the guest by its hostname tag");

    const taken = await zs.createVmInstance({ ...base, name: 'x', systemTags: [`staticIp::${w.l3NetworkUuid}::192.168.201.190`] }).catch((e) => e);
    t.equal(taken.code, 'SYS.1006', 'a used address is refused');
    const dup = await zs.createVmInstance({ ...base, name: 'x', systemTags: ['hostname::web-1'] }).catch((e) => e);
    t.equal(dup.code, 'SYS.1007');
    t.match(dup.details, /conflict hostname/);
    for (const bad of [
      'hostname::-bad-',
      'hostname::a_b',
      `staticIp::${w.l3NetworkUuid}::300.1.1.1`,
      `staticIp::${'b'.repeat(32)}::10.0.0.1`,
      'hostname::a',
      'sshkey',
    ]) {
      const tags = bad === 'hostname::a' ? ['hostname::a', 'hostname::b'] : [bad];
      const e = await zs.createVmInstance({ ...base, name: 'x', systemTags: tags }).catch((x) => x);
      t.equal(e.code, 'SYS.1007', `${tags.join(' ')} refused`);
    }
    t.same((await zs.queryVmInstance({ q: ['name=x'] })).inventories, [], 'nothing created by the refused calls');
    t.same((await zs.querySystemTag({ q: ['resourceType=VmInstanceVO', 'tag~=hostname::%'] })).inventories!.length, 1, 'no tag left by them');
  });

  t.test('SetVmHostname, DeleteVmHostname, SetVmStaticIp, DeleteVmStaticIp', async (t) => {
    const vm = (await zs.createVmInstance({ ...base, name: 'app' })).inventory;
    await zs.setVmHostname({ uuid: vm.uuid, hostname: 'app-1' });
    await zs.setVmHostname({ uuid: vm.uuid, hostname: 'app-2' });
    const hostnames = async () => (await zs.querySystemTag({ q: [`resourceUuid=${vm.uuid}`, 'tag~=hostname::%'] })).inventories!.map((x) => x.tag);
    t.same(await hostnames(), ['hostname::app-2'], 'replaced, not added');
    t.equal((await zs.setVmHostname({ uuid: vm.uuid, hostname: 'web-1' }).catch((e) => e)).code, 'SYS.1007', "another VM's hostname on the L3");
    t.equal((await zs.setVmHostname({ uuid: vm.uuid, hostname: 'no spaces' }).catch((e) => e)).code, 'SYS.1007');
    await zs.deleteVmHostname({ uuid: vm.uuid });
    t.same(await hostnames(), []);

    // An address no NIC on the L3 holds (the allocator hands out random ones: a fixed pick could be taken).
    const held = new Set((await zs.queryVmNic({ q: [`l3NetworkUuid=${w.l3NetworkUuid}`] })).inventories!.map((n) => n.ip));
    const target = ['192.168.201.185', '192.168.201.186', '192.168.201.187', '192.168.201.188'].find((ip) => !held.has(ip))!;
    const running = await zs.setVmStaticIp({ vmInstanceUuid: vm.uuid, l3NetworkUuid: w.l3NetworkUuid, ip: target }).catch((e) => e);
    t.equal(running.code, 'VM.1000', 'a running VM keeps its address');
    await zs.stopVmInstance({ uuid: vm.uuid });
    const oldIp = vm.vmNics[0].ip;
    await zs.setVmStaticIp({ vmInstanceUuid: vm.uuid, l3NetworkUuid: w.l3NetworkUuid, ip: target });
    const [nic] = (await zs.queryVmNic({ q: [`vmInstanceUuid=${vm.uuid}`] })).inventories!;
    t.equal(nic.ip, target);
    t.same((await zs.queryIpRange({ q: [`uuid=${w.ipRangeUuid}`] })).inventories!.length, 1);
    const again = (await zs.createVmInstance({ ...base, name: 'reuse', systemTags: [`staticIp::${w.l3NetworkUuid}::${oldIp}`] })).inventory;
    t.equal(again.vmNics[0].ip, oldIp, 'the old address was returned');
    t.same(
      (await zs.querySystemTag({ q: [`resourceUuid=${vm.uuid}`, 'tag~=staticIp::%'] })).inventories!.map((x) => x.tag),
      [`staticIp::${w.l3NetworkUuid}::${target}`],
    );
    t.equal((await zs.setVmStaticIp({ vmInstanceUuid: vm.uuid, l3NetworkUuid: w.l3NetworkUuid, ip: 'nope' }).catch((e) => e)).code, 'SYS.1007');
    t.equal(
      (await zs.setVmStaticIp({ vmInstanceUuid: vm.uuid, l3NetworkUuid: 'c'.repeat(32), ip: '10.0.0.1' }).catch((e) => e)).code,
      'SYS.1007',
      'no NIC there',
    );
    await zs.deleteVmStaticIp({ vmInstanceUuid: vm.uuid, l3NetworkUuid: w.l3NetworkUuid });
    t.same((await zs.querySystemTag({ q: [`resourceUuid=${vm.uuid}`] })).inventories, []);

    // Tags go with the VM when it is expunged.
    await zs.createUserTag({ resourceType: 'VmInstanceVO', resourceUuid: vm.uuid, tag: 'doomed' });
    await zs.destroyVmInstance({ uuid: vm.uuid });
    t.equal((await zs.queryUserTag({ q: ['tag=doomed'] })).inventories!.length, 1, 'a Destroyed VM keeps its tags (it can be recovered)');
    await zs.expungeVmInstance({ uuid: vm.uuid });
    t.same((await zs.queryUserTag({ q: ['tag=doomed'] })).inventories, []);
  });

  t.test('tags through the 1.1 RPC endpoint', async (t) => {
    const cli = new Cli11(s.url);
    await cli.login();
    const z = await cli.call('org.zstack.header.zone.APICreateZoneMsg', { name: 'rpc-tagged', userTags: ['rpc'], systemTags: ['host::reservedCpu::1'] });
    t.equal(z.reply.success, true);
    const q = await cli.call('org.zstack.header.zone.APIQueryZoneMsg', { conditions: [{ name: '__userTag__', op: '=', value: 'rpc' }] });
    t.same(
      q.reply.inventories.map((x: { name: string }) => x.name),
      ['rpc-tagged'],
    );
    const st = await cli.call('org.zstack.header.tag.APIQuerySystemTagMsg', { conditions: [{ name: 'resourceUuid', op: '=', value: z.reply.inventory.uuid }] });
    t.equal(st.cls, 'org.zstack.header.tag.APIQuerySystemTagReply');
    t.match(st.reply.inventories, [{ tag: 'host::reservedCpu::1', resourceType: 'ZoneVO', inherent: false }]);
    const u = await cli.call('org.zstack.header.tag.APICreateUserTagMsg', { resourceType: 'ZoneVO', resourceUuid: z.reply.inventory.uuid, tag: 'more' });
    t.equal(u.cls, 'org.zstack.header.tag.APICreateUserTagEvent');
    t.match(u.reply, { success: true, inventory: { tag: 'more', type: 'User' } });
    const bad = await cli.call('org.zstack.header.zone.APICreateZoneMsg', { name: 'rpc-bad', systemTags: ['unknown'] });
    t.equal(bad.reply.success, false);
    t.equal(bad.reply.error.code, 'SYS.1007');
    const del = await cli.call('org.zstack.header.tag.APIDeleteTagMsg', { uuid: u.reply.inventory.uuid });
    t.equal(del.cls, 'org.zstack.header.tag.APIDeleteTagEvent');
    t.equal(del.reply.success, true);
    const h = await cli.call('org.zstack.header.vm.APISetVmHostnameMsg', {
      uuid: (await zs.queryVmInstance({ q: ['name=web'] })).inventories![0].uuid,
      hostname: 'web-9',
    });
    t.equal(h.cls, 'org.zstack.header.vm.APISetVmHostnameEvent');
    t.equal(h.reply.success, true);
  });
});

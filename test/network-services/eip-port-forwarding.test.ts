// EIPs and port forwarding through the SDK on the simulator: what the guest network's virtual router holds after
// each step (simulator state), upstream 1.1's validation, the service check on the guest network, a router that
// refuses (failCommands) leaving nothing half-applied, a router that lost its state getting it back on reconnect,
// concurrent EIPs on one VIP, and cascades (VIP deleted, VM destroyed).
import t from 'tap';
import { startServer, AGENT_SECRET, type TestServer } from '../lib/harness.js';
import { buildWorld } from '../lib/world.js';
import { ZStackClient, ZStackError } from '../../sdk/src/index.js';
import { handlers } from '../../pulumi-provider/src/runtime/index.js';

async function failure(p: Promise<unknown>): Promise<ZStackError> {
  const e = await p.then(
    () => undefined,
    (x) => x,
  );
  if (!(e instanceof ZStackError)) throw new Error(`expected a ZStackError, got ${e}`);
  return e;
}

async function agent(s: TestServer, path: string, body: object, target?: string): Promise<any> {
  const res = await fetch(s.sim.url + path, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${AGENT_SECRET}`,
      ...(target ? { 'x-zstack-target-uuid': target } : {}),
    },
    body: JSON.stringify(body),
  });
  return res.json();
}

interface RouterNat {
  vips: Array<{ ip: string; ownerEthernetMac: string }>;
  eips: Array<{ vipIp: string; guestIp: string; privateMac: string }>;
  portForwardings: Array<{
    vipIp: string;
    vipPortStart: number;
    vipPortEnd: number;
    privatePortStart: number;
    privateIp: string;
    protocolType: string;
    allowedCidr?: string;
  }>;
}
const routerState = async (s: TestServer, vrUuid: string): Promise<RouterNat> => agent(s, '/simulator/virtualrouter/state', { virtualRouterUuid: vrUuid });

t.test('EIP and port forwarding on the virtual router', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const zs: ZStackClient = s.client;
  const world = await buildWorld(zs, { virtualRouter: false, hosts: 1 });
  const vrProvider = world.virtualRouterProviderUuid;

  // A public network for VIPs (and the routers' management/public NIC); the guest network runs the VR services.
  const l2pub = (await zs.createL2NoVlanNetwork({ name: 'l2-public', zoneUuid: world.zoneUuid, physicalInterface: 'eth1' })).inventory;
  await zs.attachL2NetworkToCluster({ l2NetworkUuid: l2pub.uuid, clusterUuid: world.clusterUuid });
  const pub = (await zs.createL3Network({ name: 'public', l2NetworkUuid: l2pub.uuid, category: 'Public' } as never)).inventory;
  await zs.addIpRange({ l3NetworkUuid: pub.uuid, name: 'pub', startIp: '172.20.0.10', endIp: '172.20.0.40', netmask: '255.255.255.0', gateway: '172.20.0.1' });
  const guest = world.l3NetworkUuid;
  await zs.attachNetworkServiceToL3Network({ l3NetworkUuid: guest, networkServices: { [vrProvider]: ['DHCP', 'DNS', 'SNAT', 'Eip', 'PortForwarding'] } });
  await zs.createVirtualRouterOffering({
    name: 'vr',
    cpuNum: 1,
    memorySize: 256 * 2 ** 20,
    zoneUuid: world.zoneUuid,
    managementNetworkUuid: pub.uuid,
    publicNetworkUuid: pub.uuid,
    imageUuid: world.imageUuid,
    isDefault: true,
  });
  // A second guest network without the services.
  const plain = (await zs.createL3Network({ name: 'plain', l2NetworkUuid: world.l2NetworkUuid })).inventory;
  await zs.addIpRange({ l3NetworkUuid: plain.uuid, name: 'p', startIp: '10.9.0.10', endIp: '10.9.0.20', netmask: '255.255.255.0', gateway: '10.9.0.1' });

  const newVm = async (name: string, l3s: string[]) =>
    (
      await zs.createVmInstance({
        name,
        instanceOfferingUuid: world.instanceOfferingUuid,
        imageUuid: world.imageUuid,
        l3NetworkUuids: l3s,
        defaultL3NetworkUuid: l3s[0],
      })
    ).inventory;
  const vm = await newVm('web', [guest, plain.uuid]);
  const nic = vm.vmNics.find((n) => n.l3NetworkUuid === guest)!;
  const plainNic = vm.vmNics.find((n) => n.l3NetworkUuid === plain.uuid)!;
  const vr = (await zs.queryVirtualRouterVm({})).inventories![0];
  const vrPublicMac = vr.vmNics.find((n) => n.l3NetworkUuid === pub.uuid)!.mac;
  const vrGuestMac = vr.vmNics.find((n) => n.l3NetworkUuid === guest)!.mac;

  t.test('an EIP attached while its VM is stopped is applied at the start (no EIP existed at the first start)', async (t) => {
    // The VM's first start looked for EIPs while none existed (a remembered "no rows" answer, app.anyRows): the
    // EIP created since must be seen at the next start.
    const other = await newVm('stopped-then-eip', [guest]);
    const otherNic = other.vmNics[0];
    await zs.stopVmInstance({ uuid: other.uuid });
    const vip = (await zs.createVip({ name: 'vip-late', l3NetworkUuid: pub.uuid })).inventory;
    const eip = (await zs.createEip({ name: 'eip-late', vipUuid: vip.uuid, vmNicUuid: otherNic.uuid })).inventory;
    t.equal(eip.vmNicUuid, otherNic.uuid);
    t.same((await routerState(s, vr.uuid)).eips, [], 'not applied while the VM is stopped');
    await zs.startVmInstance({ uuid: other.uuid });
    t.match((await routerState(s, vr.uuid)).eips, [{ vipIp: vip.ip, guestIp: otherNic.ip }], 'applied when the VM started');
    await zs.deleteEip({ uuid: eip.uuid });
    await zs.deleteVip({ uuid: vip.uuid });
    await zs.destroyVmInstance({ uuid: other.uuid });
    t.same((await routerState(s, vr.uuid)).eips, [], 'gone with the EIP');
  });

  t.test('EIP lifecycle, what the router holds, validation', async (t) => {
    const vip = (await zs.createVip({ name: 'vip-eip', l3NetworkUuid: pub.uuid })).inventory;
    const eip = (await zs.createEip({ name: 'eip', vipUuid: vip.uuid })).inventory;
    t.match(eip, { name: 'eip', vipUuid: vip.uuid, vipIp: vip.ip, state: 'Enabled' });
    t.notOk(eip.vmNicUuid);
    t.match((await zs.queryVip({ q: [`uuid=${vip.uuid}`] })).inventories![0], { useFor: 'Eip', serviceProvider: 'VirtualRouter' });
    t.same((await routerState(s, vr.uuid)).eips, [], 'nothing applied before attaching');

    let e = await failure(zs.createEip({ name: 'again', vipUuid: vip.uuid }));
    t.match([e.code, e.details], ['SYS.1006', /occupied/], 'one EIP per VIP');
    e = await failure(zs.createPortForwardingRule({ name: 'pf', vipUuid: vip.uuid, vipPortStart: 80, protocolType: 'TCP' }));
    t.match([e.code, e.details], ['SYS.1006', /occupied other network service entity\[Eip\]/], 'a VIP serves one service');
    e = await failure(zs.attachEip({ eipUuid: eip.uuid, vmNicUuid: plainNic.uuid }));
    t.match([e.code, e.details], ['SYS.1006', /does not run the Eip network service/], 'the guest network must run Eip');

    const candidates = (await zs.getEipAttachableVmNics({ eipUuid: eip.uuid })).inventories!.map((n) => n.uuid);
    t.same(candidates, [nic.uuid], 'attachable: NICs on networks running Eip');

    const attached = (await zs.attachEip({ eipUuid: eip.uuid, vmNicUuid: nic.uuid })).inventory;
    t.match(attached, { vmNicUuid: nic.uuid, guestIp: nic.ip });
    let nat = await routerState(s, vr.uuid);
    t.match(nat.vips, [{ ip: vip.ip, ownerEthernetMac: vrPublicMac }], 'the VIP on the public NIC');
    t.match(nat.eips, [{ vipIp: vip.ip, guestIp: nic.ip, privateMac: vrGuestMac }], 'the EIP on the router');
    t.match((await zs.queryVip({ q: [`uuid=${vip.uuid}`] })).inventories![0], { peerL3NetworkUuid: guest });
    t.same(
      (await zs.queryEip({ q: [`vmNic.vmInstanceUuid=${vm.uuid}`] })).inventories!.map((x) => x.uuid),
      [eip.uuid],
      'query by vmNic',
    );
    t.same(
      (await zs.queryEip({ q: [`vip.ip=${vip.ip}`] })).inventories!.map((x) => x.uuid),
      [eip.uuid],
      'query by vip',
    );

    e = await failure(zs.attachEip({ eipUuid: eip.uuid, vmNicUuid: nic.uuid }));
    t.match([e.code, e.details], ['SYS.1006', /can't attach again/]);
    const vip2 = (await zs.createVip({ name: 'vip2', l3NetworkUuid: pub.uuid })).inventory;
    e = await failure(zs.createEip({ name: 'e2', vipUuid: vip2.uuid, vmNicUuid: nic.uuid }));
    t.match([e.code, e.details], ['SYS.1006', /has attached to another eip/], 'one EIP per NIC');
    t.equal((await zs.queryEip({ q: [`vipUuid=${vip2.uuid}`], count: true } as never)).total, 0, 'the refused EIP was not created');

    // Detach: gone from the router; a router refusing the attach leaves nothing attached and nothing applied.
    t.notOk((await zs.detachEip({ uuid: eip.uuid })).inventory.vmNicUuid);
    nat = await routerState(s, vr.uuid);
    t.same([nat.eips, nat.vips], [[], []], 'detached: nothing on the router');
    await agent(s, '/simulator/virtualrouter/config', { virtualRouterUuid: vr.uuid, failCommands: ['/virtualrouter/createeip'] });
    e = await failure(zs.attachEip({ eipUuid: eip.uuid, vmNicUuid: nic.uuid }));
    t.ok(e.details, 'the router refused');
    await agent(s, '/simulator/virtualrouter/config', { virtualRouterUuid: vr.uuid, failCommands: [] });
    t.notOk((await zs.queryEip({ q: [`uuid=${eip.uuid}`] })).inventories![0].vmNicUuid, 'not attached');
    nat = await routerState(s, vr.uuid);
    t.same([nat.eips, nat.vips], [[], []], 'rolled back: the VIP left the router too');
    t.notOk((await zs.queryVip({ q: [`uuid=${vip.uuid}`] })).inventories![0].peerL3NetworkUuid, 'the VIP serves no network');

    t.equal((await zs.changeEipState({ uuid: eip.uuid, stateEvent: 'disable' })).inventory.state, 'Disabled');
    e = await failure(zs.attachEip({ eipUuid: eip.uuid, vmNicUuid: nic.uuid }));
    t.match([e.code, e.details], ['SYS.1006', /only be attached when state is Enabled/]);
    await zs.changeEipState({ uuid: eip.uuid, stateEvent: 'enable' });
    t.equal((await zs.updateEip({ uuid: eip.uuid, name: 'eip-web' })).inventory.name, 'eip-web');

    // Created attached; a router that lost its state gets it back when it reconnects.
    await zs.deleteEip({ uuid: eip.uuid });
    t.notOk((await zs.queryVip({ q: [`uuid=${vip.uuid}`] })).inventories![0].useFor, 'deleting the EIP frees the VIP');
    const eip2 = (await zs.createEip({ name: 'eip2', vipUuid: vip.uuid, vmNicUuid: nic.uuid })).inventory;
    t.equal(eip2.vmNicUuid, nic.uuid);
    await agent(s, '/virtualrouter/synceip', { eips: [] }, vr.uuid);
    t.same((await routerState(s, vr.uuid)).eips, [], 'the router forgot');
    await zs.reconnectVirtualRouter({ vmInstanceUuid: vr.uuid });
    t.match((await routerState(s, vr.uuid)).eips, [{ vipIp: vip.ip, guestIp: nic.ip }], 'reconnect re-applied it');

    // Deleting the VIP deletes its EIP and takes it off the router.
    await zs.deleteVip({ uuid: vip.uuid });
    t.equal((await zs.queryEip({ q: [`uuid=${eip2.uuid}`], count: true } as never)).total, 0, 'EIP deleted with its VIP');
    nat = await routerState(s, vr.uuid);
    t.same([nat.eips, nat.vips], [[], []], 'nothing left on the router');

    // 20 EIPs at once on one VIP: exactly one.
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => zs.createEip({ name: `c${i}`, vipUuid: vip2.uuid })));
    t.equal(results.filter((r) => r.status === 'fulfilled').length, 1, 'one EIP won the VIP');
    t.ok(
      results.every((r) => r.status === 'fulfilled' || (r.reason instanceof ZStackError && r.reason.code === 'SYS.1006')),
      'the others were refused cleanly',
    );
    await zs.deleteVip({ uuid: vip2.uuid });
  });

  t.test('Pulumi Vip and Eip resources (the provider runtime)', async (t) => {
    const ctx = { zs: async () => zs };
    const { Vip, Eip } = handlers;
    t.match(Vip.check({}, { name: 'v', l3NetworkUuid: 'x' }).failures, [{ property: 'l3NetworkUuid' }], 'check: uuid');
    t.match(Vip.check({}, { name: 'v', l3NetworkUuid: pub.uuid, requiredIp: '1.2.3' }).failures, [{ property: 'requiredIp' }], 'check: IPv4');
    // An address nothing holds yet (the router's and the earlier VIPs' addresses are allocated at random).
    const free = (await zs.getFreeIp({ l3NetworkUuid: pub.uuid, limit: 1 })).inventories[0].ip;
    const base = { name: 'pv', l3NetworkUuid: pub.uuid, requiredIp: free };
    t.same(Vip.diff('id', base, { ...base, requiredIp: '172.20.0.250' }).replaces, ['requiredIp'], 'a new address replaces');
    t.same(Vip.diff('id', base, { ...base, name: 'pv2' }).replaces ?? [], [], 'a name updates in place');
    const v = await Vip.create(ctx, Vip.check({}, base).inputs!);
    t.match(v.outs, { ip: free, state: 'Enabled' });
    t.equal((await Vip.update(ctx, v.id, v.outs, { ...base, name: 'pv2', state: 'Disabled' })).outs.state, 'Disabled');
    await Vip.update(ctx, v.id, v.outs, { ...base, name: 'pv2', state: 'Enabled' });
    t.match((await Vip.read(ctx, v.id, v.outs)).props, { name: 'pv2', ip: free }, 'read');

    t.same(Eip.diff('id', { name: 'e', vipUuid: v.id }, { name: 'e', vipUuid: v.id, vmNicUuid: nic.uuid }).replaces ?? [], [], 'attaching is in place');
    const e = await Eip.create(ctx, { name: 'pe', vipUuid: v.id });
    t.notOk(e.outs.vmNicUuid);
    const attached = await Eip.update(ctx, e.id, e.outs, { name: 'pe', vipUuid: v.id, vmNicUuid: nic.uuid });
    t.match(attached.outs, { vmNicUuid: nic.uuid, guestIp: nic.ip });
    t.match((await routerState(s, vr.uuid)).eips, [{ vipIp: free }], 'applied on the router');
    t.notOk((await Eip.update(ctx, e.id, attached.outs, { name: 'pe', vipUuid: v.id })).outs.vmNicUuid, 'detached in place');
    await Eip.delete(ctx, e.id, {});
    await Vip.delete(ctx, v.id, {});
    t.equal((await Vip.read(ctx, v.id, {})).id, '', 'gone');
  });

  t.test('port forwarding: validation, rules on the router, rollback, cascade', async (t) => {
    const vip = (await zs.createVip({ name: 'vip-pf', l3NetworkUuid: pub.uuid })).inventory;
    const create = (extra: Record<string, unknown>) => zs.createPortForwardingRule({ name: 'r', vipUuid: vip.uuid, protocolType: 'TCP', ...extra } as never);
    const ssh = (await create({ name: 'ssh', vipPortStart: 2222, privatePortStart: 22, allowedCidr: '10.0.0.0/8' })).inventory;
    t.match(ssh, {
      vipPortStart: 2222,
      vipPortEnd: 2222,
      privatePortStart: 22,
      privatePortEnd: 22,
      protocolType: 'TCP',
      state: 'Enabled',
      allowedCidr: '10.0.0.0/8',
    });
    const web = (await create({ name: 'web', vipPortStart: 8090, vipPortEnd: 8080, privatePortStart: 80 })).inventory;
    t.match(web, { vipPortStart: 8080, vipPortEnd: 8090, privatePortStart: 80, privatePortEnd: 90 }, 'reversed range swapped, private end derived');
    t.ok((await create({ name: 'dns', vipPortStart: 8085, protocolType: 'UDP' })).inventory, 'another protocol may overlap');
    t.match((await zs.queryVip({ q: [`uuid=${vip.uuid}`] })).inventories![0], { useFor: 'PortForwarding' });

    let e = await failure(create({ vipPortStart: 8085 }));
    t.match([e.code, e.details], ['SYS.1007', /overlaps with rule\[uuid:/]);
    e = await failure(create({ vipPortStart: 100, vipPortEnd: 110, privatePortStart: 100, privatePortEnd: 105 }));
    t.match([e.code, e.details], ['SYS.1007', /port range size must match/]);
    e = await failure(create({ vipPortStart: 100, allowedCidr: '10.0.0.0/40' }));
    t.match([e.code, e.details], ['SYS.1007', /invalid CIDR/]);
    for (const bad of [{ vipPortStart: 0 }, { vipPortStart: 65536 }, { vipPortStart: 100, protocolType: 'ICMP' }]) {
      e = await failure(create(bad));
      t.equal(e.code, 'SYS.1007', `refused: ${JSON.stringify(bad)}`);
    }
    e = await failure(zs.createEip({ name: 'e', vipUuid: vip.uuid }));
    t.match([e.code, e.details], ['SYS.1006', /occupied other network service entity\[PortForwarding\]/]);
    e = await failure(zs.attachPortForwardingRule({ ruleUuid: ssh.uuid, vmNicUuid: plainNic.uuid }));
    t.match([e.code, e.details], ['SYS.1006', /does not run the PortForwarding network service/]);
    const onPub = await newVm('on-public', [pub.uuid]);
    e = await failure(zs.attachPortForwardingRule({ ruleUuid: ssh.uuid, vmNicUuid: onPub.vmNics[0].uuid }));
    t.match([e.code, e.details], ['SYS.1007', /are the same network/]);

    t.same(
      (await zs.getPortForwardingAttachableVmNics({ ruleUuid: ssh.uuid })).inventories!.map((n) => n.uuid),
      [nic.uuid],
    );
    await zs.attachPortForwardingRule({ ruleUuid: ssh.uuid, vmNicUuid: nic.uuid });
    await zs.attachPortForwardingRule({ ruleUuid: web.uuid, vmNicUuid: nic.uuid });
    let nat = await routerState(s, vr.uuid);
    t.match(nat.vips, [{ ip: vip.ip, ownerEthernetMac: vrPublicMac }]);
    t.same(
      nat.portForwardings
        .map((r) => `${r.protocolType} ${r.vipIp}:${r.vipPortStart}-${r.vipPortEnd} -> ${r.privateIp}:${r.privatePortStart} ${r.allowedCidr ?? ''}`)
        .sort(),
      [`TCP ${vip.ip}:2222-2222 -> ${nic.ip}:22 10.0.0.0/8`, `TCP ${vip.ip}:8080-8090 -> ${nic.ip}:80 `],
      'both rules on the router',
    );
    t.same(
      (await zs.queryPortForwardingRule({ q: [`vmNicUuid=${nic.uuid}`, 'vipPortStart=2222'] })).inventories!.map((r) => r.uuid),
      [ssh.uuid],
    );

    t.same(
      (await zs.listPortForwardingRule({ uuids: [ssh.uuid] })).inventories!.map((r: { uuid: string }) => r.uuid),
      [ssh.uuid],
      '1.1 List form',
    );

    // The router refuses a third: nothing attached, the two others untouched.
    const dns = (await zs.queryPortForwardingRule({ q: ['name=dns'] })).inventories![0];
    await agent(s, '/simulator/virtualrouter/config', { virtualRouterUuid: vr.uuid, failCommands: ['/virtualrouter/createportforwarding'] });
    e = await failure(zs.attachPortForwardingRule({ ruleUuid: dns.uuid, vmNicUuid: nic.uuid }));
    await agent(s, '/simulator/virtualrouter/config', { virtualRouterUuid: vr.uuid, failCommands: [] });
    t.notOk((await zs.queryPortForwardingRule({ q: [`uuid=${dns.uuid}`] })).inventories![0].vmNicUuid, 'rolled back');
    nat = await routerState(s, vr.uuid);
    t.equal(nat.portForwardings.length, 2, 'the others stay');
    t.equal(nat.vips.length, 1, 'the VIP stays for them');

    // Detach one: the VIP stays for the other; detach the last: the VIP leaves the router.
    await zs.detachPortForwardingRule({ uuid: web.uuid });
    nat = await routerState(s, vr.uuid);
    t.same([nat.portForwardings.length, nat.vips.length], [1, 1]);
    await zs.changePortForwardingRuleState({ uuid: web.uuid, stateEvent: 'disable' });
    e = await failure(zs.attachPortForwardingRule({ ruleUuid: web.uuid, vmNicUuid: nic.uuid }));
    t.match([e.code, e.details], ['SYS.1006', /not in state of Enabled/]);
    t.equal((await zs.updatePortForwardingRule({ uuid: web.uuid, name: 'web2' })).inventory.name, 'web2');

    // The VM is destroyed: its rules leave the router; deleted rules free the VIP when the last goes.
    await zs.destroyVmInstance({ uuid: vm.uuid });
    nat = await routerState(s, vr.uuid);
    t.same([nat.portForwardings, nat.vips], [[], []], 'destroyed VM: its rules revoked');
    for (const r of (await zs.queryPortForwardingRule({ q: [`vipUuid=${vip.uuid}`] })).inventories!) await zs.deletePortForwardingRule({ uuid: r.uuid });
    t.notOk((await zs.queryVip({ q: [`uuid=${vip.uuid}`] })).inventories![0].useFor, 'the VIP is free after its last rule');
    await zs.deletePortForwardingRule({ uuid: 'c'.repeat(32) });
  });
});

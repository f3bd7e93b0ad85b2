// Load balancers through the SDK on the simulator (one server, one world): lifecycle, 1.1's validation (VIP in use,
// ports, protocol, option tags, backends' network and service), what the guest network's virtual router holds after
// each step (simulator state: the listeners with their backends and haproxy configuration, the VIP), a router that
// refuses /lb/refresh leaving nothing half-applied, backends following their VM (stopped → not balanced, destroyed
// → gone), and cascades (listener, load balancer, VIP deleted).
import t from 'tap';
import { startServer, AGENT_SECRET, type TestServer } from '../lib/harness.js';
import { buildWorld } from '../lib/world.js';
import { until } from '../lib/wait.js';
import { ZStackClient, ZStackError } from '../../sdk/src/index.js';

const UNKNOWN = 'ffffffffffffffffffffffffffffffff';

async function failure(p: Promise<unknown>): Promise<ZStackError> {
  const e = await p.then(
    () => undefined,
    (x) => x,
  );
  if (!(e instanceof ZStackError)) throw new Error(`expected a ZStackError, got ${e}`);
  return e;
}

async function agent(s: TestServer, path: string, body: object): Promise<any> {
  const res = await fetch(s.sim.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${AGENT_SECRET}` },
    body: JSON.stringify(body),
  });
  return res.json();
}

interface AppliedListener {
  listenerUuid: string;
  vip: string;
  nicIps: string[];
  loadBalancerPort: number;
  instancePort: number;
  mode: string;
  parameters: string[];
  haproxyConfig: string;
}
interface RouterState {
  vips: Array<{ ip: string }>;
  loadBalancers: AppliedListener[];
}
const routerState = async (s: TestServer, vrUuid: string): Promise<RouterState> => agent(s, '/simulator/virtualrouter/state', { virtualRouterUuid: vrUuid });

t.test('load balancers on the virtual router', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const zs: ZStackClient = s.client;
  const world = await buildWorld(zs, { virtualRouter: false, hosts: 1 });
  const vrProvider = world.virtualRouterProviderUuid;

  // A public network for VIPs (the routers' management/public NIC); the guest network runs the VR services.
  const l2pub = (await zs.createL2NoVlanNetwork({ name: 'l2-public', zoneUuid: world.zoneUuid, physicalInterface: 'eth1' })).inventory;
  await zs.attachL2NetworkToCluster({ l2NetworkUuid: l2pub.uuid, clusterUuid: world.clusterUuid });
  const pub = (await zs.createL3Network({ name: 'public', l2NetworkUuid: l2pub.uuid, category: 'Public' } as never)).inventory;
  await zs.addIpRange({ l3NetworkUuid: pub.uuid, name: 'pub', startIp: '172.20.0.10', endIp: '172.20.0.40', netmask: '255.255.255.0', gateway: '172.20.0.1' });
  const guest = world.l3NetworkUuid;
  await zs.attachNetworkServiceToL3Network({ l3NetworkUuid: guest, networkServices: { [vrProvider]: ['DHCP', 'DNS', 'LoadBalancer'] } });
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
  // A second guest network without the LoadBalancer service.
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
  const web1 = await newVm('web1', [guest, plain.uuid]);
  const web2 = await newVm('web2', [guest]);
  const nic1 = web1.vmNics.find((n) => n.l3NetworkUuid === guest)!;
  const plainNic = web1.vmNics.find((n) => n.l3NetworkUuid === plain.uuid)!;
  const nic2 = web2.vmNics[0];
  const vr = (await zs.queryVirtualRouterVm({})).inventories![0];

  // ---- create, validation
  const vip = (await zs.createVip({ name: 'vip-lb', l3NetworkUuid: pub.uuid })).inventory;
  const lb = (await zs.createLoadBalancer({ name: 'lb', description: 'web', vipUuid: vip.uuid })).inventory;
  t.match(lb, { name: 'lb', description: 'web', vipUuid: vip.uuid, state: 'Enabled', listeners: [] });
  t.match((await zs.queryVip({ q: [`uuid=${vip.uuid}`] })).inventories![0], { useFor: 'LoadBalancer' }, 'the VIP is taken for the service');
  let e = await failure(zs.createLoadBalancer({ name: 'again', vipUuid: vip.uuid }));
  t.match([e.code, e.details], ['SYS.1007', new RegExp(`occupied by another load balancer\\[uuid:${lb.uuid}\\]`)]);
  e = await failure(zs.createLoadBalancer({ name: 'x', vipUuid: UNKNOWN }));
  t.match([e.code, e.details], ['SYS.1003', /VipVO/]);

  const listener = (
    await zs.createLoadBalancerListener({
      loadBalancerUuid: lb.uuid,
      name: 'http',
      loadBalancerPort: 80,
      instancePort: 8080,
      protocol: 'http',
      systemTags: ['balancerAlgorithm::leastconn', 'healthCheckTarget::tcp:8081'],
    } as never)
  ).inventory;
  t.match(listener, { loadBalancerUuid: lb.uuid, loadBalancerPort: 80, instancePort: 8080, protocol: 'http', vmNicRefs: [] });
  const tags = (await zs.querySystemTag({ q: [`resourceUuid=${listener.uuid}`] })).inventories!.map((x) => x.tag).sort();
  t.same(
    tags,
    [
      'balancerAlgorithm::leastconn',
      'connectionIdleTimeout::60',
      'healthCheckInterval::5',
      'healthCheckTarget::tcp:8081',
      'healthCheckTimeout::2',
      'healthyThreshold::2',
      'maxConnection::5000',
      'unhealthyThreshold::2',
    ],
    "the listener's options: the given tags, the other ones from their global configs",
  );
  const listen = (fields: Record<string, unknown>) => zs.createLoadBalancerListener({ loadBalancerUuid: lb.uuid, name: 'l', ...fields } as never);
  e = await failure(listen({ loadBalancerPort: 80, instancePort: 9000 }));
  t.match([e.code, e.details], ['SYS.1007', /conflict loadBalancerPort\[80\]/]);
  e = await failure(listen({ loadBalancerPort: 8080 }));
  t.match([e.code, e.details], ['SYS.1007', /conflict instancePort\[8080\]/], 'instancePort defaults to loadBalancerPort');
  e = await failure(listen({ loadBalancerPort: 81, protocol: 'udp' }));
  t.match([e.code, e.details], ['SYS.1007', /protocol/]);
  e = await failure(listen({ loadBalancerPort: 0 }));
  t.match([e.code, e.details], ['SYS.1007', /loadBalancerPort/]);
  e = await failure(listen({ loadBalancerPort: 81, systemTags: ['balancerAlgorithm::random'] }));
  t.match([e.code, e.details], ['SYS.1007', /invalid balance algorithm\[random\]/]);
  e = await failure(listen({ loadBalancerPort: 81, systemTags: ['healthCheckTarget::http:80'] }));
  t.match([e.code, e.details], ['SYS.1007', /the target checking protocol\[http\] is invalid/]);
  e = await failure(listen({ loadBalancerPort: 81, systemTags: ['maxConnection::many'] }));
  t.match([e.code, e.details], ['SYS.1007', /invalid max connection/]);
  e = await failure(zs.createLoadBalancerListener({ loadBalancerUuid: UNKNOWN, name: 'l', loadBalancerPort: 81 }));
  t.match([e.code, e.details], ['SYS.1003', /LoadBalancerVO/]);

  // ---- backends: validation, then applied on the router
  e = await failure(zs.addVmNicToLoadBalancer({ listenerUuid: listener.uuid, vmNicUuids: [plainNic.uuid] }));
  t.match([e.code, e.details], ['SYS.1006', /does not run the LoadBalancer network service/]);
  e = await failure(zs.addVmNicToLoadBalancer({ listenerUuid: listener.uuid, vmNicUuids: [nic1.uuid, plainNic.uuid] }));
  t.match([e.code, e.details], ['SYS.1007', /not on the same L3 network/]);
  e = await failure(zs.addVmNicToLoadBalancer({ listenerUuid: listener.uuid, vmNicUuids: [UNKNOWN] }));
  t.match([e.code, e.details], ['SYS.1003', /VmNicVO/]);
  e = await failure(zs.addVmNicToLoadBalancer({ listenerUuid: listener.uuid, vmNicUuids: [] }));
  t.match([e.code, e.details], ['SYS.1007', /vmNicUuids/]);
  t.same((await routerState(s, vr.uuid)).loadBalancers, [], 'nothing on the router before a backend');

  const added = (await zs.addVmNicToLoadBalancer({ listenerUuid: listener.uuid, vmNicUuids: [nic1.uuid, nic2.uuid] })).inventory;
  t.same(
    added.vmNicRefs.map((r) => [r.vmNicUuid, r.status]),
    [
      [nic1.uuid, 'Active'],
      [nic2.uuid, 'Active'],
    ],
  );
  let state = await routerState(s, vr.uuid);
  t.ok(
    state.vips.some((v) => v.ip === vip.ip),
    'the VIP is on the router',
  );
  t.equal(state.loadBalancers.length, 1);
  const applied = state.loadBalancers[0];
  t.match(applied, { listenerUuid: listener.uuid, vip: vip.ip, loadBalancerPort: 80, instancePort: 8080, mode: 'http' });
  t.same(applied.nicIps.sort(), [nic1.ip, nic2.ip].sort());
  t.match(applied.haproxyConfig, /balance leastconn/);
  t.match(applied.haproxyConfig, new RegExp(`bind ${vip.ip.replace(/\./g, '\\.')}:80`));
  t.match(applied.haproxyConfig, new RegExp(`server nic-${nic1.ip} ${nic1.ip}:8080 check port 8081 inter 5s rise 2 fall 2`));
  t.match((await zs.queryVip({ q: [`uuid=${vip.uuid}`] })).inventories![0], { peerL3NetworkUuid: guest }, 'the VIP serves the guest network');
  e = await failure(zs.addVmNicToLoadBalancer({ listenerUuid: listener.uuid, vmNicUuids: [nic1.uuid] }));
  t.match([e.code, e.details], ['SYS.1006', /already on the load balancer listener/]);

  // queries with joins
  t.same(
    (await zs.queryLoadBalancer({ q: [`vip.ip=${vip.ip}`] })).inventories!.map((x) => x.uuid),
    [lb.uuid],
  );
  t.same(
    (await zs.queryLoadBalancer({ q: ['listeners.loadBalancerPort=80'] })).inventories!.map((x) => x.uuid),
    [lb.uuid],
  );
  t.same(
    (await zs.queryLoadBalancerListener({ q: [`vmNic.ip=${nic2.ip}`] })).inventories!.map((x) => x.uuid),
    [listener.uuid],
  );
  t.equal((await zs.queryLoadBalancerListener({ q: [`loadBalancer.name=lb`], count: true })).total, 1);

  // ---- a router refusing /lb/refresh: nothing half-applied
  const https = (await zs.createLoadBalancerListener({ loadBalancerUuid: lb.uuid, name: 'tcp', loadBalancerPort: 443 })).inventory;
  await agent(s, '/simulator/virtualrouter/config', { virtualRouterUuid: vr.uuid, failCommands: ['/lb/refresh'] });
  e = await failure(zs.addVmNicToLoadBalancer({ listenerUuid: https.uuid, vmNicUuids: [nic1.uuid] }));
  t.ok(e.code, `the router refused: ${e.code}`);
  await agent(s, '/simulator/virtualrouter/config', { virtualRouterUuid: vr.uuid, failCommands: [] });
  t.same((await zs.queryLoadBalancerListener({ q: [`uuid=${https.uuid}`] })).inventories![0].vmNicRefs, [], 'rolled back: no backend recorded');
  t.same(
    (await routerState(s, vr.uuid)).loadBalancers.map((l) => l.listenerUuid),
    [listener.uuid],
    'the router holds what it held',
  );

  // ---- refresh
  await agent(s, '/simulator/virtualrouter/records', { virtualRouterUuid: vr.uuid, clear: true });
  t.equal((await zs.refreshLoadBalancer({ uuid: lb.uuid })).inventory.uuid, lb.uuid);
  const records = (await agent(s, '/simulator/virtualrouter/records', { virtualRouterUuid: vr.uuid })).records as Array<{ path: string; body: any }>;
  const refresh = records.find((r) => r.path === '/lb/refresh');
  t.same(
    refresh?.body.lbs.map((l: { listenerUuid: string; nicIps: string[] }) => [l.listenerUuid, l.nicIps.length]),
    [
      [listener.uuid, 2],
      [https.uuid, 0],
    ],
    'RefreshLoadBalancer sends every listener',
  );

  // ---- backends follow their VM
  const balanced = async () => (await routerState(s, vr.uuid)).loadBalancers.find((l) => l.listenerUuid === listener.uuid)?.nicIps.sort() ?? [];
  await zs.stopVmInstance({ uuid: web2.uuid });
  await until('the stopped VM leaves the balancing', async () => (await balanced()).length === 1);
  t.same(await balanced(), [nic1.ip]);
  t.match((await zs.queryLoadBalancerListener({ q: [`uuid=${listener.uuid}`] })).inventories![0].vmNicRefs, [{ status: 'Active' }, { status: 'Inactive' }]);
  await zs.startVmInstance({ uuid: web2.uuid });
  await until('the started VM is balanced to again', async () => (await balanced()).length === 2);

  const removed = (await zs.removeVmNicFromLoadBalancer({ listenerUuid: listener.uuid, vmNicUuids: [nic1.uuid] })).inventory;
  t.same(
    removed.listeners.find((l) => l.uuid === listener.uuid)!.vmNicRefs.map((r) => r.vmNicUuid),
    [nic2.uuid],
  );
  t.same(await balanced(), [nic2.ip], 'RemoveVmNicFromLoadBalancer: the router balances to the others');
  await zs.removeVmNicFromLoadBalancer({ listenerUuid: listener.uuid, vmNicUuids: [nic1.uuid] });

  // a destroyed VM's NIC leaves the load balancer; the listener without backends leaves the router
  await zs.destroyVmInstance({ uuid: web2.uuid });
  t.same((await zs.queryLoadBalancerListener({ q: [`uuid=${listener.uuid}`] })).inventories![0].vmNicRefs, [], 'the NIC left the listener');
  t.same((await routerState(s, vr.uuid)).loadBalancers, [], 'no backend left: nothing on the router');

  // ---- deleting: listener, then the VIP takes the load balancer with it
  await zs.addVmNicToLoadBalancer({ listenerUuid: https.uuid, vmNicUuids: [nic1.uuid] });
  await zs.addVmNicToLoadBalancer({ listenerUuid: listener.uuid, vmNicUuids: [nic1.uuid] });
  t.equal((await routerState(s, vr.uuid)).loadBalancers.length, 2);
  const afterDelete = (await zs.deleteLoadBalancerListener({ uuid: https.uuid })).inventory;
  t.same(
    afterDelete.listeners.map((l) => l.uuid),
    [listener.uuid],
  );
  t.same(
    (await routerState(s, vr.uuid)).loadBalancers.map((l) => l.listenerUuid),
    [listener.uuid],
    'the deleted listener left the router',
  );
  t.equal((await zs.querySystemTag({ q: [`resourceUuid=${https.uuid}`], count: true })).total, 0, "the listener's tags went with it");

  await zs.deleteVip({ uuid: vip.uuid });
  t.same((await zs.queryLoadBalancer({})).inventories, [], 'deleting the VIP deleted the load balancer');
  t.equal((await zs.queryLoadBalancerListener({ count: true })).total, 0);
  state = await routerState(s, vr.uuid);
  t.same(state.loadBalancers, [], 'its listeners left the router');
  t.notOk(
    state.vips.some((v) => v.ip === vip.ip),
    'and its VIP',
  );

  // DeleteLoadBalancer gives the VIP back
  const vip2 = (await zs.createVip({ name: 'vip2', l3NetworkUuid: pub.uuid })).inventory;
  const lb2 = (await zs.createLoadBalancer({ name: 'lb2', vipUuid: vip2.uuid })).inventory;
  await zs.deleteLoadBalancer({ uuid: lb2.uuid });
  const race = await Promise.allSettled([1, 2].map((i) => zs.createLoadBalancer({ name: `race${i}`, vipUuid: vip2.uuid })));
  t.equal(race.filter((r) => r.status === 'fulfilled').length, 1, 'two concurrent creations on one VIP: one wins');
  const lost = race.find((r) => r.status === 'rejected') as PromiseRejectedResult;
  t.match([lost.reason.code, lost.reason.details], ['SYS.1007', /occupied by another load balancer/]);
  await zs.deleteLoadBalancer({
    uuid: (race.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<{ inventory: { uuid: string } }>).value.inventory.uuid,
  });
  t.notOk((await zs.queryVip({ q: [`uuid=${vip2.uuid}`] })).inventories![0].useFor, 'the VIP is free again');
  await zs.deleteLoadBalancer({ uuid: lb2.uuid });
  t.pass('deleting a deleted load balancer succeeds');
});

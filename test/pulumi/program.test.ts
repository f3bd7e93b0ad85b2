// Program level: examples/pulumi-flat-network, unchanged, run through @pulumi/pulumi's language runtime (cmd/run, with
// the project's nodeargs) against the test engine (lib/mini-engine.ts), which sends its dynamic resources to the real
// plugin. The seed's §9 world first (an L3 network with the virtual router's DHCP and DNS), then: preview (nothing
// changes), up (the L3 moves to Flat DHCP+Userdata, no virtual router services left; a new flat network is created),
// up again (no changes), drift (DHCP detached by hand → refresh sees it → up repairs it), a change of services (update
// in place), destroy (everything goes but the adopted L3, retained).
import t from 'tap';
import { startServer } from '../lib/harness.js';
import { MiniEngine, summarize, type RunResult } from './lib/mini-engine.js';
import { EXAMPLE_DIR, UNKNOWN } from './lib/wire.js';

const ALL = ['existing-l3', 'existing-l3-flat', 'flat-l2', 'flat-l3', 'flat-l3-flat', 'flat-on-existing-l2', 'flat-on-new-l2', 'flat-range'];

function ok(t: { ok(v: unknown, m: string): void; comment(m: string): void }, r: RunResult, what: string) {
  t.ok(r.ok, `${what}: succeeded in ${r.ms} ms`);
  if (!r.ok) t.comment([...r.errors, ...r.diagnostics].join('\n'));
}

t.test('examples/pulumi-flat-network through the language runtime and the plugin', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const zs = s.client;

  // The seed's §9 world.
  const zone = (await zs.createZone({ name: 'zone1' })).inventory;
  const cluster = (await zs.createCluster({ zoneUuid: zone.uuid, name: 'cluster1', hypervisorType: 'Simulator' })).inventory;
  const l2 = (await zs.createL2NoVlanNetwork({ name: 'l2-flat', zoneUuid: zone.uuid, physicalInterface: 'eth0' })).inventory;
  await zs.attachL2NetworkToCluster({ l2NetworkUuid: l2.uuid, clusterUuid: cluster.uuid });
  const l3 = (await zs.createL3Network({ name: 'l3-etpz', l2NetworkUuid: l2.uuid })).inventory;
  await zs.addDnsToL3Network({ l3NetworkUuid: l3.uuid, dns: '8.8.8.8' });
  await zs.addIpRange({
    l3NetworkUuid: l3.uuid,
    name: 'ipr-dk7p',
    startIp: '192.168.201.180',
    endIp: '192.168.201.199',
    netmask: '255.255.252.0',
    gateway: '192.168.200.1',
  });
  await zs.attachNetworkServiceToL3Network({ l3NetworkUuid: l3.uuid, networkServices: { VirtualRouter: ['DHCP', 'DNS'] } });
  const providers = (await zs.queryNetworkServiceProvider({})).inventories!;
  const flat = providers.find((p) => p.type === 'Flat')!;
  const vr = providers.find((p) => p.type === 'VirtualRouter')!;
  const label = (uuid: string) => (uuid === flat.uuid ? 'Flat' : uuid === vr.uuid ? 'VirtualRouter' : uuid);
  const servicesOf = async (uuid: string) =>
    (await zs.queryNetworkServiceL3NetworkRef({ q: [`l3NetworkUuid=${uuid}`] }))
      .inventories!.map((r) => `${r.networkServiceType}@${label(r.networkServiceProviderUuid)}`)
      .sort();

  const config: Record<string, string> = {
    'zstack:endpoint': s.url,
    'zstack:accountName': 'admin',
    'zstack:password': 'password',
    'zstack:pollIntervalMs': '20',
    'zstack-flat-network:l3NetworkUuid': l3.uuid,
    'zstack-flat-network:zoneUuid': zone.uuid,
    'zstack-flat-network:clusterUuids': JSON.stringify([cluster.uuid]),
  };
  const engine = new MiniEngine({ projectDir: EXAMPLE_DIR, stack: 'dev', config, secretKeys: ['zstack:password'] });

  await t.test('preview: everything to create, nothing changes on the server', async (t) => {
    const r = await engine.preview();
    ok(t, r, 'preview');
    t.same(summarize(r.steps), { create: ALL });
    t.notOk(
      r.calls.some((c) => /^(Create|Update|Delete)/.test(c)),
      'no Create/Update/Delete in preview',
    );
    t.match(r.outputs, { flatProviderUuid: flat.uuid, newL3Uuid: UNKNOWN, upgradedServiceList: ['DHCP', 'Userdata'] }, 'outputs unknown until up');
    t.same(await servicesOf(l3.uuid), ['DHCP@VirtualRouter', 'DNS@VirtualRouter']);
    t.equal((await zs.queryL3Network({})).inventories!.length, 1);
    t.same(engine.state, [], 'a preview writes no state');
  });

  let newL3 = '';
  await t.test('up: the L3 moves from the virtual router to Flat; the new network is created', async (t) => {
    const r = await engine.up();
    ok(t, r, 'up');
    t.same(summarize(r.steps), { create: ALL });
    t.same(await servicesOf(l3.uuid), ['DHCP@Flat', 'Userdata@Flat'], 'Flat DHCP+Userdata and no VirtualRouter services');
    newL3 = r.outputs.newL3Uuid as string;
    t.match(r.outputs, { upgradedL3Uuid: l3.uuid, newL3Uuid: /^[0-9a-f]{32}$/, newRange: '192.168.100.2-192.168.100.254 via 192.168.100.1' });
    t.same(await servicesOf(newL3), ['DHCP@Flat', 'Userdata@Flat']);
    const created = (await zs.queryL3Network({ q: [`uuid=${newL3}`] })).inventories![0];
    t.match(created, { name: 'flat-l3', dns: ['223.5.5.5', '8.8.8.8'], dnsDomain: 'flat.zstack.local', ipRanges: [{ networkCidr: '192.168.100.0/24' }] });
    const newL2 = (await zs.queryL2Network({ q: ['name=flat-l2'] })).inventories![0];
    t.match(newL2, { physicalInterface: 'eth1', attachedClusterUuids: [cluster.uuid] });
    t.match(engine.resource('existing-l3')!.outputs, { uuid: l3.uuid, adoptUuid: l3.uuid, name: 'l3-etpz', dns: ['8.8.8.8'] }, 'adopted, not created');
    t.equal((await zs.queryL3Network({ q: ['name=l3-etpz'] })).inventories!.length, 1);
    t.notMatch(JSON.stringify(engine.state), /"password"|zstack:password/, 'no secret in the state');
  });

  await t.test('up again: no changes', async (t) => {
    const r = await engine.up();
    ok(t, r, 'up again');
    t.same(summarize(r.steps), { same: ALL });
    t.notOk(
      r.calls.some((c) => /^(Create|Update|Delete)/.test(c)),
      'only Check and Diff',
    );
  });

  await t.test('drift: detached by hand → refresh detects it → up repairs it', async (t) => {
    await zs.detachNetworkServiceFromL3Network({ l3NetworkUuid: l3.uuid, networkServices: { [flat.uuid]: ['DHCP'] } });
    const refresh = await engine.refresh();
    ok(t, refresh, 'refresh');
    const drift = refresh.steps.find((s) => s.name === 'existing-l3-flat')!;
    t.match(drift, { op: 'refresh-update', changed: ['services'] }, 'refresh shows the detached service');
    t.same(engine.resource('existing-l3-flat')!.outputs.services, ['Userdata']);
    t.equal(refresh.steps.find((s) => s.name === 'flat-l3-flat')!.op, 'refresh-same');
    const r = await engine.up();
    ok(t, r, 'up');
    t.same(summarize(r.steps).update, ['existing-l3-flat'], 'up re-attaches');
    t.same(await servicesOf(l3.uuid), ['DHCP@Flat', 'Userdata@Flat']);
  });

  await t.test('a change of services: updated in place on both networks', async (t) => {
    config['zstack-flat-network:flatServices'] = JSON.stringify(['DHCP']);
    const r = await engine.up();
    ok(t, r, 'up');
    t.same(summarize(r.steps), { same: ALL.filter((n) => !n.endsWith('-flat')), update: ['existing-l3-flat', 'flat-l3-flat'] });
    t.same(await servicesOf(l3.uuid), ['DHCP@Flat']);
    t.same(await servicesOf(newL3), ['DHCP@Flat']);
    t.same(r.outputs.upgradedServiceList, ['DHCP']);
  });

  await t.test('destroy: dependents first, the adopted L3 retained', async (t) => {
    const r = await engine.destroy();
    ok(t, r, 'destroy');
    const order = r.steps.map((s) => s.name);
    t.ok(order.indexOf('existing-l3-flat') < order.indexOf('flat-on-existing-l2'), 'services before the provider leaves the L2');
    t.ok(order.indexOf('flat-range') < order.indexOf('flat-l3') && order.indexOf('flat-l3') < order.indexOf('flat-l2'), 'range, L3, L2');
    t.match(summarize(r.steps), { retain: ['existing-l3'] });
    t.same(await servicesOf(l3.uuid), [], 'the adopted L3 keeps no flat services');
    t.same(
      (await zs.queryL3Network({})).inventories!.map((x) => x.uuid),
      [l3.uuid],
      'the new L3 is gone, the adopted one stays',
    );
    t.same(
      (await zs.queryL2Network({})).inventories!.map((x) => x.uuid),
      [l2.uuid],
    );
    t.same(engine.state, []);
  });
});

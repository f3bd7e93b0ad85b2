// The dynamic providers' methods against a live server, each provider first put through the serialize-and-reload
// round trip the plugin does (serializeFunction(() => provider) → require-from-string → handler()), so closure-capture
// mistakes show here. Then check/diff/create/read/update/delete per resource: replace vs update, drift through read,
// adoption by uuid, partial failures, the detach/attach dance, delete order, lookups and credentials.
import t from 'tap';
import * as pulumi from '@pulumi/pulumi';
import type { dynamic } from '@pulumi/pulumi';
import { startServer } from '../lib/harness.js';
import { getL2Network, getL3Network, getNetworkServiceProvider, makeProvider, providers, type ResourceKind } from '../../pulumi-provider/src/index.js';
import { requireFromString } from './lib/wire.js';

type Provider = Required<dynamic.ResourceProvider>;
type Props = Record<string, unknown>;

async function failure(p: Promise<unknown>): Promise<Error & { id?: string; properties?: Props }> {
  return p.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: Error) => e,
  );
}

t.test('pulumi provider methods against a live server', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const zs = s.client;
  const config = { 'zstack:endpoint': s.url, 'zstack:accountName': 'admin', 'zstack:password': 'password', 'zstack:pollIntervalMs': '20' };
  const zone = (await zs.createZone({ name: 'zone1' })).inventory;
  const cluster = (await zs.createCluster({ zoneUuid: zone.uuid, name: 'c1', hypervisorType: 'Simulator' })).inventory;
  const cluster2 = (await zs.createCluster({ zoneUuid: zone.uuid, name: 'c2', hypervisorType: 'Simulator' })).inventory;
  const all = (await zs.queryNetworkServiceProvider({})).inventories!;
  const flat = all.find((p) => p.type === 'Flat')!;
  const vr = all.find((p) => p.type === 'VirtualRouter')!;
  const l3Of = async (uuid: string) => (await zs.queryL3Network({ q: [`uuid=${uuid}`] })).inventories![0];
  const servicesOf = async (uuid: string) =>
    (await l3Of(uuid)).networkServices
      .map((r) => `${r.networkServiceType}@${r.networkServiceProviderUuid === flat.uuid ? 'Flat' : r.networkServiceProviderUuid === vr.uuid ? 'VR' : '?'}`)
      .sort();

  // The round trip: exactly what `pulumi.dynamic.Resource` serializes and what the plugin loads.
  const p = {} as Record<ResourceKind, Provider>;
  await t.test('serialize-and-reload round trip of each provider', async (t) => {
    for (const kind of Object.keys(providers) as ResourceKind[]) {
      const { text } = await pulumi.runtime.serializeFunction(() => providers[kind], { allowSecrets: true });
      t.match(text, /@zstack-ts\/pulumi\/runtime/, `${kind}: the runtime is imported inside the methods`);
      t.notMatch(text, /axios|ZStackClient|password|127\.0\.0\.1/, `${kind}: no SDK, no credentials in the serialized provider`);
      t.match(text, new RegExp(`kind: "${kind}"`), `${kind}: the kind is captured by value`);
      const reloaded = requireFromString(text).handler() as Provider;
      t.not(reloaded, providers[kind], `${kind}: a new object`);
      await reloaded.configure({ config: { get: (k: string) => config[k as keyof typeof config], require: (k: string) => config[k as keyof typeof config] } });
      p[kind] = reloaded;
    }
    // Configuring the reloaded copies left the originals (which the program serializes) untouched.
    const again = await pulumi.runtime.serializeFunction(() => providers.L3Network, { allowSecrets: true });
    t.notMatch(again.text, /password|127\.0\.0\.1/, 'still nothing secret to serialize');
  });

  let l2Uuid = '';
  let l2Outs: Props = {};
  await t.test('L2Network: create, clusters in place, replace rules, adopt, partial failure, delete', async (t) => {
    const { inputs, failures } = await p.L2Network.check({}, { name: 'l2-flat', zoneUuid: zone.uuid, physicalInterface: 'eth0', clusterUuids: [cluster.uuid] });
    t.same(failures, []);
    const created = await p.L2Network.create(inputs);
    l2Uuid = created.id;
    l2Outs = created.outs;
    t.match(created.outs, {
      uuid: created.id,
      type: 'L2NoVlanNetwork',
      attachedClusterUuids: [cluster.uuid],
      clusterUuids: [cluster.uuid],
      zoneUuid: zone.uuid,
    });
    t.ok(created.outs.createDate, 'inventory fields are outputs');

    const moreClusters = (await p.L2Network.check({}, { ...inputs, clusterUuids: [cluster2.uuid, cluster.uuid] })).inputs;
    t.same(await p.L2Network.diff(created.id, created.outs, moreClusters), { changes: true, replaces: [], deleteBeforeReplace: false });
    const updated = await p.L2Network.update(created.id, created.outs, moreClusters);
    t.same([...(updated.outs!.attachedClusterUuids as string[])].sort(), [cluster.uuid, cluster2.uuid].sort());
    t.same(
      (await p.L2Network.diff(created.id, updated.outs, (await p.L2Network.check({}, { ...inputs, name: 'renamed' })).inputs)).replaces,
      ['name'],
      'no UpdateL2Network: a rename replaces',
    );
    const back = await p.L2Network.update(created.id, updated.outs, inputs);
    t.same(back.outs!.attachedClusterUuids, [cluster.uuid], 'detached again');
    l2Outs = back.outs!;

    // Drift: detached out of band → read shows it → diff wants an update.
    await zs.detachL2NetworkFromCluster({ l2NetworkUuid: created.id, clusterUuid: cluster.uuid });
    const read = await p.L2Network.read(created.id, l2Outs);
    t.same(read.props!.clusterUuids, [], 'refresh sees the detach');
    t.equal((await p.L2Network.diff(created.id, read.props!, inputs)).changes, true);
    l2Outs = (await p.L2Network.update(created.id, read.props!, inputs)).outs!;
    t.same(l2Outs.clusterUuids, [cluster.uuid], 'up repairs it');

    // VLAN network, adopted afterwards.
    const vlanIn = (await p.L2Network.check({}, { name: 'l2-vlan', zoneUuid: zone.uuid, physicalInterface: 'eth0', vlan: 100 })).inputs;
    const vlan = await p.L2Network.create(vlanIn);
    t.match(vlan.outs, { type: 'L2VlanNetwork', vlan: 100 });
    const adopted = await p.L2Network.create({ ...vlanIn, adoptUuid: vlan.id });
    t.equal(adopted.id, vlan.id, 'adopted, not created');
    t.equal((await zs.queryL2Network({ q: ['name=l2-vlan'] })).inventories!.length, 1);
    const mismatch = await failure(p.L2Network.create({ ...vlanIn, vlan: 101, adoptUuid: vlan.id }));
    t.match(mismatch.message, /cannot adopt L2 network .*vlan is 100 on the server but 101 in the program/);
    t.match((await failure(p.L2Network.create({ ...vlanIn, adoptUuid: 'f'.repeat(32) }))).message, /does not exist/);

    // Partial failure: the network exists, the cluster attachment failed → the engine keeps id and properties.
    const partial = await failure(p.L2Network.create({ ...vlanIn, name: 'l2-partial', vlan: 200, clusterUuids: ['e'.repeat(32)] }));
    t.match(partial.message, /attaching L2 network .* to cluster e{32}/);
    t.match(partial, { name: 'ResourceInitError', id: /^[0-9a-f]{32}$/, properties: { name: 'l2-partial' } });
    t.ok((await zs.queryL2Network({ q: [`uuid=${partial.id}`] })).inventories!.length, 'not orphaned: its id went to the state');
    await p.L2Network.delete(partial.id!, partial.properties!);

    await p.L2Network.delete(vlan.id, vlan.outs);
    t.same(await p.L2Network.read(vlan.id, vlan.outs), { id: '', props: {} }, 'gone after delete');
    await p.L2Network.delete(vlan.id, vlan.outs);
    t.pass('deleting twice is fine');
  });

  let l3Uuid = '';
  let l3Outs: Props = {};
  let l3In: Props = {};
  await t.test('L3Network: create with DNS, updates in place, drift, replace rules, adopt', async (t) => {
    const bad = await p.L3Network.check({}, { name: 'l3', l2NetworkUuid: l2Uuid, system: true, category: 'Private', dns: ['8.8.8.8.8'] });
    t.same(bad.failures?.map((f) => f.property).sort(), ['category', 'dns[0]']);
    l3In = (await p.L3Network.check({}, { name: 'l3-etpz', l2NetworkUuid: l2Uuid, dns: ['8.8.8.8', '1.1.1.1'], dnsDomain: 'zstack.local' })).inputs;
    const created = await p.L3Network.create(l3In);
    l3Uuid = created.id;
    t.match(created.outs, {
      uuid: created.id,
      name: 'l3-etpz',
      dns: ['8.8.8.8', '1.1.1.1'],
      category: 'Private',
      system: false,
      state: 'Enabled',
      dnsDomain: 'zstack.local',
      zoneUuid: zone.uuid,
    });

    const changed = (await p.L3Network.check({}, { ...l3In, name: 'l3-new', description: 'd', dns: ['1.1.1.1', '9.9.9.9'], category: 'Public' })).inputs;
    t.same(await p.L3Network.diff(created.id, created.outs, changed), { changes: true, replaces: [], deleteBeforeReplace: false }, 'all in place');
    const updated = await p.L3Network.update(created.id, created.outs, changed);
    t.match(updated.outs, { name: 'l3-new', description: 'd', dns: ['1.1.1.1', '9.9.9.9'], category: 'Public', uuid: created.id });
    t.match(await l3Of(created.id), { name: 'l3-new', dns: ['1.1.1.1', '9.9.9.9'], category: 'Public' }, 'the server agrees');
    const system = (await p.L3Network.check({}, { ...changed, system: true, category: 'System' })).inputs;
    t.match((await p.L3Network.update(created.id, updated.outs!, system)).outs, { system: true, category: 'System' }, 'system and category together');
    l3Outs = (await p.L3Network.update(created.id, updated.outs!, l3In)).outs!;
    t.match(l3Outs, { name: 'l3-etpz', dns: ['8.8.8.8', '1.1.1.1'], category: 'Private', system: false });

    await zs.removeDnsFromL3Network({ l3NetworkUuid: created.id, dns: '8.8.8.8' });
    await zs.updateL3Network({ uuid: created.id, name: 'renamed-by-hand' });
    const read = await p.L3Network.read(created.id, l3Outs);
    t.match(read.props, { name: 'renamed-by-hand', dns: ['1.1.1.1'] }, 'refresh shows the drift');
    t.same(await p.L3Network.diff(created.id, read.props!, l3In), { changes: true, replaces: [], deleteBeforeReplace: false });
    l3Outs = (await p.L3Network.update(created.id, read.props!, l3In)).outs!;
    t.match(await l3Of(created.id), { name: 'l3-etpz', dns: ['8.8.8.8', '1.1.1.1'] }, 'up puts it back, in order');

    t.same((await p.L3Network.diff(created.id, l3Outs, { ...l3In, l2NetworkUuid: 'a'.repeat(32) })).replaces, ['l2NetworkUuid']);

    // Adoption of a network made outside Pulumi: the declared name and DNS are applied to it.
    const outside = (await zs.createL3Network({ name: 'made-by-hand', l2NetworkUuid: l2Uuid, category: 'Public' })).inventory;
    await zs.addDnsToL3Network({ l3NetworkUuid: outside.uuid, dns: '4.4.4.4' });
    const adoptIn = (await p.L3Network.check({}, { adoptUuid: outside.uuid, name: 'adopted', l2NetworkUuid: l2Uuid, dns: ['8.8.4.4'] })).inputs;
    const adopted = await p.L3Network.create(adoptIn);
    t.equal(adopted.id, outside.uuid);
    t.match(await l3Of(outside.uuid), { name: 'adopted', dns: ['8.8.4.4'], category: 'Public' }, 'category left alone (not declared)');
    t.match((await failure(p.L3Network.create({ ...adoptIn, l2NetworkUuid: 'b'.repeat(32) }))).message, /its l2NetworkUuid is .* on the server/);
    // Delete detaches the services first, then deletes (ranges go with it).
    await zs.attachNetworkServiceToL3Network({ l3NetworkUuid: outside.uuid, networkServices: { [vr.uuid]: ['DHCP'] } });
    await p.L3Network.delete(adopted.id, adopted.outs);
    t.equal(await l3Of(outside.uuid), undefined);
    t.equal((await zs.queryNetworkServiceL3NetworkRef({ q: [`l3NetworkUuid=${outside.uuid}`] })).inventories!.length, 0);
  });

  await t.test('IpRange: CIDR or bounds, every change replaces (old one first), adopt', async (t) => {
    const cidrIn = (await p.IpRange.check({}, { l3NetworkUuid: l3Uuid, name: 'r1', networkCidr: '192.168.100.9/24' })).inputs;
    const r1 = await p.IpRange.create(cidrIn);
    t.match(r1.outs, {
      uuid: r1.id,
      networkCidr: '192.168.100.0/24',
      startIp: '192.168.100.2',
      endIp: '192.168.100.254',
      gateway: '192.168.100.1',
      netmask: '255.255.255.0',
    });
    t.same(await p.IpRange.diff(r1.id, r1.outs, cidrIn), { changes: false, replaces: [], deleteBeforeReplace: false });
    const narrower = (await p.IpRange.check({}, { l3NetworkUuid: l3Uuid, name: 'r1', networkCidr: '192.168.100.0/25' })).inputs;
    t.same(await p.IpRange.diff(r1.id, r1.outs, narrower), { changes: true, replaces: ['networkCidr'], deleteBeforeReplace: true });
    const overlap = await failure(p.IpRange.create(narrower));
    t.match(overlap.message, /adding IP range "r1" \(192\.168\.100\.0\/25\) to L3 network/, 'why delete-before-replace: ZStack refuses the overlap');
    t.same(await p.IpRange.read(r1.id, r1.outs).then((r) => r.props!.uuid), r1.id);
    t.match((await failure(p.IpRange.update(r1.id, r1.outs, narrower))).message, /cannot be changed in place/);
    const adopted = await p.IpRange.create({ ...cidrIn, adoptUuid: r1.id });
    t.equal(adopted.id, r1.id);
    t.match(
      (await failure(p.IpRange.create({ ...narrower, adoptUuid: r1.id }))).message,
      /networkCidr is "192.168.100.0\/24" on the server but "192.168.100.0\/25"/,
    );
    await p.IpRange.delete(r1.id, r1.outs);
    t.same(await p.IpRange.read(r1.id, r1.outs), { id: '', props: {} });
    const boundsIn = (
      await p.IpRange.check(
        {},
        { l3NetworkUuid: l3Uuid, name: 'ipr-dk7p', startIp: '192.168.201.180', endIp: '192.168.201.199', netmask: '255.255.252.0', gateway: '192.168.200.1' },
      )
    ).inputs;
    const r2 = await p.IpRange.create(boundsIn);
    t.match(r2.outs, { startIp: '192.168.201.180', endIp: '192.168.201.199', networkCidr: '192.168.200.0/22' });
    t.equal((await p.IpRange.diff(r2.id, r2.outs, boundsIn)).changes, false, "the server's computed CIDR is no diff");
  });

  await t.test('NetworkServiceProviderAttachment and NetworkServiceAttachment: the §9 move', async (t) => {
    // The seed's starting point: the virtual router runs DHCP and DNS on the L3 network.
    await zs.attachNetworkServiceToL3Network({ l3NetworkUuid: l3Uuid, networkServices: { [vr.uuid]: ['DHCP', 'DNS'] } });
    await zs.detachNetworkServiceProviderFromL2Network({ l2NetworkUuid: l2Uuid, networkServiceProviderUuid: flat.uuid });
    const paIn = (await p.NetworkServiceProviderAttachment.check({}, { l2NetworkUuid: l2Uuid, providerUuid: flat.uuid })).inputs;
    const pa = await p.NetworkServiceProviderAttachment.create(paIn);
    t.equal(pa.id, `${l2Uuid}:${flat.uuid}`);
    t.match(pa.outs, { providerType: 'Flat', networkServiceTypes: ['DHCP', 'Userdata'] });
    t.same((await p.NetworkServiceProviderAttachment.read(pa.id, {})).props, pa.outs, 'read by id alone (get)');

    const svcIn = (await p.NetworkServiceAttachment.check({}, { l3NetworkUuid: l3Uuid, providerUuid: flat.uuid, services: ['DHCP', 'Userdata'] })).inputs;
    const conflict = await failure(p.NetworkServiceAttachment.create(svcIn));
    t.match(conflict.message, /DHCP is provided by VirtualRouter .*Add detachProviders: \["VirtualRouter"\]/, 'a conflict says what to do');
    t.same(await servicesOf(l3Uuid), ['DHCP@VR', 'DNS@VR'], 'and changes nothing');
    t.match(
      (await failure(p.NetworkServiceAttachment.create({ ...svcIn, services: ['DHCP', 'SNAT'], detachProviders: ['VirtualRouter'] }))).message,
      /does not offer SNAT; it offers DHCP, Userdata/,
    );
    t.match(
      (await failure(p.NetworkServiceAttachment.create({ ...svcIn, detachProviders: ['Nope'] }))).message,
      /no network service provider has uuid or type "Nope"/,
    );
    t.same(await servicesOf(l3Uuid), ['DHCP@VR', 'DNS@VR']);

    const moveIn = { ...svcIn, detachProviders: ['VirtualRouter'] };
    const svc = await p.NetworkServiceAttachment.create(moveIn);
    t.equal(svc.id, `${l3Uuid}:${flat.uuid}`);
    t.match(svc.outs, { services: ['DHCP', 'Userdata'], providerType: 'Flat', detachProviders: ['VirtualRouter'] });
    t.same(await servicesOf(l3Uuid), ['DHCP@Flat', 'Userdata@Flat'], 'the §9 end state: Flat DHCP+Userdata, no virtual router');

    // Drift: DHCP detached by hand → read shows it → diff → update re-attaches.
    await zs.detachNetworkServiceFromL3Network({ l3NetworkUuid: l3Uuid, networkServices: { [flat.uuid]: ['DHCP'] } });
    const read = await p.NetworkServiceAttachment.read(svc.id, svc.outs);
    t.same(read.props!.services, ['Userdata']);
    t.same(await p.NetworkServiceAttachment.diff(svc.id, read.props!, moveIn), { changes: true, replaces: [], deleteBeforeReplace: false });
    const repaired = await p.NetworkServiceAttachment.update(svc.id, read.props!, moveIn);
    t.same(repaired.outs!.services, ['DHCP', 'Userdata']);
    t.same(await servicesOf(l3Uuid), ['DHCP@Flat', 'Userdata@Flat']);

    // Changing the list attaches/detaches the difference.
    const dhcpOnly = { ...moveIn, services: ['DHCP'] };
    t.same((await p.NetworkServiceAttachment.update(svc.id, repaired.outs!, dhcpOnly)).outs!.services, ['DHCP']);
    t.same(await servicesOf(l3Uuid), ['DHCP@Flat']);

    // A failed attach puts back what was moved away: VR takes DHCP+DNS again, then a move that cannot attach.
    await zs.detachNetworkServiceFromL3Network({ l3NetworkUuid: l3Uuid, networkServices: { [flat.uuid]: ['DHCP'] } });
    await zs.attachNetworkServiceToL3Network({ l3NetworkUuid: l3Uuid, networkServices: { [vr.uuid]: ['DHCP', 'DNS'] } });
    await zs.detachNetworkServiceProviderFromL2Network({ l2NetworkUuid: l2Uuid, networkServiceProviderUuid: flat.uuid });
    const rolledBack = await failure(p.NetworkServiceAttachment.update(svc.id, repaired.outs!, moveIn));
    t.match(rolledBack.message, /not attached to L2 network.*the services detached before were attached back/);
    t.same(await servicesOf(l3Uuid), ['DHCP@VR', 'DNS@VR'], 'nothing half-moved');
    const readGone = await p.NetworkServiceProviderAttachment.read(pa.id, pa.outs);
    t.same(readGone, { id: '', props: {} }, 'provider detached by hand: refresh drops the attachment');
    await p.NetworkServiceProviderAttachment.create(paIn);
    const moved = await p.NetworkServiceAttachment.update(svc.id, repaired.outs!, moveIn);
    t.same(moved.outs!.services, ['DHCP', 'Userdata']);

    // Delete order: the provider cannot leave the L2 while its services run there; the services go first.
    const inUse = await failure(p.NetworkServiceProviderAttachment.delete(pa.id, pa.outs));
    t.match(inUse.message, /still provides services.*retainOnDelete/);
    await p.NetworkServiceAttachment.delete(svc.id, moved.outs!);
    t.same(await servicesOf(l3Uuid), []);
    await p.NetworkServiceProviderAttachment.delete(pa.id, pa.outs);
    t.notOk((await zs.queryNetworkServiceProvider({ q: [`uuid=${flat.uuid}`] })).inventories![0].attachedL2NetworkUuids.includes(l2Uuid));
    await p.NetworkServiceAttachment.delete(svc.id, moved.outs!);
    t.pass('deleting a detached attachment is fine');
  });

  await t.test('lookups (program side) and credentials', async (t) => {
    process.env.ZSTACK_ENDPOINT = s.url;
    process.env.ZSTACK_PASSWORD = 'password';
    t.teardown(() => {
      delete process.env.ZSTACK_ENDPOINT;
      delete process.env.ZSTACK_PASSWORD;
    });
    t.equal((await getNetworkServiceProvider({ type: 'Flat' })).uuid, flat.uuid);
    t.equal((await getL3Network({ name: 'l3-etpz' })).uuid, l3Uuid);
    t.equal((await getL3Network({ uuid: l3Uuid })).l2NetworkUuid, l2Uuid);
    t.equal((await getL2Network({ name: 'l2-flat' })).uuid, l2Uuid);
    await zs.createL3Network({ name: 'l3-etpz', l2NetworkUuid: l2Uuid });
    t.match((await failure(getL3Network({ name: 'l3-etpz' }))).message, /2 L3 networks match name=l3-etpz .*look it up by uuid/);
    t.match((await failure(getL2Network({ name: 'nope' }))).message, /no L2 network with name=nope/);
    t.match((await failure(getL3Network({}))).message, /give uuid or name/);

    // A provider never configured (no stack config) falls back to the environment, read at call time.
    const fresh = makeProvider('L3Network') as Provider;
    t.equal((await fresh.read(l3Uuid, {})).id, l3Uuid, 'environment credentials');
    delete process.env.ZSTACK_ENDPOINT;
    const noEndpoint = makeProvider('L3Network') as Provider;
    t.match((await failure(noEndpoint.read(l3Uuid, {}))).message, /endpoint is not configured: run `pulumi config set zstack:endpoint/);
    const wrong = makeProvider('L3Network') as Provider;
    await wrong.configure({ config: { get: (k: string) => ({ 'zstack:endpoint': s.url, 'zstack:password': 'wrong' })[k], require: () => '' } });
    t.match((await failure(wrong.read(l3Uuid, {}))).message, /logging in to .* as admin/);
  });
});

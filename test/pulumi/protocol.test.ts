// Protocol level: the dynamic-provider plugin shipped in @pulumi/pulumi, started as the engine starts it (plain Node,
// cwd = the Pulumi project), driven over gRPC like the engine: GetPluginInfo → Handshake → Configure (namespaced
// stack config, the password a secret) → Check → Diff → Create / Read / Update / Delete, with secrets stripped, no
// Create/Update in preview and `olds` = old outputs. The `__provider` texts are the ones the SDK really sends:
// captured from the resource classes under `pulumi.runtime.setMocks`.
import t from 'tap';
import * as pulumi from '@pulumi/pulumi';
import { startServer } from '../lib/harness.js';
import { IpRange, L2Network, L3Network, NetworkServiceAttachment, NetworkServiceProviderAttachment } from '../../pulumi-provider/src/index.js';
import { PluginHost, urnOf } from './lib/plugin-host.js';
import { EXAMPLE_DIR, UNKNOWN, grpc, provpb, type Props } from './lib/wire.js';
import { createRequire } from 'node:module';
import { PULUMI_DIR } from './lib/wire.js';
import { join } from 'node:path';

const statuspb = createRequire(join(PULUMI_DIR, 'package.json'))('./proto/status_pb') as typeof import('@pulumi/pulumi/proto/status_pb.js');

const PROJECT = 'zstack-flat-network';
const STACK = 'dev';
const TYPE = (k: string) => `pulumi-nodejs:dynamic/zstack:${k}`;
const urn = (k: string, name: string) => urnOf(PROJECT, STACK, TYPE(k), name);

/** What the SDK sends for each resource type: the real `__provider` text, captured with mocks. */
async function captureProviders(): Promise<Record<string, string>> {
  const captured: Record<string, string> = {};
  let done: () => void;
  const all = new Promise<void>((r) => (done = r));
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        captured[args.type] = args.inputs.__provider as string;
        if (Object.keys(captured).length === 5) done();
        return { id: `${args.name}-id`, state: args.inputs };
      },
      call: () => ({}),
    },
    PROJECT,
    STACK,
    false,
  );
  const u = 'a'.repeat(32);
  new L2Network('l2', { name: 'l2', zoneUuid: u, physicalInterface: 'eth0' });
  new L3Network('l3', { name: 'l3', l2NetworkUuid: u });
  new IpRange('r', { name: 'r', l3NetworkUuid: u, networkCidr: '10.0.0.0/24' });
  new NetworkServiceProviderAttachment('pa', { l2NetworkUuid: u, providerUuid: u });
  new NetworkServiceAttachment('sa', { l3NetworkUuid: u, providerUuid: u, services: ['DHCP'] });
  await all;
  return Object.fromEntries(Object.entries(captured).map(([type, text]) => [type.split(':').pop()!, text]));
}

async function grpcFailure(p: Promise<unknown>): Promise<import('@grpc/grpc-js').ServiceError> {
  return p.then(
    () => {
      throw new Error('expected a gRPC error');
    },
    (e) => e,
  );
}

t.test('the dynamic-provider plugin over gRPC against a live server', async (t) => {
  const providerText = await captureProviders();
  t.same(Object.keys(providerText).sort(), ['IpRange', 'L2Network', 'L3Network', 'NetworkServiceAttachment', 'NetworkServiceProviderAttachment']);

  const s = await startServer();
  t.teardown(() => s.close());
  const zs = s.client;
  const zone = (await zs.createZone({ name: 'zone1' })).inventory;
  const all = (await zs.queryNetworkServiceProvider({})).inventories!;
  const flat = all.find((p) => p.type === 'Flat')!;
  const vr = all.find((p) => p.type === 'VirtualRouter')!;

  const host = await PluginHost.start({
    cwd: EXAMPLE_DIR,
    project: PROJECT,
    config: {
      'zstack:endpoint': s.url,
      'zstack:accountName': 'admin',
      'zstack:password': 'password',
      'zstack:pollIntervalMs': '20',
      [`${PROJECT}:l3NetworkUuid`]: 'x',
    },
    secretKeys: ['zstack:password'],
  });
  t.teardown(() => host.close());
  const with_ = (kind: string, props: Props): Props => ({ ...props, __provider: providerText[kind] });

  t.equal(await host.getPluginInfo(), '3.248.0', 'GetPluginInfo: the SDK version');
  t.equal(await host.handshake(), grpc.status.UNIMPLEMENTED, 'Handshake is UNIMPLEMENTED; the engine falls back to Configure');
  t.same(await host.configure(), { acceptSecrets: false, supportsPreview: false, acceptResources: false }, 'Configure');

  // Preview: Check only (unknowns allowed), never Create.
  const l2News = with_('L2Network', { name: 'l2-flat', zoneUuid: zone.uuid, physicalInterface: 'eth0' });
  const l2Checked = await host.check(urn('L2Network', 'l2'), {}, l2News);
  t.same(l2Checked.failures, []);
  t.match(l2Checked.inputs, { type: 'L2NoVlanNetwork', vSwitchType: 'LinuxBridge', __provider: providerText.L2Network });
  const l3Preview = await host.check(urn('L3Network', 'l3'), {}, with_('L3Network', { name: 'l3-etpz', l2NetworkUuid: UNKNOWN, dns: ['8.8.8.8'] }));
  t.same(l3Preview.failures, [], 'an unknown l2NetworkUuid passes in preview');
  t.equal(l3Preview.inputs.l2NetworkUuid, UNKNOWN);
  t.equal((await zs.queryL2Network({})).inventories!.length, 0, 'preview created nothing');

  const bad = await host.check(urn('L3Network', 'bad'), {}, with_('L3Network', { name: 'x', l2NetworkUuid: 'nope', dns: ['8.8.8'], category: 'System' }));
  t.same(bad.failures.map((f) => f.property).sort(), ['category', 'dns[0]', 'l2NetworkUuid'], 'per-property failures over the wire');
  t.match(bad.failures.find((f) => f.property === 'dns[0]')?.reason, /"8\.8\.8" is not an IPv4 address/);

  // Up: Create in dependency order.
  const l2 = await host.create(urn('L2Network', 'l2'), l2Checked.inputs);
  t.match(l2.id, /^[0-9a-f]{32}$/);
  t.match(l2.properties, { uuid: l2.id, __provider: providerText.L2Network }, 'outputs carry __provider back');
  const l3In = (await host.check(urn('L3Network', 'l3'), {}, with_('L3Network', { name: 'l3-etpz', l2NetworkUuid: l2.id, dns: ['8.8.8.8'] }))).inputs;
  const l3 = await host.create(urn('L3Network', 'l3'), l3In);
  t.match(l3.properties, { uuid: l3.id, name: 'l3-etpz', dns: ['8.8.8.8'], state: 'Enabled' });
  const rangeIn = (await host.check(urn('IpRange', 'r'), {}, with_('IpRange', { l3NetworkUuid: l3.id, name: 'r', networkCidr: '192.168.10.0/24' }))).inputs;
  let range = await host.create(urn('IpRange', 'r'), rangeIn);
  t.match(range.properties, { startIp: '192.168.10.2', gateway: '192.168.10.1' });
  const paIn = (
    await host.check(
      urn('NetworkServiceProviderAttachment', 'pa'),
      {},
      with_('NetworkServiceProviderAttachment', { l2NetworkUuid: l2.id, providerUuid: flat.uuid }),
    )
  ).inputs;
  const pa = await host.create(urn('NetworkServiceProviderAttachment', 'pa'), paIn);
  t.equal(pa.id, `${l2.id}:${flat.uuid}`);

  // The §9 starting point, then the attachment that moves it.
  await zs.attachNetworkServiceToL3Network({ l3NetworkUuid: l3.id, networkServices: { [vr.uuid]: ['DHCP', 'DNS'] } });
  const saIn = (
    await host.check(
      urn('NetworkServiceAttachment', 'sa'),
      {},
      with_('NetworkServiceAttachment', { l3NetworkUuid: l3.id, providerUuid: flat.uuid, services: ['DHCP', 'Userdata'], detachProviders: ['VirtualRouter'] }),
    )
  ).inputs;
  const { detachProviders: _, ...withoutDetach } = saIn;
  const conflict = await grpcFailure(host.create(urn('NetworkServiceAttachment', 'sa'), withoutDetach));
  t.equal(conflict.code, grpc.status.UNKNOWN, 'a failed Create is gRPC UNKNOWN');
  t.match(conflict.details, /DHCP is provided by VirtualRouter/);
  const sa = await host.create(urn('NetworkServiceAttachment', 'sa'), saIn);
  t.equal(sa.id, `${l3.id}:${flat.uuid}`);
  t.same(sa.properties.services, ['DHCP', 'Userdata']);
  const refs = (await zs.queryNetworkServiceL3NetworkRef({ q: [`l3NetworkUuid=${l3.id}`] })).inventories!;
  t.same(
    refs.map((r) => [r.networkServiceProviderUuid, r.networkServiceType]),
    [
      [flat.uuid, 'DHCP'],
      [flat.uuid, 'Userdata'],
    ],
    'Flat DHCP+Userdata, no virtual router',
  );

  // Diff: olds are the old outputs.
  t.match(await host.diff(urn('L3Network', 'l3'), l3.id, l3.properties, l3In, l3In), { changes: 'none' }, 'no change → DIFF_NONE');
  const renamed = (await host.check(urn('L3Network', 'l3'), l3In, { ...l3In, name: 'l3-renamed', dns: ['8.8.8.8', '1.1.1.1'] })).inputs;
  t.same(
    await host.diff(urn('L3Network', 'l3'), l3.id, l3.properties, renamed, l3In),
    { changes: 'some', replaces: [], deleteBeforeReplace: false },
    'in place',
  );
  t.same((await host.diff(urn('L3Network', 'l3'), l3.id, l3.properties, { ...l3In, l2NetworkUuid: 'b'.repeat(32) })).replaces, ['l2NetworkUuid'], 'replace');
  t.same(
    (await host.diff(urn('L3Network', 'l3'), l3.id, l3.properties, { ...l3In, l2NetworkUuid: UNKNOWN })).replaces,
    ['l2NetworkUuid'],
    'unknown in preview',
  );
  const l3Updated = await host.update(urn('L3Network', 'l3'), l3.id, l3.properties, renamed, l3In);
  t.match(
    l3Updated.properties,
    { uuid: l3.id, name: 'l3-renamed', dns: ['8.8.8.8', '1.1.1.1'], __provider: providerText.L3Network },
    'Update keeps every output',
  );
  t.match((await zs.queryL3Network({ q: [`uuid=${l3.id}`] })).inventories![0], { name: 'l3-renamed', dns: ['8.8.8.8', '1.1.1.1'] });

  // Replacement of an IP range: the engine deletes the old one first (deleteBeforeReplace), then creates.
  const range2In = (await host.check(urn('IpRange', 'r'), rangeIn, with_('IpRange', { l3NetworkUuid: l3.id, name: 'r', networkCidr: '192.168.10.0/25' })))
    .inputs;
  const d = await host.diff(urn('IpRange', 'r'), range.id, range.properties, range2In, rangeIn);
  t.same(d, { changes: 'some', replaces: ['networkCidr'], deleteBeforeReplace: true });
  await host.delete(urn('IpRange', 'r'), range.id, range.properties, rangeIn);
  range = await host.create(urn('IpRange', 'r'), range2In);
  t.match(range.properties, { endIp: '192.168.10.126' });

  // Refresh: Read reports drift (DHCP detached by hand); the next up's Diff/Update repairs it.
  await zs.detachNetworkServiceFromL3Network({ l3NetworkUuid: l3.id, networkServices: { [flat.uuid]: ['DHCP'] } });
  const refreshed = await host.read(urn('NetworkServiceAttachment', 'sa'), sa.id, sa.properties, saIn);
  t.equal(refreshed.id, sa.id);
  t.same(refreshed.properties.services, ['Userdata'], 'Read shows the drift');
  t.match(await host.diff(urn('NetworkServiceAttachment', 'sa'), sa.id, refreshed.properties, saIn, saIn), { changes: 'some', replaces: [] });
  const repaired = await host.update(urn('NetworkServiceAttachment', 'sa'), sa.id, refreshed.properties, saIn, saIn);
  t.same(repaired.properties.services, ['DHCP', 'Userdata']);

  // `X.get(name, id)`: Read with the id and nothing but __provider.
  const got = await host.read(urn('L3Network', 'existing'), l3.id, with_('L3Network', {}));
  t.match(got.properties, { uuid: l3.id, name: 'l3-renamed', l2NetworkUuid: l2.id });

  // Partial failure: created, but a follow-up step failed → ErrorResourceInitFailed with the id, so nothing is orphaned.
  const partialIn = (
    await host.check(
      urn('L2Network', 'p'),
      {},
      with_('L2Network', { name: 'l2-p', zoneUuid: zone.uuid, physicalInterface: 'eth1', clusterUuids: ['c'.repeat(32)] }),
    )
  ).inputs;
  const partial = await grpcFailure(host.create(urn('L2Network', 'p'), partialIn));
  t.equal(partial.code, grpc.status.UNKNOWN);
  const detailsBin = partial.metadata.get('grpc-status-details-bin')[0] as Buffer;
  t.ok(detailsBin, 'grpc-status-details-bin');
  const status = statuspb.Status.deserializeBinary(new Uint8Array(detailsBin));
  const init = status.getDetailsList()[0].unpack(provpb.ErrorResourceInitFailed.deserializeBinary, 'pulumirpc.ErrorResourceInitFailed')!;
  t.match(init.getId(), /^[0-9a-f]{32}$/);
  t.match(init.getReasonsList()[0], /attaching L2 network .* to cluster c{32}/);
  t.ok((await zs.queryL2Network({ q: [`uuid=${init.getId()}`] })).inventories!.length, 'the object the engine now knows about');
  await host.delete(urn('L2Network', 'p'), init.getId(), with_('L2Network', {}));

  // No secret anywhere in what went to the state.
  const everything = JSON.stringify([l2, l3, l3Updated, range, pa, sa, repaired, got, Object.values(providerText)]);
  t.notMatch(everything, /"password"|:password/, 'the password never reaches the state');

  // Destroy, dependents first; Read afterwards says gone.
  await host.delete(urn('NetworkServiceAttachment', 'sa'), sa.id, repaired.properties);
  await host.delete(urn('NetworkServiceProviderAttachment', 'pa'), pa.id, pa.properties);
  await host.delete(urn('IpRange', 'r'), range.id, range.properties);
  await host.delete(urn('L3Network', 'l3'), l3.id, l3Updated.properties);
  await host.delete(urn('L2Network', 'l2'), l2.id, l2.properties);
  t.same(
    await host.read(urn('L3Network', 'l3'), l3.id, l3Updated.properties),
    { id: '', properties: { __provider: providerText.L3Network }, inputs: undefined },
    'empty id = gone',
  );
  t.equal((await zs.queryL2Network({})).inventories!.length, 0);
  t.equal((await zs.queryL3Network({})).inventories!.length, 0);
  t.notMatch(host.stderr, /Error|TypeError/, 'the plugin logged no error besides the expected ones');
});

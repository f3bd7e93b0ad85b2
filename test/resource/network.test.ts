// Networks through the SDK on real PostgreSQL: the release notes' §9 flat-network upgrade step by step (shapes and
// values of every reply), L2/L3/IP range/DNS/network service rules with failing inputs, the deletion cascade, and
// the IP allocator under concurrency.
import t from 'tap';
import { eq, sql } from 'drizzle-orm';
import { startServer, http, pollJob } from '../lib/harness.js';
import { clusters, ipRanges, l3Networks, usedIps } from '../../server/src/db/schema/index.js';
import { newUuid } from '../../server/src/core/ids.js';
import { fails } from '../lib/fails.js';

const DATE = /^[A-Z][a-z]{2} \d{1,2}, \d{4} \d{1,2}:\d{2}:\d{2} [AP]M$/;
// Keys of the v1.1 replies in the release notes, plus the few of today's upstream we add (see network/inventory.ts).
const L3_KEYS = [
  'category',
  'createDate',
  'dns',
  'ipRanges',
  'l2NetworkUuid',
  'lastOpDate',
  'name',
  'networkServices',
  'state',
  'system',
  'type',
  'uuid',
  'zoneUuid',
];
const IPR_KEYS = ['createDate', 'endIp', 'gateway', 'ipRangeType', 'l3NetworkUuid', 'lastOpDate', 'name', 'netmask', 'networkCidr', 'startIp', 'uuid'];
const PROVIDER_KEYS = ['attachedL2NetworkUuids', 'createDate', 'description', 'lastOpDate', 'name', 'networkServiceTypes', 'type', 'uuid'];

t.test('networks', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const zs = s.client;
  const db = s.app.db;

  const { inventory: zone } = await zs.createZone({ name: 'zone1' });
  const providers = (await zs.queryNetworkServiceProvider({})).inventories!;
  const provider = (type: string) => providers.find((p) => p.type === type)!;
  const vr = provider('VirtualRouter');
  const flat = provider('Flat');
  const sg = provider('SecurityGroup');
  let clusterForQueries = '';

  t.test('built-in providers exist from the first start', async (t) => {
    t.same(providers.map((p) => p.type).sort(), ['Flat', 'SecurityGroup', 'VirtualRouter']);
    t.same(vr.networkServiceTypes, ['DHCP', 'DNS', 'SNAT', 'PortForwarding', 'Eip', 'LoadBalancer']);
    t.same(flat.networkServiceTypes, ['DHCP', 'Userdata']);
    t.equal(flat.name, 'Flat Network Service Provider');
    t.equal(flat.description, 'Flat Network Service Provider');
    t.same(sg.networkServiceTypes, ['SecurityGroup']);
    for (const p of providers) {
      t.same(Object.keys(p).sort(), PROVIDER_KEYS);
      t.same(p.attachedL2NetworkUuids, []);
    }
    // A second server on the same database seeds nothing twice.
    await s.startPeer();
    t.equal((await zs.queryNetworkServiceProvider({ count: true })).total, 3);
  });

  t.test('release notes §9: upgrade an L3 network from the virtual router provider to the flat provider', async (t) => {
    const { inventory: l2 } = await zs.createL2NoVlanNetwork({ name: 'l2-flat', zoneUuid: zone.uuid, physicalInterface: 'eth0' });
    const { inventory: l3 } = await zs.createL3Network({ name: 'l3-etpz', l2NetworkUuid: l2.uuid });
    await zs.addDnsToL3Network({ l3NetworkUuid: l3.uuid, dns: '8.8.8.8' });
    const { inventory: ipr } = await zs.addIpRange({
      l3NetworkUuid: l3.uuid,
      name: 'ipr-dk7p',
      startIp: '192.168.201.180',
      endIp: '192.168.201.199',
      netmask: '255.255.252.0',
      gateway: '192.168.200.1',
    });
    await zs.attachNetworkServiceToL3Network({ l3NetworkUuid: l3.uuid, networkServices: { [vr.uuid]: ['DNS', 'DHCP'] } });

    // 1. QueryNetworkServiceL3NetworkRef l3NetworkUuid=...
    const step1 = await zs.queryNetworkServiceL3NetworkRef({ q: [`l3NetworkUuid=${l3.uuid}`] });
    t.same(step1, {
      inventories: [
        { l3NetworkUuid: l3.uuid, networkServiceProviderUuid: vr.uuid, networkServiceType: 'DNS' },
        { l3NetworkUuid: l3.uuid, networkServiceProviderUuid: vr.uuid, networkServiceType: 'DHCP' },
      ],
      schema: {
        'inventories[0]': 'org.zstack.header.network.service.NetworkServiceL3NetworkRefInventory',
        'inventories[1]': 'org.zstack.header.network.service.NetworkServiceL3NetworkRefInventory',
      },
      success: true,
    });

    // 2. DetachNetworkServiceFromL3Network networkServices='{"<vr>":["DHCP","DNS"]}'
    const step2 = await zs.detachNetworkServiceFromL3Network({ l3NetworkUuid: l3.uuid, networkServices: { [vr.uuid]: ['DHCP', 'DNS'] } });
    t.equal(step2.success, true);
    const inv2 = step2.inventory!;
    t.same(Object.keys(inv2).sort(), L3_KEYS);
    t.match(inv2, {
      dns: ['8.8.8.8'],
      l2NetworkUuid: l2.uuid,
      name: 'l3-etpz',
      networkServices: [],
      state: 'Enabled',
      system: false,
      type: 'L3BasicNetwork',
      uuid: l3.uuid,
      zoneUuid: zone.uuid,
    });
    t.match(inv2.createDate, DATE);
    t.equal(inv2.ipRanges.length, 1);
    t.same(Object.keys(inv2.ipRanges[0]).sort(), IPR_KEYS);
    t.same(inv2.ipRanges[0], {
      ...ipr,
      endIp: '192.168.201.199',
      gateway: '192.168.200.1',
      l3NetworkUuid: l3.uuid,
      name: 'ipr-dk7p',
      netmask: '255.255.252.0',
      startIp: '192.168.201.180',
      networkCidr: '192.168.200.0/22',
      ipRangeType: 'Normal',
    });
    const again = await zs.detachNetworkServiceFromL3Network({ l3NetworkUuid: l3.uuid, networkServices: { [vr.uuid]: ['DHCP', 'DNS'] } });
    t.same(again.inventory, inv2, 'detaching again is idempotent');

    // 3. QueryNetworkServiceProvider type=Flat: already attached to the L2 (providers are attached on L2 creation)
    const step3 = await zs.queryNetworkServiceProvider({ q: ['type=Flat'] });
    t.equal(step3.inventories!.length, 1);
    const flatInv = step3.inventories![0];
    t.same(Object.keys(flatInv).sort(), PROVIDER_KEYS);
    t.match(flatInv, {
      attachedL2NetworkUuids: [l2.uuid],
      description: 'Flat Network Service Provider',
      name: 'Flat Network Service Provider',
      networkServiceTypes: ['DHCP', 'Userdata'],
      type: 'Flat',
      uuid: flat.uuid,
    });
    t.same(flatInv.attachedL2NetworkUuids, [l2.uuid]);

    // 4. QueryL3Network fields=l2NetworkUuid, uuid=...
    const step4 = await zs.queryL3Network({ q: [`uuid=${l3.uuid}`], fields: 'l2NetworkUuid' });
    t.same(step4, {
      inventories: [{ l2NetworkUuid: l2.uuid }],
      schema: { 'inventories[0]': 'org.zstack.header.network.l3.L3NetworkInventory' },
      success: true,
    });

    // 5. AttachNetworkServiceProviderToL2Network: already attached → succeeds with the same inventory
    const step5 = await zs.attachNetworkServiceProviderToL2Network({ l2NetworkUuid: l2.uuid, networkServiceProviderUuid: flat.uuid });
    t.same(step5, { inventory: flatInv, success: true });

    // 6. AttachNetworkServiceToL3Network networkServices='{"<flat>":["DHCP","Userdata"]}'
    const step6 = await zs.attachNetworkServiceToL3Network({ l3NetworkUuid: l3.uuid, networkServices: { [flat.uuid]: ['DHCP', 'Userdata'] } });
    t.same(Object.keys(step6.inventory!).sort(), L3_KEYS);
    t.same(step6.inventory!.networkServices, [
      { l3NetworkUuid: l3.uuid, networkServiceProviderUuid: flat.uuid, networkServiceType: 'DHCP' },
      { l3NetworkUuid: l3.uuid, networkServiceProviderUuid: flat.uuid, networkServiceType: 'Userdata' },
    ]);
    t.same({ ...step6.inventory!, networkServices: [] }, { ...inv2, lastOpDate: step6.inventory!.lastOpDate });
    const queried = (await zs.queryL3Network({ q: [`uuid=${l3.uuid}`] })).inventories![0];
    t.same(queried, step6.inventory, 'QueryL3Network maps the L3 exactly as the action replies');
    t.same(await s.app.services.networks.l3Inventory(l3.uuid), step6.inventory, 'so does services.networks.l3Inventory');
    t.same(await s.app.services.networks.providersOf(l3.uuid), [
      { providerUuid: flat.uuid, providerType: 'Flat', serviceType: 'DHCP' },
      { providerUuid: flat.uuid, providerType: 'Flat', serviceType: 'Userdata' },
    ]);
  });

  t.test('network services: upstream query-string form, provider type as key, every rule', async (t) => {
    const { inventory: l2 } = await zs.createL2VlanNetwork({ name: 'l2-v10', zoneUuid: zone.uuid, physicalInterface: 'eth1', vlan: 10 });
    const { inventory: l3 } = await zs.createL3Network({ name: 'svc', l2NetworkUuid: l2.uuid });
    await zs.addIpRange({ l3NetworkUuid: l3.uuid, name: 'r', startIp: '10.1.0.10', endIp: '10.1.0.20', netmask: '255.255.255.0', gateway: '10.1.0.1' });

    const byType = await zs.attachNetworkServiceToL3Network({ l3NetworkUuid: l3.uuid, networkServices: { VirtualRouter: ['DHCP', 'DNS', 'SNAT'] } });
    t.same(
      byType.inventory!.networkServices.map((r) => [r.networkServiceProviderUuid, r.networkServiceType]),
      [
        [vr.uuid, 'DHCP'],
        [vr.uuid, 'DNS'],
        [vr.uuid, 'SNAT'],
      ],
      'a provider type works as the key',
    );

    // Upstream's wire form: DELETE ...?networkServices.<uuid>=DHCP&networkServices.<uuid>=DNS
    const res = await http(
      s.url,
      'DELETE',
      `/zstack/v1/l3-networks/${l3.uuid}/network-services?networkServices.${vr.uuid}=DHCP&networkServices.${vr.uuid}=DNS`,
      { headers: { Authorization: `OAuth ${zs.sessionUuid}` } },
    );
    t.equal(res.status, 202);
    const done = await pollJob(res.json.location);
    t.equal(done.status, 200);
    t.same(done.json.inventory.networkServices, [{ l3NetworkUuid: l3.uuid, networkServiceProviderUuid: vr.uuid, networkServiceType: 'SNAT' }]);
    const bySvc = await zs.detachNetworkServiceFromL3Network({ l3NetworkUuid: l3.uuid, service: 'SNAT' });
    t.same(bySvc.inventory!.networkServices, [], 'service= detaches whatever provider runs it');
    const unknown = await zs.detachNetworkServiceFromL3Network({ l3NetworkUuid: l3.uuid, networkServices: { [newUuid()]: ['DHCP'] } });
    t.same(unknown.inventory!.networkServices, [], 'detaching from an unknown provider changes nothing');

    const attach = (ns: Record<string, string[]>, uuid = l3.uuid) => zs.attachNetworkServiceToL3Network({ l3NetworkUuid: uuid, networkServices: ns as never });
    await fails(t, attach({}), 400, 'SYS.1007', /networkServices/, 'empty map');
    await fails(t, attach({ [newUuid()]: ['DHCP'] }), 400, 'SYS.1007', /cannot find network service provider\[uuid:[0-9a-f]{32}\] or it provides no services/);
    await fails(t, attach({ NoSuchType: ['DHCP'] }), 400, 'SYS.1007', /cannot find network service provider\[uuid:NoSuchType\]/);
    await fails(
      t,
      attach({ [flat.uuid]: ['SNAT', 'DHCP', 'Eip'] }),
      400,
      'SYS.1007',
      new RegExp(`network service provider\\[uuid:${flat.uuid}\\] doesn't provide services\\[SNAT, Eip\\]`),
    );
    await fails(t, attach({ [vr.uuid]: [] }), 400, 'SYS.1007', /networkServices/, 'empty service list');
    await fails(t, attach({ [vr.uuid]: ['DHCP'], Flat: ['DHCP'] }), 400, 'SYS.1007', /network service\[DHCP\] is requested from more than one provider/);
    await fails(t, attach({ VirtualRouter: ['Eip'] }), 400, 'SYS.1007', /needs SNAT/, 'VR Eip without SNAT');
    const withSnat = await attach({ VirtualRouter: ['SNAT', 'PortForwarding'] });
    t.same(
      withSnat.inventory!.networkServices.map((r) => r.networkServiceType),
      ['SNAT', 'PortForwarding'],
      'SNAT in the same call is enough',
    );
    await fails(
      t,
      attach({ Flat: ['DHCP', 'Userdata'] }).then(() => attach({ VirtualRouter: ['DHCP'] })),
      503,
      'SYS.1006',
      new RegExp(`there has been a network service\\[DHCP\\] attached to L3 network\\[uuid:${l3.uuid}\\]`),
    );
    await fails(t, attach({ [vr.uuid]: ['DNS'] }, newUuid()), 404, 'SYS.1003', /L3NetworkVO/);

    // Decision 6: the provider must be attached to the L3's L2 network.
    const det = await zs.detachNetworkServiceProviderFromL2Network({ l2NetworkUuid: l2.uuid, networkServiceProviderUuid: sg.uuid });
    t.notOk(det.inventory!.attachedL2NetworkUuids.includes(l2.uuid));
    const det2 = await zs.detachNetworkServiceProviderFromL2Network({ l2NetworkUuid: l2.uuid, networkServiceProviderUuid: sg.uuid });
    t.same(det2.inventory, det.inventory, 'detaching a detached provider succeeds');
    await fails(
      t,
      attach({ SecurityGroup: ['SecurityGroup'] }),
      400,
      'SYS.1007',
      new RegExp(`network service provider\\[uuid:${sg.uuid}, type:SecurityGroup\\] is not attached to L2 network\\[uuid:${l2.uuid}\\]`),
    );
    const re = await zs.attachNetworkServiceProviderToL2Network({ l2NetworkUuid: l2.uuid, networkServiceProviderUuid: sg.uuid });
    t.ok(re.inventory!.attachedL2NetworkUuids.includes(l2.uuid));
    t.same((await attach({ SecurityGroup: ['SecurityGroup'] })).inventory!.networkServices.at(-1)!.networkServiceType, 'SecurityGroup');
    await fails(
      t,
      zs.detachNetworkServiceProviderFromL2Network({ l2NetworkUuid: l2.uuid, networkServiceProviderUuid: flat.uuid }),
      503,
      'SYS.1006',
      /still provides services\[DHCP@/,
    );
    await fails(
      t,
      zs.attachNetworkServiceProviderToL2Network({ l2NetworkUuid: l2.uuid, networkServiceProviderUuid: newUuid() }),
      404,
      'SYS.1003',
      /NetworkServiceProviderVO/,
    );
    await fails(
      t,
      zs.attachNetworkServiceProviderToL2Network({ l2NetworkUuid: newUuid(), networkServiceProviderUuid: flat.uuid }),
      404,
      'SYS.1003',
      /L2NetworkVO/,
    );

    // DHCP needs a free address for its server once VMs hold addresses.
    const { inventory: l3b } = await zs.createL3Network({ name: 'dhcp-full', l2NetworkUuid: l2.uuid });
    await zs.addIpRange({ l3NetworkUuid: l3b.uuid, name: 'one', startIp: '10.2.0.5', endIp: '10.2.0.5', netmask: '255.255.255.0', gateway: '10.2.0.1' });
    await db.transaction((tx) => s.app.services.networks.allocateIp(tx, l3b.uuid, { usedFor: 'UserVm' }));
    await fails(t, attach({ Flat: ['DHCP'] }, l3b.uuid), 503, 'SYS.1006', /not enough IPs for allocation when attaching the DHCP service/);
  });

  t.test('L3 networks: system and category, DNS, update', async (t) => {
    const { inventory: l2 } = await zs.createL2NoVlanNetwork({ name: 'l2-l3rules', zoneUuid: zone.uuid, physicalInterface: 'eth2' });
    const { inventory: sys } = await zs.createL3Network({ name: 'mgmt', l2NetworkUuid: l2.uuid, system: true });
    t.match(sys, {
      system: true,
      category: 'System',
      dns: [],
      ipRanges: [],
      networkServices: [],
      state: 'Enabled',
      type: 'L3BasicNetwork',
      zoneUuid: zone.uuid,
    });
    const pub = await zs.createL3Network({ name: 'pub', l2NetworkUuid: l2.uuid, category: 'Public', description: 'd', dnsDomain: 'zstack.local' });
    t.match(pub.inventory, { system: false, category: 'Public', description: 'd', dnsDomain: 'zstack.local' });
    await fails(
      t,
      zs.createL3Network({ name: 'x', l2NetworkUuid: l2.uuid, system: true, category: 'Private' }),
      400,
      'SYS.1007',
      /not valid combination of system and category/,
    );
    await fails(
      t,
      zs.createL3Network({ name: 'x', l2NetworkUuid: l2.uuid, category: 'System' }),
      400,
      'SYS.1007',
      /not valid combination of system and category/,
    );
    await fails(t, zs.createL3Network({ name: 'x', l2NetworkUuid: newUuid() }), 404, 'SYS.1003', /L2NetworkVO/);
    await fails(t, zs.createL3Network({ name: 'x', l2NetworkUuid: l2.uuid, dnsDomain: 'not a domain!' }), 400, 'SYS.1007', /dnsDomain/);
    await fails(t, zs.createL3Network({ name: '', l2NetworkUuid: l2.uuid }), 400, 'SYS.1007', /name/);

    const { inventory: l3 } = await zs.createL3Network({ name: 'priv', l2NetworkUuid: l2.uuid });
    t.equal(l3.category, 'Private');
    const up = await zs.updateL3Network({ uuid: l3.uuid, name: 'priv2', category: 'Public' });
    t.match(up.inventory, { name: 'priv2', category: 'Public', system: false });
    await fails(t, zs.updateL3Network({ uuid: l3.uuid, system: true } as never), 400, 'SYS.1007', /category/, 'system without category');
    await fails(t, zs.updateL3Network({ uuid: l3.uuid, system: true, category: 'Private' }), 400, 'SYS.1007', /not valid combination/);
    const toSys = await zs.updateL3Network({ uuid: l3.uuid, system: true, category: 'System' });
    t.match(toSys.inventory, { system: true, category: 'System' });
    await fails(t, zs.updateL3Network({ uuid: newUuid(), name: 'x' }), 404, 'SYS.1003', /L3NetworkVO/);

    await zs.addDnsToL3Network({ l3NetworkUuid: l3.uuid, dns: '8.8.8.8' });
    await zs.addDnsToL3Network({ l3NetworkUuid: l3.uuid, dns: '1.1.1.1' });
    const third = await zs.addDnsToL3Network({ l3NetworkUuid: l3.uuid, dns: '9.9.9.9' });
    t.same(third.inventory!.dns, ['8.8.8.8', '1.1.1.1', '9.9.9.9'], 'DNS servers in the order added');
    await fails(
      t,
      zs.addDnsToL3Network({ l3NetworkUuid: l3.uuid, dns: '1.1.1.1' }),
      503,
      'SYS.1006',
      new RegExp(`there has been a DNS\\[1.1.1.1\\] on L3 network\\[uuid:${l3.uuid}\\]`),
    );
    await fails(t, zs.addDnsToL3Network({ l3NetworkUuid: l3.uuid, dns: 'dns.example.com' }), 400, 'SYS.1007', /dns/);
    await fails(t, zs.addDnsToL3Network({ l3NetworkUuid: newUuid(), dns: '1.1.1.1' }), 404, 'SYS.1003', /L3NetworkVO/);
    const removed = await zs.removeDnsFromL3Network({ l3NetworkUuid: l3.uuid, dns: '1.1.1.1' });
    t.same(removed.inventory!.dns, ['8.8.8.8', '9.9.9.9']);
    const noop = await zs.removeDnsFromL3Network({ l3NetworkUuid: l3.uuid, dns: '1.1.1.1' });
    t.same(noop.inventory!.dns, ['8.8.8.8', '9.9.9.9'], 'removing a missing DNS succeeds');
    const after = await zs.addDnsToL3Network({ l3NetworkUuid: l3.uuid, dns: '1.1.1.1' });
    t.same(after.inventory!.dns, ['8.8.8.8', '9.9.9.9', '1.1.1.1']);
  });

  t.test('IP ranges: every rule of zstack-api.md §5.2 with a failing input', async (t) => {
    const { inventory: l2 } = await zs.createL2NoVlanNetwork({ name: 'l2-ranges', zoneUuid: zone.uuid, physicalInterface: 'eth3' });
    const { inventory: l3 } = await zs.createL3Network({ name: 'ranges', l2NetworkUuid: l2.uuid });
    const { inventory: other } = await zs.createL3Network({ name: 'ranges-other', l2NetworkUuid: l2.uuid });
    const { inventory: pub } = await zs.createL3Network({ name: 'ranges-pub', l2NetworkUuid: l2.uuid, category: 'Public' });
    const add = (p: Record<string, unknown>, l3Uuid = l3.uuid) => zs.addIpRange({ l3NetworkUuid: l3Uuid, name: 'r', netmask: '255.255.255.0', ...p } as never);

    const { inventory: first } = await add({ startIp: '10.3.0.10', endIp: '10.3.0.50', gateway: '10.3.0.1', description: 'first' });
    t.match(first, { startIp: '10.3.0.10', endIp: '10.3.0.50', gateway: '10.3.0.1', networkCidr: '10.3.0.0/24', ipRangeType: 'Normal', description: 'first' });

    await fails(t, add({ startIp: '10.3.0.60', endIp: '10.3.0.70' }), 400, 'SYS.1007', /gateway/, 'Normal range without gateway');
    await fails(
      t,
      add({ startIp: '10.9.0.60', endIp: '10.9.0.70', ipRangeType: 'AddressPool' }),
      400,
      'SYS.1007',
      /is not a public network, address pool range can not be added/,
    );
    await fails(
      t,
      add({ startIp: '224.0.0.10', endIp: '224.0.0.20', gateway: '224.0.0.1' }, other.uuid),
      400,
      'SYS.1007',
      /contains D class addresses which are for multicast/,
    );
    await fails(
      t,
      add({ startIp: '240.0.0.10', endIp: '240.0.0.20', gateway: '240.0.0.1' }, other.uuid),
      400,
      'SYS.1007',
      /contains E class addresses which are reserved/,
    );
    await fails(
      t,
      add({ startIp: '169.254.1.10', endIp: '169.254.1.20', gateway: '169.254.1.1' }, other.uuid),
      400,
      'SYS.1007',
      /contains link local addresses which are reserved/,
    );
    await fails(
      t,
      add({ startIp: '10.4.0.10', endIp: '10.4.0.20', gateway: '10.5.0.1' }, other.uuid),
      400,
      'SYS.1007',
      /the gateway\[10.5.0.1\] is not in the subnet 10.4.0.10\/255.255.255.0/,
    );
    await fails(
      t,
      add({ startIp: '10.4.0.0', endIp: '10.4.0.20', gateway: '10.4.0.254' }, other.uuid),
      400,
      'SYS.1007',
      /can not contain network address or broadcast address/,
      'start = network address',
    );
    await fails(
      t,
      add({ startIp: '10.4.0.10', endIp: '10.4.0.255', gateway: '10.4.0.1' }, other.uuid),
      400,
      'SYS.1007',
      /can not contain network address or broadcast address/,
      'end = broadcast address',
    );
    await fails(
      t,
      add({ startIp: '10.4.0.10', endIp: '10.4.0.20', gateway: '10.4.0.1', netmask: '255.0.255.0' }, other.uuid),
      400,
      'SYS.1007',
      /netmask/,
      'not a netmask',
    );
    await fails(
      t,
      add({ startIp: '10.4.0.10', endIp: '10.4.0.20', gateway: '10.4.0.1', netmask: '0.0.0.0' }, other.uuid),
      400,
      'SYS.1007',
      /netmask/,
      'netmask 0.0.0.0',
    );
    await fails(t, add({ startIp: '10.4.0.300', endIp: '10.4.0.20', gateway: '10.4.0.1' }, other.uuid), 400, 'SYS.1007', /startIp/, 'start not IPv4');
    await fails(
      t,
      add({ startIp: '10.4.0.30', endIp: '10.4.0.20', gateway: '10.4.0.1' }, other.uuid),
      400,
      'SYS.1007',
      /start ip\[10.4.0.30\] is behind end ip\[10.4.0.20\]/,
    );
    await fails(
      t,
      add({ startIp: '10.3.0.40', endIp: '10.3.0.60', gateway: '10.3.0.1' }, other.uuid),
      400,
      'SYS.1007',
      new RegExp(`overlap with ip range\\[uuid:${first.uuid}, start ip:10.3.0.10, end ip: 10.3.0.50\\]`),
      'overlap with a range of another L3 on the same L2',
    );
    await fails(t, add({ startIp: '10.3.0.5', endIp: '10.3.0.10', gateway: '10.3.0.1' }), 400, 'SYS.1007', /overlap with ip range/, 'overlap on the same L3');
    await fails(
      t,
      add({ startIp: '10.6.0.10', endIp: '10.6.0.20', gateway: '10.6.0.1' }),
      400,
      'SYS.1007',
      /multiple CIDR on the same L3 network is not allowed/,
    );
    await fails(
      t,
      add({ startIp: '10.3.0.100', endIp: '10.3.1.10', gateway: '10.3.0.1' }),
      400,
      'SYS.1007',
      /the endip\[10.3.1.10\] is not in the subnet 10.3.0.100\/255.255.255.0/,
    );
    await fails(
      t,
      add({ startIp: '10.3.0.100', endIp: '10.3.0.120', gateway: '10.3.0.110' }),
      400,
      'SYS.1007',
      /gateway\[10.3.0.110\] can not be part of range\[10.3.0.100, 10.3.0.120\]/,
    );
    await fails(
      t,
      add({ startIp: '10.3.0.100', endIp: '10.3.0.120', gateway: '10.3.0.254' }),
      400,
      'SYS.1007',
      /new add ip range gateway 10.3.0.254 is different from old gateway 10.3.0.1/,
    );
    await fails(t, add({ startIp: '10.7.0.10', endIp: '10.7.0.20', gateway: '10.7.0.1' }, newUuid()), 404, 'SYS.1003', /L3NetworkVO/);
    const second = await add({ startIp: '10.3.0.100', endIp: '10.3.0.120', gateway: '10.3.0.1' });
    t.equal(second.inventory.networkCidr, '10.3.0.0/24', 'a second range in the same CIDR with the same gateway is fine');

    // Address pools: Public L3 only, gateway = startIp, no overlap with pools (or anything) on the L2.
    const pool = await add({ startIp: '10.8.0.10', endIp: '10.8.0.20', ipRangeType: 'AddressPool' }, pub.uuid);
    t.match(pool.inventory, { gateway: '10.8.0.10', ipRangeType: 'AddressPool' });
    await fails(t, add({ startIp: '10.8.0.15', endIp: '10.8.0.30', ipRangeType: 'AddressPool' }, pub.uuid), 400, 'SYS.1007', /overlap with ip range/);

    // By CIDR: the split rule
    const cidr = (p: Record<string, unknown>, l3Uuid: string) => zs.addIpRangeByNetworkCidr({ l3NetworkUuid: l3Uuid, name: 'c', ...p } as never);
    const { inventory: c1 } = await zs.createL3Network({ name: 'cidr1', l2NetworkUuid: l2.uuid });
    const r1 = await cidr({ networkCidr: '10.20.1.0/24' }, c1.uuid);
    t.match(r1, { inventory: { startIp: '10.20.1.2', endIp: '10.20.1.254', gateway: '10.20.1.1', netmask: '255.255.255.0', networkCidr: '10.20.1.0/24' } });
    t.equal(r1.inventories!.length, 1);
    const { inventory: c2 } = await zs.createL3Network({ name: 'cidr2', l2NetworkUuid: l2.uuid });
    const r2 = await cidr({ networkCidr: '10.20.2.0/24', gateway: '10.20.2.254' }, c2.uuid);
    t.match(r2.inventory, { startIp: '10.20.2.1', endIp: '10.20.2.253', gateway: '10.20.2.254' });
    const { inventory: c3 } = await zs.createL3Network({ name: 'cidr3', l2NetworkUuid: l2.uuid });
    const r3 = await cidr({ networkCidr: '10.20.3.0/24', gateway: '10.20.3.100' }, c3.uuid);
    t.same(
      r3.inventories!.map((r) => [r.startIp, r.endIp, r.gateway]),
      [
        ['10.20.3.1', '10.20.3.99', '10.20.3.100'],
        ['10.20.3.101', '10.20.3.254', '10.20.3.100'],
      ],
      'a gateway in the middle splits the CIDR in two',
    );
    t.same(r3.inventory, r3.inventories![0]);
    const { inventory: c4 } = await zs.createL3Network({ name: 'cidr4', l2NetworkUuid: l2.uuid, category: 'Public' });
    const r4 = await cidr({ networkCidr: '10.20.4.0/24', ipRangeType: 'AddressPool' }, c4.uuid);
    t.match(r4.inventory, { startIp: '10.20.4.1', endIp: '10.20.4.254', gateway: '10.20.4.1', ipRangeType: 'AddressPool' });
    await fails(t, cidr({ networkCidr: '10.20.5.0/33' }, c4.uuid), 400, 'SYS.1007', /networkCidr/, 'unparsable CIDR');
    await fails(
      t,
      cidr({ networkCidr: '10.20.5.0/31' }, c4.uuid),
      400,
      'SYS.1007',
      /10.20.5.0\/31 is not an allowed network cidr, because it doesn't have usable ip range/,
    );
    await fails(
      t,
      cidr({ networkCidr: '10.20.5.0/24', gateway: '10.20.6.1' }, c4.uuid),
      400,
      'SYS.1007',
      /the gateway\[10.20.6.1\] is not in the subnet 10.20.5.0\/24/,
    );
    await fails(t, cidr({ networkCidr: '10.20.1.0/25' }, c4.uuid), 400, 'SYS.1007', /overlap with ip range/, 'by-CIDR overlap');
    await fails(t, cidr({ networkCidr: '10.20.3.0/24' }, c3.uuid), 400, 'SYS.1007', /overlap/);
    t.equal((await zs.queryIpRange({ q: [`l3NetworkUuid=${c3.uuid}`], count: true })).total, 2, 'a refused CIDR added nothing');

    // Deleting: the last Normal range cannot go while address pools remain.
    const { inventory: mixed } = await zs.createL3Network({ name: 'mixed', l2NetworkUuid: l2.uuid, category: 'Public' });
    const normal = await add({ startIp: '10.30.0.10', endIp: '10.30.0.20', gateway: '10.30.0.1' }, mixed.uuid);
    const mpool = await add({ startIp: '10.31.0.10', endIp: '10.31.0.20', ipRangeType: 'AddressPool' }, mixed.uuid);
    await fails(
      t,
      zs.deleteIpRange({ uuid: normal.inventory.uuid }),
      400,
      'SYS.1007',
      /can not delete the last normal ip range because there is still has address pool/,
    );
    await zs.deleteIpRange({ uuid: mpool.inventory.uuid });
    await zs.deleteIpRange({ uuid: normal.inventory.uuid });
    t.same(await zs.deleteIpRange({ uuid: normal.inventory.uuid }), { success: true }, 'deleting a missing range succeeds');
  });

  t.test('L2 networks: types, clusters, queries', async (t) => {
    const { inventory: vlan } = await zs.createL2VlanNetwork({ name: 'v100', zoneUuid: zone.uuid, physicalInterface: 'eth5', vlan: 100, description: 'vlan' });
    t.match(vlan, {
      type: 'L2VlanNetwork',
      vlan: 100,
      physicalInterface: 'eth5',
      zoneUuid: zone.uuid,
      attachedClusterUuids: [],
      description: 'vlan',
      vSwitchType: 'LinuxBridge',
    });
    t.match(vlan.createDate, DATE);
    const { inventory: novlan } = await zs.createL2NoVlanNetwork({ name: 'flat5', zoneUuid: zone.uuid, physicalInterface: 'eth5' });
    t.notOk('vlan' in novlan, 'no vlan on an L2NoVlanNetwork');
    await fails(t, zs.createL2VlanNetwork({ name: 'bad', zoneUuid: zone.uuid, physicalInterface: 'eth5', vlan: 4096 }), 400, 'SYS.1007', /vlan/);
    await fails(t, zs.createL2NoVlanNetwork({ name: 'bad', zoneUuid: newUuid(), physicalInterface: 'eth5' }), 404, 'SYS.1003', /ZoneVO/);
    await fails(t, zs.createL2NoVlanNetwork({ name: 'bad', zoneUuid: zone.uuid, physicalInterface: '' }), 400, 'SYS.1007', /physicalInterface/);
    const fixed = newUuid();
    const own = await zs.createL2NoVlanNetwork({ name: 'own', zoneUuid: zone.uuid, physicalInterface: 'eth9', resourceUuid: fixed });
    t.equal(own.inventory!.uuid, fixed);
    await fails(
      t,
      zs.createL2NoVlanNetwork({ name: 'own', zoneUuid: zone.uuid, physicalInterface: 'eth9', resourceUuid: fixed }),
      400,
      'SYS.1007',
      /resourceUuid/,
    );

    const flatNow = (await zs.queryNetworkServiceProvider({ q: ['type=Flat'] })).inventories![0];
    t.ok(flatNow.attachedL2NetworkUuids.includes(vlan.uuid) && flatNow.attachedL2NetworkUuids.includes(novlan.uuid), 'providers are attached to new L2s');

    // Clusters come from the cluster module; a row is enough here.
    const clusterUuid = newUuid();
    await db.insert(clusters).values({ uuid: clusterUuid, zoneUuid: zone.uuid, name: 'c1', hypervisorType: 'KVM' });
    const att = await zs.attachL2NetworkToCluster({ l2NetworkUuid: vlan.uuid, clusterUuid });
    t.same(att.inventory!.attachedClusterUuids, [clusterUuid]);
    await fails(
      t,
      zs.attachL2NetworkToCluster({ l2NetworkUuid: vlan.uuid, clusterUuid }),
      503,
      'SYS.1006',
      /has attached to cluster\[uuid:[0-9a-f]+\], can't attach again/,
    );
    const { inventory: sameVlan } = await zs.createL2VlanNetwork({ name: 'v100b', zoneUuid: zone.uuid, physicalInterface: 'eth5', vlan: 100 });
    await fails(
      t,
      zs.attachL2NetworkToCluster({ l2NetworkUuid: sameVlan.uuid, clusterUuid }),
      400,
      'SYS.1007',
      /with vlan\[100\] and physical interface\[eth5\]/,
    );
    const { inventory: v101 } = await zs.createL2VlanNetwork({ name: 'v101', zoneUuid: zone.uuid, physicalInterface: 'eth5', vlan: 101 });
    await zs.attachL2NetworkToCluster({ l2NetworkUuid: v101.uuid, clusterUuid });
    await zs.attachL2NetworkToCluster({ l2NetworkUuid: novlan.uuid, clusterUuid });
    const { inventory: novlan2 } = await zs.createL2NoVlanNetwork({ name: 'flat5b', zoneUuid: zone.uuid, physicalInterface: 'eth5' });
    await fails(t, zs.attachL2NetworkToCluster({ l2NetworkUuid: novlan2.uuid, clusterUuid }), 400, 'SYS.1007', /that has physical interface\[eth5\]/);
    await fails(t, zs.attachL2NetworkToCluster({ l2NetworkUuid: novlan2.uuid, clusterUuid: newUuid() }), 404, 'SYS.1003', /ClusterVO/);
    const { inventory: zone2 } = await zs.createZone({ name: 'zone2' });
    const { inventory: far } = await zs.createL2NoVlanNetwork({ name: 'far', zoneUuid: zone2.uuid, physicalInterface: 'eth7' });
    await fails(t, zs.attachL2NetworkToCluster({ l2NetworkUuid: far.uuid, clusterUuid }), 400, 'SYS.1007', /is in zone/);

    const q = async (...c: string[]) => (await zs.queryL2Network({ q: c })).inventories!.map((x) => x.name).sort();
    t.same(await q('type=L2VlanNetwork', 'physicalInterface=eth5'), ['v100', 'v100b', 'v101']);
    t.same(await q('vlan=101'), ['v101']);
    clusterForQueries = clusterUuid;
    const one = await http(s.url, 'GET', `/zstack/v1/l2-networks/${vlan.uuid}`, { headers: { Authorization: `OAuth ${zs.sessionUuid}` } });
    t.same(
      one.json?.inventories?.map((l: { uuid: string }) => l.uuid),
      [vlan.uuid],
      'GET /l2-networks/{uuid} is the query by uuid',
    );

    const hooked: string[] = [];
    s.app.services.networks.onL2DetachFromCluster(async (l2Uuid, c) => void hooked.push(`${l2Uuid}@${c}`));
    const det = await zs.detachL2NetworkFromCluster({ l2NetworkUuid: vlan.uuid, clusterUuid });
    t.same(det.inventory!.attachedClusterUuids, []);
    t.same(hooked, [`${vlan.uuid}@${clusterUuid}`], 'the VM module hook runs before the detach');
    await fails(t, zs.detachL2NetworkFromCluster({ l2NetworkUuid: vlan.uuid, clusterUuid }), 503, 'SYS.1006', /has not attached to cluster/);
  });

  // Joins through expanded fields (zstack-api.md §1.8).
  t.test('expanded queries', async (t) => {
    const l3q = async (...c: string[]) => (await zs.queryL3Network({ q: c })).inventories!.map((x) => x.name).sort();
    t.same(await l3q('l2Network.physicalInterface=eth2', 'category=Public'), ['pub']);
    t.same(await l3q('zone.name=zone1', 'l2Network.name=l2-l3rules', 'system=true'), ['mgmt', 'priv2']);
    t.same(await l3q('serviceProvider.type=Flat', 'name=l3-etpz'), ['l3-etpz']);
    t.same(await l3q('ipRanges.startIp=192.168.201.180'), ['l3-etpz']);
    t.same(await l3q('networkServices.networkServiceType=Userdata', 'name=l3-etpz'), ['l3-etpz']);
    t.same(await l3q('usedIp.usedFor=UserVm', 'name=dhcp-full'), ['dhcp-full']);
    const byL3 = await zs.queryIpRange({ q: ['l3Network.name=ranges'], sort: '+startIp' });
    t.same(
      byL3.inventories!.map((r) => r.startIp),
      ['10.3.0.10', '10.3.0.100'],
    );
    const l2q = async (...c: string[]) => (await zs.queryL2Network({ q: c })).inventories!.map((x) => x.name).sort();
    t.same(await l2q(`clusterRef.clusterUuid=${clusterForQueries}`), ['flat5', 'v101']);
    t.same(await l2q('cluster.name=c1'), ['flat5', 'v101'], 'alias cluster → clusterRef.cluster');
    t.same(await l2q('zone.name=zone2'), ['far']);
    t.same(await l2q('l3Network.name=svc'), ['l2-v10']);
    const pq = await zs.queryNetworkServiceProvider({ q: ['l2Network.name=l2-v10', 'type=SecurityGroup'] });
    t.same(
      pq.inventories!.map((p) => p.type),
      ['SecurityGroup'],
    );
    const rq = await zs.queryNetworkServiceL3NetworkRef({ q: ['serviceProvider.type=Flat', 'l3Network.name=l3-etpz'] });
    t.same(
      rq.inventories!.map((r) => r.networkServiceType),
      ['DHCP', 'Userdata'],
    );
  });

  t.test('deletion cascade: L2 → L3 → IP ranges → used IPs', async (t) => {
    const { inventory: l2 } = await zs.createL2NoVlanNetwork({ name: 'doomed', zoneUuid: zone.uuid, physicalInterface: 'eth8' });
    const { inventory: l3 } = await zs.createL3Network({ name: 'doomed-l3', l2NetworkUuid: l2.uuid });
    await zs.addDnsToL3Network({ l3NetworkUuid: l3.uuid, dns: '8.8.4.4' });
    await zs.attachNetworkServiceToL3Network({ l3NetworkUuid: l3.uuid, networkServices: { Flat: ['DHCP'] } });
    const { inventory: r1 } = await zs.addIpRange({
      l3NetworkUuid: l3.uuid,
      name: 'a',
      startIp: '10.40.0.10',
      endIp: '10.40.0.20',
      netmask: '255.255.255.0',
      gateway: '10.40.0.1',
    });
    await zs.addIpRange({ l3NetworkUuid: l3.uuid, name: 'b', startIp: '10.40.0.30', endIp: '10.40.0.40', netmask: '255.255.255.0', gateway: '10.40.0.1' });
    const nets = s.app.services.networks;
    for (let i = 0; i < 6; i++) await db.transaction((tx) => nets.allocateIp(tx, l3.uuid, { usedFor: 'UserVm' }));
    const used = async (where = eq(usedIps.l3NetworkUuid, l3.uuid)) => (await db.select().from(usedIps).where(where)).length;
    t.equal(await used(), 6);

    const inR1 = await used(eq(usedIps.ipRangeUuid, r1.uuid));
    await zs.deleteIpRange({ uuid: r1.uuid });
    t.equal(await used(), 6 - inR1, 'deleting a range releases its used IPs');
    t.equal(await used(eq(usedIps.ipRangeUuid, r1.uuid)), 0);

    await zs.deleteL2Network({ uuid: l2.uuid });
    t.same((await zs.queryL3Network({ q: [`uuid=${l3.uuid}`] })).inventories, []);
    t.same((await zs.queryIpRange({ q: [`l3NetworkUuid=${l3.uuid}`] })).inventories, []);
    t.same((await zs.queryNetworkServiceL3NetworkRef({ q: [`l3NetworkUuid=${l3.uuid}`] })).inventories, []);
    t.equal(await used(), 0, 'and deleting the L2 releases the rest');
    const flatNow = (await zs.queryNetworkServiceProvider({ q: ['type=Flat'] })).inventories![0];
    t.notOk(flatNow.attachedL2NetworkUuids.includes(l2.uuid));
    t.same(await zs.deleteL2Network({ uuid: l2.uuid }), { success: true }, 'deleting a missing L2 succeeds');
    t.same(await zs.deleteL3Network({ uuid: l3.uuid }), { success: true }, 'deleting a missing L3 succeeds');

    // L3 delete on its own; a zone delete takes its L2s along.
    const { inventory: l2b } = await zs.createL2NoVlanNetwork({ name: 'doomed2', zoneUuid: zone.uuid, physicalInterface: 'eth8' });
    const { inventory: l3b } = await zs.createL3Network({ name: 'doomed-l3b', l2NetworkUuid: l2b.uuid });
    await zs.addIpRangeByNetworkCidr({ l3NetworkUuid: l3b.uuid, name: 'c', networkCidr: '10.41.0.0/24' });
    await db.transaction((tx) => nets.allocateIp(tx, l3b.uuid, { usedFor: 'DHCP' }));
    await zs.deleteL3Network({ uuid: l3b.uuid });
    t.equal((await db.select().from(l3Networks).where(eq(l3Networks.uuid, l3b.uuid))).length, 0);
    t.equal(await used(eq(usedIps.l3NetworkUuid, l3b.uuid)), 0);
    const { inventory: zone3 } = await zs.createZone({ name: 'zone3' });
    const { inventory: l2c } = await zs.createL2NoVlanNetwork({ name: 'z3', zoneUuid: zone3.uuid, physicalInterface: 'eth0' });
    const { inventory: l3c } = await zs.createL3Network({ name: 'z3-l3', l2NetworkUuid: l2c.uuid });
    await zs.addIpRange({ l3NetworkUuid: l3c.uuid, name: 'a', startIp: '10.42.0.10', endIp: '10.42.0.20', netmask: '255.255.255.0', gateway: '10.42.0.1' });
    await zs.deleteZone({ uuid: zone3.uuid });
    t.same((await zs.queryL2Network({ q: [`uuid=${l2c.uuid}`] })).inventories, []);
    t.equal((await db.select().from(ipRanges).where(eq(ipRanges.l3NetworkUuid, l3c.uuid))).length, 0);
  });

  t.test('IP allocator', async (t) => {
    const nets = s.app.services.networks;
    const { inventory: l2 } = await zs.createL2NoVlanNetwork({ name: 'alloc', zoneUuid: zone.uuid, physicalInterface: 'eth10' });
    const { inventory: l3 } = await zs.createL3Network({ name: 'alloc', l2NetworkUuid: l2.uuid });
    const { inventory: range } = await zs
      .addIpRangeByNetworkCidr({ l3NetworkUuid: l3.uuid, name: 'c', networkCidr: '10.50.0.0/24' })
      .then((r) => ({ inventory: r.inventory! }));
    t.match(range, { startIp: '10.50.0.2', endIp: '10.50.0.254', gateway: '10.50.0.1' });
    const alloc = (opts: Parameters<typeof nets.allocateIp>[2] = { usedFor: 'UserVm' }, l3Uuid = l3.uuid) =>
      db.transaction((tx) => nets.allocateIp(tx, l3Uuid, opts));

    // 200 concurrent allocations, each in its own transaction.
    const got = await Promise.all(Array.from({ length: 200 }, () => alloc()));
    t.equal(new Set(got.map((g) => g.ip)).size, 200, '200 distinct addresses');
    t.equal(new Set(got.map((g) => g.usedIpUuid)).size, 200);
    const [{ n }] = (
      (await db.execute(sql`SELECT count(*)::int AS n FROM used_ips WHERE l3_network_uuid = ${l3.uuid}`)) as unknown as { rows: Array<{ n: number }> }
    ).rows;
    t.equal(n, 200, 'used_ips holds exactly 200 rows');
    for (const g of got) {
      t.equal(g.netmask, '255.255.255.0');
      t.equal(g.gateway, '10.50.0.1');
      t.equal(g.ipRangeUuid, range.uuid);
      const last = Number(g.ip.split('.')[3]);
      if (!(last >= 2 && last <= 254 && g.ip.startsWith('10.50.0.'))) t.fail(`${g.ip} is outside the range`);
    }

    // Fill the rest (53 addresses), then the network is full: L3.1000.
    const rest = await Promise.all(Array.from({ length: 53 }, () => alloc()));
    t.equal(new Set([...got, ...rest].map((g) => g.ip)).size, 253);
    const full = await alloc().catch((e) => e);
    t.equal(full.error?.code, 'L3.1000');
    t.equal(full.httpStatus, 503);
    t.match(full.error.details, new RegExp(`no IP available on L3 network\\[uuid:${l3.uuid}\\]`));
    t.equal((await alloc({ usedFor: 'UserVm', strategy: 'FirstAvailable' }).catch((e) => e)).error?.code, 'L3.1000');

    // Release, then a static IP and FirstAvailable.
    const freed = got.find((g) => g.ip === '10.50.0.77') ?? got[0];
    await db.transaction((tx) => nets.releaseIp(tx, freed.usedIpUuid));
    await db.transaction((tx) => nets.releaseIp(tx, freed.usedIpUuid));
    const again = await alloc({ usedFor: 'UserVm', staticIp: freed.ip });
    t.equal(again.ip, freed.ip, 'a released address can be taken as a static IP');
    const staticUsed = await alloc({ usedFor: 'UserVm', staticIp: freed.ip }).catch((e) => e);
    t.equal(staticUsed.error?.code, 'SYS.1007');
    t.match(staticUsed.error.details, /is already used/);
    const staticOut = await alloc({ usedFor: 'UserVm', staticIp: '10.50.1.5' }).catch((e) => e);
    t.equal(staticOut.error?.code, 'SYS.1007');
    t.match(staticOut.error.details, /is not in any IP range/);
    const staticGw = await alloc({ usedFor: 'UserVm', staticIp: '10.50.0.1' }).catch((e) => e);
    t.equal(staticGw.error?.code, 'SYS.1007', 'the gateway is not handed out to user VMs');
    const vrGw = await alloc({ usedFor: 'ApplianceVm', staticIp: '10.50.0.1' });
    t.match(vrGw, { ip: '10.50.0.1', gateway: '10.50.0.1', ipRangeUuid: range.uuid }, 'an appliance VM may take the gateway address');
    t.equal((await alloc({ usedFor: 'ApplianceVm', staticIp: '10.50.0.1' }).catch((e) => e)).error?.code, 'SYS.1007', 'but only once');

    const { inventory: l3f } = await zs.createL3Network({ name: 'first', l2NetworkUuid: l2.uuid });
    await zs.addIpRange({ l3NetworkUuid: l3f.uuid, name: 'r', startIp: '10.51.0.10', endIp: '10.51.0.12', netmask: '255.255.255.0', gateway: '10.51.0.1' });
    const f1 = await alloc({ usedFor: 'UserVm', strategy: 'FirstAvailable' }, l3f.uuid);
    const f2 = await alloc({ usedFor: 'ApplianceVm', strategy: 'FirstAvailable' }, l3f.uuid);
    t.same([f1.ip, f2.ip], ['10.51.0.10', '10.51.0.11']);
    await db.transaction((tx) => nets.releaseIp(tx, f1.usedIpUuid));
    t.equal((await alloc({ usedFor: 'UserVm', strategy: 'FirstAvailable' }, l3f.uuid)).ip, '10.51.0.10', 'the lowest free address');

    // Rolled back with its transaction: nothing stays reserved.
    const { inventory: l3r } = await zs.createL3Network({ name: 'rollback', l2NetworkUuid: l2.uuid });
    await zs.addIpRange({ l3NetworkUuid: l3r.uuid, name: 'r', startIp: '10.52.0.10', endIp: '10.52.0.10', netmask: '255.255.255.0', gateway: '10.52.0.1' });
    await db
      .transaction(async (tx) => {
        await nets.allocateIp(tx, l3r.uuid, { usedFor: 'UserVm' });
        throw new Error('later step failed');
      })
      .catch(() => undefined);
    t.equal((await alloc({ usedFor: 'UserVm' }, l3r.uuid)).ip, '10.52.0.10');
    // An L3 without ranges has no IP to give.
    const { inventory: empty } = await zs.createL3Network({ name: 'empty', l2NetworkUuid: l2.uuid });
    t.equal((await alloc({ usedFor: 'UserVm' }, empty.uuid).catch((e) => e)).error?.code, 'L3.1000');

    // Contended: 40 allocations race for 30 addresses; exactly 30 win, the rest get L3.1000.
    const { inventory: l3c } = await zs.createL3Network({ name: 'contended', l2NetworkUuid: l2.uuid });
    await zs.addIpRange({ l3NetworkUuid: l3c.uuid, name: 'r', startIp: '10.53.0.1', endIp: '10.53.0.30', netmask: '255.255.255.0', gateway: '10.53.0.254' });
    const results = await Promise.allSettled(
      Array.from({ length: 40 }, (_, i) => alloc({ usedFor: 'UserVm', strategy: i % 2 ? 'FirstAvailable' : 'Random' }, l3c.uuid)),
    );
    const won = results.filter((r) => r.status === 'fulfilled') as Array<PromiseFulfilledResult<{ ip: string }>>;
    t.equal(won.length, 30);
    t.equal(new Set(won.map((w) => w.value.ip)).size, 30);
    t.ok(results.filter((r) => r.status === 'rejected').every((r) => (r as PromiseRejectedResult).reason.error?.code === 'L3.1000'));

    // An address another transaction is inserting is skipped, not waited for; when nothing else is left, the
    // allocation waits for that transaction and gets the address if it rolls back.
    const { inventory: l3w } = await zs.createL3Network({ name: 'in-flight', l2NetworkUuid: l2.uuid });
    await zs.addIpRange({ l3NetworkUuid: l3w.uuid, name: 'r', startIp: '10.54.0.10', endIp: '10.54.0.11', netmask: '255.255.255.0', gateway: '10.54.0.1' });
    let release!: () => void;
    const hold = new Promise<void>((r) => (release = r));
    let held = '';
    const holder = db
      .transaction(async (tx) => {
        held = (await nets.allocateIp(tx, l3w.uuid, { usedFor: 'UserVm' })).ip;
        await hold;
        throw new Error('roll back');
      })
      .catch(() => undefined);
    while (!held) await new Promise((r) => setTimeout(r, 5));
    const t0 = Date.now();
    const other = await alloc({ usedFor: 'UserVm' }, l3w.uuid);
    t.not(other.ip, held, 'the in-flight address is skipped');
    t.ok(Date.now() - t0 < 2000, 'without waiting for the other transaction');
    const waiting = alloc({ usedFor: 'UserVm' }, l3w.uuid);
    setTimeout(release, 200);
    t.equal((await waiting).ip, held, 'the last address, freed by the rollback');
    await holder;

    const mac = nets.generateMac(7);
    t.match(mac, /^fa(:[0-9a-f]{2}){4}:07$/);
    t.not(nets.generateMac(0), nets.generateMac(0));
  });
});

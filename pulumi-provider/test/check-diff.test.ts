// The provider's local rules, no server: check (per-property failures, defaults, normalisation, preview unknowns)
// and diff (replace vs update in place, sets vs ordered lists, unknowns).
import t from 'tap';
import { check, diff, util } from '../src/runtime/index.js';

const U = util.UNKNOWN;
const uuid = (n: number) => n.toString(16).padStart(32, '0');
const props = (failures: { property: string }[]) => failures.map((f) => f.property).sort();

t.test('IPv4 helpers', async (t) => {
  t.equal(util.parseIpv4('192.168.0.1'), 0xc0a80001);
  t.equal(util.parseIpv4('256.1.1.1'), undefined);
  t.equal(util.parseIpv4('01.1.1.1'), undefined, 'no leading zeros');
  t.equal(util.parseIpv4('1.2.3'), undefined);
  t.equal(util.netmaskPrefix('255.255.252.0'), 22);
  t.equal(util.netmaskPrefix('255.0.255.0'), undefined, 'not contiguous');
  t.equal(util.netmaskPrefix('0.0.0.0'), undefined);
  t.equal(util.parseCidr('10.1.2.3/8')?.canonical, '10.0.0.0/8');
  t.equal(util.parseCidr('10.0.0.0/33'), undefined);
  t.same(util.orderLike(['Userdata', 'DHCP', 'DNS'], ['DHCP', 'Userdata']), ['DHCP', 'Userdata', 'DNS']);
});

t.test('L2Network check', async (t) => {
  const ok = check('L2Network', {}, { name: 'l2', zoneUuid: uuid(1), physicalInterface: 'eth0', clusterUuids: [uuid(3), uuid(2)] });
  t.same(ok.failures, []);
  t.match(ok.inputs, { type: 'L2NoVlanNetwork', vSwitchType: 'LinuxBridge', clusterUuids: [uuid(2), uuid(3)] }, 'defaults; clusters sorted');
  t.equal(check('L2Network', {}, { name: 'l2', zoneUuid: uuid(1), physicalInterface: 'eth0', vlan: 100 }).inputs.type, 'L2VlanNetwork', 'type from vlan');
  const bad = check('L2Network', {}, { name: '', zoneUuid: 'zone-1', physicalInterface: 'eth0', vlan: 5000, clusterUuids: ['x', uuid(2), uuid(2)] });
  t.same(props(bad.failures), ['clusterUuids[0]', 'clusterUuids[2]', 'name', 'vlan', 'zoneUuid']);
  t.match(bad.failures.find((f) => f.property === 'vlan')?.reason, /between 1 and 4094/);
  t.match(check('L2Network', {}, { name: 'l2', zoneUuid: uuid(1), physicalInterface: 'eth0', type: 'L2VlanNetwork' }).failures, [
    { property: 'vlan', reason: /required/ },
  ]);
  t.match(check('L2Network', {}, { name: 'l2', zoneUuid: uuid(1), physicalInterface: 'eth0', type: 'L2NoVlanNetwork', vlan: 10 }).failures, [
    { property: 'vlan' },
  ]);
  const preview = check('L2Network', {}, { name: 'l2', zoneUuid: U, physicalInterface: 'eth0', vlan: U });
  t.same(preview.failures, [], 'unknowns pass in preview');
  t.equal(preview.inputs.type, undefined, 'the type waits for the vlan');
});

t.test('L3Network check', async (t) => {
  const ok = check('L3Network', {}, { name: 'l3', l2NetworkUuid: uuid(1), dns: ['8.8.8.8'], dnsDomain: 'zstack.local', __provider: 'x' });
  t.same(ok.failures, []);
  t.match(ok.inputs, { type: 'L3BasicNetwork', system: false, category: 'Private', __provider: 'x' });
  t.equal(check('L3Network', {}, { name: 'l3', l2NetworkUuid: uuid(1), system: true }).inputs.category, 'System');
  const bad = check(
    'L3Network',
    {},
    { name: 'l3', l2NetworkUuid: uuid(1), system: true, category: 'Public', dns: ['8.8.8.8', 'dns.google', '8.8.8.8'], dnsDomain: 'bad domain' },
  );
  t.same(props(bad.failures), ['category', 'dnsDomain', 'dns[1]', 'dns[2]']);
  const adopt = check('L3Network', {}, { name: 'l3', l2NetworkUuid: uuid(1), adoptUuid: uuid(9) });
  t.same(adopt.failures, []);
  t.notOk('category' in adopt.inputs || 'system' in adopt.inputs, 'no defaults forced on an adopted network');
  t.match(check('L3Network', {}, { name: 'l3', l2NetworkUuid: uuid(1), adoptUuid: 'nope' }).failures, [{ property: 'adoptUuid' }]);
  t.same(check('L3Network', {}, { name: U, l2NetworkUuid: U, dns: [U, '1.1.1.1'] }).failures, []);
});

t.test('IpRange check', async (t) => {
  const cidr = check('IpRange', {}, { name: 'r', l3NetworkUuid: uuid(1), networkCidr: '192.168.10.77/24' });
  t.same(cidr.failures, []);
  t.equal(cidr.inputs.networkCidr, '192.168.10.0/24', 'CIDR canonicalised (no perpetual diff)');
  t.equal(cidr.inputs.ipRangeType, 'Normal');
  t.same(
    check('IpRange', {}, { name: 'r', l3NetworkUuid: uuid(1), networkCidr: '192.168.10.0/24', gateway: '192.168.10.254' }).failures,
    [],
    'gateway = last host',
  );
  t.match(check('IpRange', {}, { name: 'r', l3NetworkUuid: uuid(1), networkCidr: '192.168.10.0/24', gateway: '192.168.10.100' }).failures, [
    { property: 'gateway', reason: /middle/ },
  ]);
  t.match(check('IpRange', {}, { name: 'r', l3NetworkUuid: uuid(1), networkCidr: '192.168.10.0/31' }).failures, [
    { property: 'networkCidr', reason: /usable/ },
  ]);
  t.match(check('IpRange', {}, { name: 'r', l3NetworkUuid: uuid(1), networkCidr: '192.168.10.0/24', startIp: '192.168.10.5' }).failures, [
    { property: 'startIp', reason: /either/ },
  ]);
  const seed = {
    name: 'ipr-dk7p',
    l3NetworkUuid: uuid(1),
    startIp: '192.168.201.180',
    endIp: '192.168.201.199',
    netmask: '255.255.252.0',
    gateway: '192.168.200.1',
  };
  t.same(check('IpRange', {}, seed).failures, [], "the seed's range");
  t.same(props(check('IpRange', {}, { ...seed, startIp: '192.168.201.200' }).failures), ['endIp'], 'end before start');
  t.same(props(check('IpRange', {}, { ...seed, gateway: '192.168.201.185' }).failures), ['gateway'], 'gateway inside the range');
  t.same(props(check('IpRange', {}, { ...seed, gateway: '10.0.0.1' }).failures), ['gateway'], 'gateway outside the subnet');
  t.same(props(check('IpRange', {}, { ...seed, netmask: '255.0.255.0' }).failures), ['netmask']);
  t.same(
    props(check('IpRange', {}, { ...seed, startIp: '192.168.200.0', endIp: '192.168.200.10', gateway: '192.168.200.20' }).failures),
    ['startIp'],
    'network address',
  );
  t.same(props(check('IpRange', {}, { ...seed, endIp: '192.168.203.255' }).failures), ['endIp'], 'broadcast address');
  t.same(props(check('IpRange', {}, { ...seed, gateway: undefined }).failures), ['gateway'], 'Normal ranges need a gateway');
  t.same(check('IpRange', {}, { ...seed, gateway: undefined, ipRangeType: 'AddressPool' }).failures, [], 'address pools do not');
  t.same(props(check('IpRange', {}, { name: 'r', l3NetworkUuid: uuid(1) }).failures), ['endIp', 'gateway', 'netmask', 'startIp']);
});

t.test('attachments check', async (t) => {
  const ok = check(
    'NetworkServiceAttachment',
    {},
    { l3NetworkUuid: uuid(1), providerUuid: uuid(2), services: ['DHCP', 'Userdata'], detachProviders: ['VirtualRouter'] },
  );
  t.same(ok.failures, []);
  const bad = check(
    'NetworkServiceAttachment',
    {},
    { l3NetworkUuid: uuid(1), providerUuid: uuid(2), services: ['DHCP', 'Dhcp', 'DHCP'], detachProviders: [uuid(2)] },
  );
  t.same(props(bad.failures), ['detachProviders', 'services[1]', 'services[2]']);
  t.match(bad.failures.find((f) => f.property === 'services[1]')?.reason, /unknown network service type "Dhcp"/);
  t.match(check('NetworkServiceAttachment', {}, { l3NetworkUuid: uuid(1), providerUuid: uuid(2), services: [] }).failures, [
    { property: 'services', reason: /empty/ },
  ]);
  t.match(check('NetworkServiceAttachment', {}, { l3NetworkUuid: uuid(1), providerUuid: uuid(2) }).failures, [{ property: 'services', reason: /required/ }]);
  t.same(props(check('NetworkServiceProviderAttachment', {}, { l2NetworkUuid: 'x', providerUuid: U }).failures), ['l2NetworkUuid']);
});

t.test('diff: replace vs update in place', async (t) => {
  const l3Old = {
    uuid: uuid(5),
    name: 'l3',
    l2NetworkUuid: uuid(1),
    type: 'L3BasicNetwork',
    category: 'Private',
    system: false,
    dns: ['8.8.8.8'],
    state: 'Enabled',
  };
  const l3New = { name: 'l3', l2NetworkUuid: uuid(1), type: 'L3BasicNetwork', category: 'Private', system: false, dns: ['8.8.8.8'] };
  t.same(diff('L3Network', uuid(5), l3Old, l3New), { changes: false, replaces: [], deleteBeforeReplace: false }, 'no change');
  t.same(
    diff('L3Network', uuid(5), l3Old, { ...l3New, name: 'x', dns: ['1.1.1.1'] }),
    { changes: true, replaces: [], deleteBeforeReplace: false },
    'update in place',
  );
  t.same(diff('L3Network', uuid(5), l3Old, { ...l3New, l2NetworkUuid: uuid(2) }).replaces, ['l2NetworkUuid']);
  t.same(diff('L3Network', uuid(5), l3Old, { ...l3New, l2NetworkUuid: U }).replaces, ['l2NetworkUuid'], 'unknown replace key (preview)');
  t.equal(diff('L3Network', uuid(5), l3Old, { ...l3New, dns: ['8.8.8.8', U] }).changes, true, 'nested unknown');
  t.equal(diff('L3Network', uuid(5), l3Old, { ...l3New, dns: undefined, description: undefined }).changes, false, 'left out = not managed');
  t.equal(diff('L3Network', uuid(5), { ...l3Old, dns: ['1.1.1.1', '8.8.8.8'] }, { ...l3New, dns: ['8.8.8.8', '1.1.1.1'] }).changes, true, 'DNS order matters');

  const svc = { l3NetworkUuid: uuid(1), providerUuid: uuid(2), services: ['Userdata', 'DHCP'] };
  t.equal(diff('NetworkServiceAttachment', 'x', svc, { ...svc, services: ['DHCP', 'Userdata'] }).changes, false, 'services are a set');
  t.same(diff('NetworkServiceAttachment', 'x', svc, { ...svc, services: ['DHCP'] }), { changes: true, replaces: [], deleteBeforeReplace: false });
  t.same(diff('NetworkServiceAttachment', 'x', svc, { ...svc, providerUuid: uuid(3) }), {
    changes: true,
    replaces: ['providerUuid'],
    deleteBeforeReplace: true,
  });

  const range = { l3NetworkUuid: uuid(1), name: 'r', networkCidr: '10.0.0.0/24', startIp: '10.0.0.2', endIp: '10.0.0.254', gateway: '10.0.0.1' };
  t.equal(diff('IpRange', 'x', range, { l3NetworkUuid: uuid(1), name: 'r', networkCidr: '10.0.0.0/24' }).changes, false, 'computed bounds are not inputs');
  t.same(diff('IpRange', 'x', range, { l3NetworkUuid: uuid(1), name: 'r', networkCidr: '10.0.1.0/24' }), {
    changes: true,
    replaces: ['networkCidr'],
    deleteBeforeReplace: true,
  });

  const l2 = { name: 'l2', zoneUuid: uuid(1), physicalInterface: 'eth0', type: 'L2NoVlanNetwork', vSwitchType: 'LinuxBridge', clusterUuids: [uuid(7)] };
  t.same(diff('L2Network', 'x', l2, { ...l2, clusterUuids: [uuid(7), uuid(8)] }).replaces, [], 'clusters in place');
  t.same(diff('L2Network', 'x', l2, { ...l2, physicalInterface: 'eth1' }), { changes: true, replaces: ['physicalInterface'], deleteBeforeReplace: true });
  t.throws(() => check('Nope' as 'L2Network', {}, {}), /unknown ZStack resource kind/);
});

t.test('retries and error messages', async (t) => {
  const { retry, isTransient, explain } = await import('../src/runtime/client.js');
  const { ZStackError } = await import('@zstack-ts/sdk');
  const conflict = new ZStackError({ code: 'VM.1000', description: 'state' }, 409, 'DeleteL3Network');
  const invalid = new ZStackError({ code: 'SYS.1007', description: 'bad', details: 'name is too long' }, 400, 'CreateL3Network');
  const down = new ZStackError({ code: 'SDK.1000', description: 'unreachable' }, 0);
  t.ok(isTransient(conflict) && isTransient(Object.assign(new Error('reset'), { code: 'ECONNRESET' })));
  t.notOk(isTransient(invalid), 'validation errors are final');
  t.notOk(isTransient(down), 'the SDK already retried what was safe to');
  let n = 0;
  t.equal(await retry(async () => (++n < 3 ? Promise.reject(conflict) : 'done'), { baseMs: 1 }), 'done');
  t.equal(n, 3, 'retried twice');
  n = 0;
  await t.rejects(
    retry(async () => (++n, Promise.reject(invalid)), { baseMs: 1 }),
    invalid,
  );
  t.equal(n, 1, 'not retried');
  n = 0;
  await t.rejects(
    retry(async () => (++n, Promise.reject(conflict)), { baseMs: 1, attempts: 3 }),
    conflict,
  );
  t.equal(n, 3, 'gives up with the last error');
  const failed = new ZStackError(
    { code: 'SYS.1006', description: 'failed', details: 'job failed', cause: { code: 'HOST.1010', description: 'x', details: 'host h1 is disconnected' } },
    503,
    'AddIpRange',
  );
  const e = explain(failed, 'adding IP range "r"');
  t.match(e.message, /^adding IP range "r": AddIpRange: SYS.1006 job failed \(cause: HOST.1010 host h1 is disconnected\)$/, 'what, the API and the root cause');
  t.match(explain(new Error('boom'), 'x').message, 'x: boom');
});

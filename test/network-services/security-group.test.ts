// Security groups through the SDK on real PostgreSQL and the simulator agent: lifecycle and queries, upstream 1.1's
// rule validation, NIC membership rules, the rule sets each host holds (simulator state) as rules, states, members
// and VMs change, a failed host refreshed when it reconnects, cascades, and what a tenant may see and do.
import t from 'tap';
import { createHash } from 'node:crypto';
import { startServer, AGENT_SECRET, type TestServer } from '../lib/harness.js';
import { buildWorld, type World } from '../lib/world.js';
import { until } from '../lib/wait.js';
import { ZStackClient } from '../../sdk/src/index.js';
import { ipRanges } from '../../server/src/security-group/service.js';
import { fails } from '../lib/fails.js';

async function sim(s: TestServer, path: string, body: object): Promise<any> {
  const res = await fetch(s.sim.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${AGENT_SECRET}` },
    body: JSON.stringify(body),
  });
  return res.json();
}

interface RuleSet {
  vmNicUuid: string;
  actionCode: string;
  rules: Array<{ type: string; protocol: string; startPort: number; endPort: number; allowedCidr: string; allowedInternalIpRange?: string[] }>;
}
/** What the host holds now: NIC uuid → its rule set. */
async function applied(s: TestServer, hostUuid: string): Promise<Map<string, RuleSet>> {
  const r = await sim(s, '/simulator/hosts/securitygroup', { hostUuid });
  return new Map(((r.ruleSets ?? []) as RuleSet[]).map((x) => [x.vmNicUuid, x]));
}
const ports = (set?: RuleSet) => (set?.rules ?? []).map((r) => `${r.type}/${r.protocol}/${r.startPort}-${r.endPort}/${r.allowedCidr}`).sort();

interface Env {
  s: TestServer;
  zs: ZStackClient;
  world: World;
  sgProvider: string;
}

async function setup(t: { teardown(fn: () => unknown): void }): Promise<Env> {
  const s = await startServer();
  t.teardown(() => s.close());
  const zs = s.client;
  const world = await buildWorld(zs, { virtualRouter: false });
  const sgProvider = (await zs.queryNetworkServiceProvider({ q: ['type=SecurityGroup'] })).inventories![0].uuid;
  await zs.attachNetworkServiceProviderToL2Network({ networkServiceProviderUuid: sgProvider, l2NetworkUuid: world.l2NetworkUuid });
  await zs.attachNetworkServiceToL3Network({ l3NetworkUuid: world.l3NetworkUuid, networkServices: { [sgProvider]: ['SecurityGroup'] } });
  return { s, zs, world, sgProvider };
}

const vm = async (env: Env, name: string, extra: Record<string, unknown> = {}) =>
  (
    await env.zs.createVmInstance({
      name,
      instanceOfferingUuid: env.world.instanceOfferingUuid,
      imageUuid: env.world.imageUuid,
      l3NetworkUuids: [env.world.l3NetworkUuid],
      ...extra,
    } as never)
  ).inventory;

t.test('lifecycle, queries and upstream 1.1 rule validation', async (t) => {
  const env = await setup(t);
  const { zs } = env;
  const sg = (await zs.createSecurityGroup({ name: 'web', description: 'web servers' })).inventory;
  t.match(sg, { name: 'web', description: 'web servers', state: 'Enabled', rules: [], attachedL3NetworkUuids: [] });

  const added = (
    await zs.addSecurityGroupRule({
      securityGroupUuid: sg.uuid,
      rules: [
        { type: 'Ingress', protocol: 'TCP', startPort: 22 },
        { type: 'Ingress', protocol: 'UDP', startPort: 200, endPort: 100, allowedCidr: '10.0.0.0/8' },
        { type: 'Egress', protocol: 'ICMP', startPort: -1, endPort: -1 },
      ],
    })
  ).inventory;
  t.same(
    added.rules.map((r) => [r.type, r.protocol, r.startPort, r.endPort, r.allowedCidr]),
    [
      ['Ingress', 'TCP', 22, 22, '0.0.0.0/0'],
      ['Ingress', 'UDP', 100, 200, '10.0.0.0/8'],
      ['Egress', 'ICMP', -1, -1, '0.0.0.0/0'],
    ],
    'endPort defaults to startPort, reversed ports are swapped, allowedCidr defaults to 0.0.0.0/0, order kept',
  );

  const bad = (rule: Record<string, unknown>) =>
    zs.addSecurityGroupRule({ securityGroupUuid: sg.uuid, rules: [{ type: 'Ingress', protocol: 'TCP', startPort: 1, ...rule }] } as never);
  await fails(t, bad({ type: 'Inbound' }), 400, 'SYS.1007', /type/);
  await fails(t, bad({ protocol: 'ALL' }), 400, 'SYS.1007', /protocol/);
  await fails(t, bad({ startPort: -1 }), 400, 'SYS.1007', /invalid startPort\[-1\]/);
  await fails(t, bad({ startPort: 65536 }), 400, 'SYS.1007', /startPort/);
  await fails(t, bad({ protocol: 'ICMP', startPort: 256 }), 400, 'SYS.1007', /invalid ICMP type\[256\]/);
  await fails(t, bad({ protocol: 'ICMP', startPort: 8, endPort: 4 }), 400, 'SYS.1007', /invalid ICMP code\[4\]/);
  await fails(t, bad({ allowedCidr: '10.0.0.0/33' }), 400, 'SYS.1007', /invalid CIDR\[10.0.0.0\/33\]/);
  await fails(t, bad({ allowedCidr: 'not-a-cidr' }), 400, 'SYS.1007', /invalid CIDR/);
  await fails(t, zs.addSecurityGroupRule({ securityGroupUuid: sg.uuid, rules: [] }), 400, 'SYS.1007', /rules/);
  await fails(
    t,
    zs.addSecurityGroupRule({ securityGroupUuid: '0'.repeat(32), rules: [{ type: 'Ingress', protocol: 'TCP', startPort: 1 }] }),
    404,
    'SYS.1003',
    /SecurityGroupVO/,
  );
  t.equal((await zs.querySecurityGroupRule({ q: [`securityGroupUuid=${sg.uuid}`] })).inventories!.length, 3, 'a refused call added nothing');

  // An ICMP rule's (type, code) pair is kept as given: echo request is type 8, code 0 (only port ranges are swapped).
  const echo = (
    await zs.addSecurityGroupRule({ securityGroupUuid: sg.uuid, rules: [{ type: 'Ingress', protocol: 'ICMP', startPort: 8, endPort: 0 }] })
  ).inventory.rules.find((r) => r.protocol === 'ICMP' && r.type === 'Ingress')!;
  t.match(echo, { startPort: 8, endPort: 0 }, 'ICMP type 8 code 0 stored as such');
  await zs.deleteSecurityGroupRule({ ruleUuids: [echo.uuid] });

  t.match((await zs.updateSecurityGroup({ uuid: sg.uuid, name: 'web2' })).inventory, { name: 'web2', description: 'web servers' });
  t.equal((await zs.changeSecurityGroupState({ uuid: sg.uuid, stateEvent: 'disable' })).inventory.state, 'Disabled');
  t.equal((await zs.changeSecurityGroupState({ uuid: sg.uuid, stateEvent: 'enable' })).inventory.state, 'Enabled');

  t.same(
    (await zs.querySecurityGroup({ q: ['rules.startPort=100'] })).inventories!.map((x) => x.uuid),
    [sg.uuid],
    'query by a rule field',
  );
  t.same((await zs.querySecurityGroup({ q: ['rules.protocol=GRE'] })).inventories, []);

  const tcp = added.rules[0].uuid;
  const after = await zs.deleteSecurityGroupRule({ ruleUuids: [tcp, '0'.repeat(32)] });
  t.same(
    after.inventory!.rules.map((r) => r.protocol),
    ['UDP', 'ICMP'],
    'deleting rules answers the group; unknown uuids skipped',
  );
  t.same(await zs.deleteSecurityGroupRule({ ruleUuids: ['1'.repeat(32)] }), { success: true }, 'only unknown rules: success, nothing changed');

  // L3 attachment needs the SecurityGroup service on the network.
  const l3 = env.world.l3NetworkUuid;
  const bare = (await zs.createL3Network({ name: 'no-sg', l2NetworkUuid: env.world.l2NetworkUuid })).inventory;
  await fails(t, zs.attachSecurityGroupToL3Network({ securityGroupUuid: sg.uuid, l3NetworkUuid: bare.uuid }), 503, 'SYS.1006', /SecurityGroup network service/);
  await fails(t, zs.attachSecurityGroupToL3Network({ securityGroupUuid: sg.uuid, l3NetworkUuid: '2'.repeat(32) }), 404, 'SYS.1003', /L3NetworkVO/);
  t.same((await zs.attachSecurityGroupToL3Network({ securityGroupUuid: sg.uuid, l3NetworkUuid: l3 })).inventory.attachedL3NetworkUuids, [l3]);
  await fails(t, zs.attachSecurityGroupToL3Network({ securityGroupUuid: sg.uuid, l3NetworkUuid: l3 }), 503, 'SYS.1006', /can't attach again/);
  t.same(
    (await zs.querySecurityGroup({ q: [`l3Network.uuid=${l3}`] })).inventories!.map((x) => x.uuid),
    [sg.uuid],
    'query by attached L3',
  );
  await fails(t, zs.detachSecurityGroupFromL3Network({ securityGroupUuid: sg.uuid, l3NetworkUuid: bare.uuid }), 503, 'SYS.1006', /has not attached/);

  await zs.deleteSecurityGroup({ uuid: sg.uuid });
  t.same((await zs.querySecurityGroup({ q: [`uuid=${sg.uuid}`] })).inventories, []);
  t.same((await zs.querySecurityGroupRule({ q: [`securityGroupUuid=${sg.uuid}`] })).inventories, [], 'its rules went with it');
  t.same(await zs.deleteSecurityGroup({ uuid: sg.uuid }), { success: true }, 'deleting an unknown group succeeds');
});

t.test('rule sets on the hosts follow rules, members, states and VMs', async (t) => {
  const env = await setup(t);
  const { zs, s } = env;
  const l3 = env.world.l3NetworkUuid;
  const [h1, h2] = env.world.hostUuids;
  const vm1 = await vm(env, 'vm1', { hostUuid: h1 });
  const vm2 = await vm(env, 'vm2', { hostUuid: h2 });
  const nic1 = vm1.vmNics[0];
  const nic2 = vm2.vmNics[0];

  const sg = (await zs.createSecurityGroup({ name: 'web' })).inventory;
  await fails(
    t,
    zs.addVmNicToSecurityGroup({ securityGroupUuid: sg.uuid, vmNicUuids: [nic1.uuid] }),
    503,
    'SG.1000',
    /not on L3 networks that have been attached/,
  );
  await zs.attachSecurityGroupToL3Network({ securityGroupUuid: sg.uuid, l3NetworkUuid: l3 });
  await fails(t, zs.addVmNicToSecurityGroup({ securityGroupUuid: sg.uuid, vmNicUuids: [nic1.uuid, '3'.repeat(32)] }), 404, 'SYS.1003', /cannot find vm nics/);
  t.same((await zs.getCandidateVmNicForSecurityGroup({ securityGroupUuid: sg.uuid })).inventories!.map((n) => n.uuid).sort(), [nic1.uuid, nic2.uuid].sort());

  await zs.addSecurityGroupRule({ securityGroupUuid: sg.uuid, rules: [{ type: 'Ingress', protocol: 'TCP', startPort: 22 }] });
  t.equal((await applied(s, h1)).size, 0, 'rules of a group without members go nowhere');

  await zs.addVmNicToSecurityGroup({ securityGroupUuid: sg.uuid, vmNicUuids: [nic1.uuid, nic2.uuid, nic1.uuid] });
  t.same((await zs.getCandidateVmNicForSecurityGroup({ securityGroupUuid: sg.uuid })).inventories, [], 'members are no candidates');
  t.same(
    (await zs.queryVmNicInSecurityGroup({ q: [`securityGroupUuid=${sg.uuid}`] })).inventories!.map((r) => r.vmNicUuid).sort(),
    [nic1.uuid, nic2.uuid].sort(),
  );
  t.same(
    (await zs.querySecurityGroup({ q: [`vmNic.uuid=${nic2.uuid}`] })).inventories!.map((x) => x.uuid),
    [sg.uuid],
    'query by member NIC',
  );
  const on1 = (await applied(s, h1)).get(nic1.uuid);
  t.same(ports(on1), ['Ingress/TCP/22-22/0.0.0.0/0'], "host 1 got NIC 1's rule set in the API's job");
  t.equal(on1?.actionCode, 'applyRule');
  t.same(
    on1?.rules[0].allowedInternalIpRange,
    ipRanges([nic1.ip!, nic2.ip!]),
    'members of the group on the L3 are always allowed (consecutive addresses as a range)',
  );
  t.same(ipRanges(['10.0.0.3', '10.0.0.1', '10.0.0.2', '10.0.0.9']), ['10.0.0.1-10.0.0.3', '10.0.0.9'], 'ranges fold consecutive addresses');
  t.same([...(await applied(s, h2)).keys()], [nic2.uuid], 'host 2 holds only its own NIC');

  await zs.addSecurityGroupRule({ securityGroupUuid: sg.uuid, rules: [{ type: 'Egress', protocol: 'UDP', startPort: 53, allowedCidr: '8.8.8.8/32' }] });
  t.same(ports((await applied(s, h2)).get(nic2.uuid)), ['Egress/UDP/53-53/8.8.8.8/32', 'Ingress/TCP/22-22/0.0.0.0/0'], 'a new rule reaches every member');

  // A second group: a NIC's rule set is the union of its Enabled groups.
  const db = (await zs.createSecurityGroup({ name: 'db' })).inventory;
  await zs.attachSecurityGroupToL3Network({ securityGroupUuid: db.uuid, l3NetworkUuid: l3 });
  await zs.addSecurityGroupRule({ securityGroupUuid: db.uuid, rules: [{ type: 'Ingress', protocol: 'TCP', startPort: 5432 }] });
  await zs.addVmNicToSecurityGroup({ securityGroupUuid: db.uuid, vmNicUuids: [nic1.uuid] });
  t.same(ports((await applied(s, h1)).get(nic1.uuid)), ['Egress/UDP/53-53/8.8.8.8/32', 'Ingress/TCP/22-22/0.0.0.0/0', 'Ingress/TCP/5432-5432/0.0.0.0/0']);

  await zs.changeSecurityGroupState({ uuid: sg.uuid, stateEvent: 'disable' });
  t.same(ports((await applied(s, h1)).get(nic1.uuid)), ['Ingress/TCP/5432-5432/0.0.0.0/0'], "a Disabled group's rules are not applied");
  t.notOk((await applied(s, h2)).has(nic2.uuid), 'a NIC in no Enabled group loses its chain');
  await zs.changeSecurityGroupState({ uuid: sg.uuid, stateEvent: 'enable' });
  t.ok((await applied(s, h2)).has(nic2.uuid), 'enabling applies them again');

  await zs.deleteVmNicFromSecurityGroup({ securityGroupUuid: db.uuid, vmNicUuids: [nic1.uuid, nic2.uuid] });
  t.same(ports((await applied(s, h1)).get(nic1.uuid)), ['Egress/UDP/53-53/8.8.8.8/32', 'Ingress/TCP/22-22/0.0.0.0/0'], 'leaving a group drops its rules');

  // VM state: stopping drops the chains on the host, starting applies them again on the VM's (new) host.
  await zs.stopVmInstance({ uuid: vm2.uuid });
  await until("host 2 drops the stopped VM's chain", async () => !(await applied(s, h2)).has(nic2.uuid));
  await zs.startVmInstance({ uuid: vm2.uuid, hostUuid: h1 } as never);
  await until("the started VM's rules on host 1", async () => (await applied(s, h1)).has(nic2.uuid));
  await zs.migrateVm({ vmInstanceUuid: vm2.uuid, hostUuid: h2 });
  await until("the migrated VM's rules on host 2 only", async () => (await applied(s, h2)).has(nic2.uuid) && !(await applied(s, h1)).has(nic2.uuid));

  // Detaching the group from the L3 takes its members on that L3 out.
  await zs.detachSecurityGroupFromL3Network({ securityGroupUuid: sg.uuid, l3NetworkUuid: l3 });
  t.same((await zs.queryVmNicInSecurityGroup({ q: [`securityGroupUuid=${sg.uuid}`] })).inventories, []);
  t.equal((await applied(s, h1)).size + (await applied(s, h2)).size, 0, 'and their chains');
});

t.test('a host that missed its rules gets them when it reconnects', async (t) => {
  const env = await setup(t);
  const { zs, s } = env;
  const [h1] = env.world.hostUuids;
  const v = await vm(env, 'vm1', { hostUuid: h1 });
  const sg = (await zs.createSecurityGroup({ name: 'web' })).inventory;
  await zs.attachSecurityGroupToL3Network({ securityGroupUuid: sg.uuid, l3NetworkUuid: env.world.l3NetworkUuid });
  await zs.addVmNicToSecurityGroup({ securityGroupUuid: sg.uuid, vmNicUuids: [v.vmNics[0].uuid] });

  await zs.updateSimulatorHost({ uuid: h1, failCommands: ['/securitygroup/applyrules'] });
  const r = await zs.addSecurityGroupRule({ securityGroupUuid: sg.uuid, rules: [{ type: 'Ingress', protocol: 'TCP', startPort: 80 }] });
  t.equal(r.inventory.rules.length, 1, 'the API succeeds (upstream: the host is retried later)');
  t.same(ports((await applied(s, h1)).get(v.vmNics[0].uuid)), [], 'the host does not have the rule yet');

  await zs.updateSimulatorHost({ uuid: h1, failCommands: [] });
  await zs.reconnectHost({ uuid: h1 });
  await until('the reconnected host holds the rule', async () => ports((await applied(s, h1)).get(v.vmNics[0].uuid)).length === 1);
  const records = (await sim(s, '/simulator/hosts/records', { hostUuid: h1 })).records as Array<{ path: string }>;
  t.ok(
    records.some((x) => x.path === '/securitygroup/refreshrulesonhost'),
    'through a whole-host refresh',
  );
});

t.test('cascades: deleting the NIC, VM, L3 or group cleans memberships', async (t) => {
  const env = await setup(t);
  const { zs, s } = env;
  const [h1] = env.world.hostUuids;
  const l3 = env.world.l3NetworkUuid;
  const a = await vm(env, 'a', { hostUuid: h1 });
  const b = await vm(env, 'b', { hostUuid: h1 });
  const sg = (await zs.createSecurityGroup({ name: 'web' })).inventory;
  await zs.attachSecurityGroupToL3Network({ securityGroupUuid: sg.uuid, l3NetworkUuid: l3 });
  await zs.addVmNicToSecurityGroup({ securityGroupUuid: sg.uuid, vmNicUuids: [a.vmNics[0].uuid, b.vmNics[0].uuid] });
  const members = async () => (await zs.queryVmNicInSecurityGroup({ q: [`securityGroupUuid=${sg.uuid}`] })).inventories!.map((r) => r.vmNicUuid);

  await zs.detachL3NetworkFromVm({ vmNicUuid: a.vmNics[0].uuid });
  t.same(await members(), [b.vmNics[0].uuid], 'a detached NIC leaves the group');
  t.notOk((await applied(s, h1)).has(a.vmNics[0].uuid), 'and its chain is gone from the host');

  await zs.destroyVmInstance({ uuid: b.uuid });
  await zs.expungeVmInstance({ uuid: b.uuid });
  t.same(await members(), [], "an expunged VM's NICs leave the group");

  const c = await vm(env, 'c', { hostUuid: h1 });
  await zs.addVmNicToSecurityGroup({ securityGroupUuid: sg.uuid, vmNicUuids: [c.vmNics[0].uuid] });
  await zs.deleteSecurityGroup({ uuid: sg.uuid });
  t.same((await zs.queryVmNicInSecurityGroup({ q: [`vmNicUuid=${c.vmNics[0].uuid}`] })).inventories, [], 'a deleted group has no members');
  t.notOk((await applied(s, h1)).has(c.vmNics[0].uuid), 'its members lose their chains');

  const sg2 = (await zs.createSecurityGroup({ name: 'web2' })).inventory;
  await zs.attachSecurityGroupToL3Network({ securityGroupUuid: sg2.uuid, l3NetworkUuid: l3 });
  await zs.addVmNicToSecurityGroup({ securityGroupUuid: sg2.uuid, vmNicUuids: [c.vmNics[0].uuid] });
  await zs.deleteL3Network({ uuid: l3 });
  const left = (await zs.querySecurityGroup({ q: [`uuid=${sg2.uuid}`] })).inventories![0];
  t.same(left.attachedL3NetworkUuids, [], 'a deleted L3 leaves the groups attached to it');
  t.same((await zs.queryVmNicInSecurityGroup({ q: [`securityGroupUuid=${sg2.uuid}`] })).inventories, [], 'with the memberships of its NICs');
});

t.test('tenants see and change only their own groups', async (t) => {
  const env = await setup(t);
  const { zs: admin } = env;
  const sha512 = (x: string) => createHash('sha512').update(x).digest('hex');
  const tenant = async (name: string) => {
    await admin.createAccount({ name, password: sha512('pw') });
    return new ZStackClient({ endpoint: env.s.url, accountName: name, password: 'pw', pollIntervalMs: 20 });
  };
  const alice = await tenant('alice');
  const bob = await tenant('bob');
  const mine = (await alice.createSecurityGroup({ name: 'alice-sg' })).inventory;
  const rule = (await alice.addSecurityGroupRule({ securityGroupUuid: mine.uuid, rules: [{ type: 'Ingress', protocol: 'TCP', startPort: 443 }] })).inventory
    .rules[0];
  await admin.createSecurityGroup({ name: 'admin-sg' });

  t.same(
    (await alice.querySecurityGroup({})).inventories!.map((x) => x.name),
    ['alice-sg'],
  );
  t.same((await bob.querySecurityGroup({})).inventories, [], 'another tenant sees none');
  t.same((await bob.querySecurityGroupRule({})).inventories, []);
  t.equal((await admin.querySecurityGroup({})).inventories!.length, 2, 'the admin sees all');
  await fails(t, bob.deleteSecurityGroup({ uuid: mine.uuid }), 403, 'ID.1002', /no permission/);
  await fails(t, bob.deleteSecurityGroupRule({ ruleUuids: [rule.uuid] }), 403, 'ID.1002', /no permission/);
  await fails(
    t,
    bob.addSecurityGroupRule({ securityGroupUuid: mine.uuid, rules: [{ type: 'Ingress', protocol: 'TCP', startPort: 1 }] }),
    403,
    'ID.1002',
    /no permission/,
  );
  t.same((await alice.deleteSecurityGroupRule({ ruleUuids: [rule.uuid] })).inventory!.rules, [], 'the owner deletes its rule');
});

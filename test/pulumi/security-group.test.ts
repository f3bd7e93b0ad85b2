// The SecurityGroup, SecurityGroupRule and SecurityGroupAttachment resources through the provider runtime (the code the
// dynamic-provider plugin runs) against a real server and the simulator: input checks, diffs (in place vs replace),
// create/read/update/delete, a rule reaching the host of a member NIC, a refused attach explained, and refresh after
// a cascade.
import t from 'tap';
import { startServer, AGENT_SECRET } from '../lib/harness.js';
import { buildWorld } from '../lib/world.js';
import { handlers } from '../../pulumi-provider/src/runtime/index.js';

const { SecurityGroup, SecurityGroupRule, SecurityGroupAttachment } = handlers;

t.test('Pulumi security group resources (the provider runtime)', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const zs = s.client;
  const ctx = { zs: async () => zs };
  const world = await buildWorld(zs, { virtualRouter: false, hosts: 1 });
  const sgProvider = (await zs.queryNetworkServiceProvider({ q: ['type=SecurityGroup'] })).inventories![0].uuid;
  await zs.attachNetworkServiceProviderToL2Network({ networkServiceProviderUuid: sgProvider, l2NetworkUuid: world.l2NetworkUuid });
  await zs.attachNetworkServiceToL3Network({ l3NetworkUuid: world.l3NetworkUuid, networkServices: { [sgProvider]: ['SecurityGroup'] } });
  const plain = (await zs.createL3Network({ name: 'no-sg-service', l2NetworkUuid: world.l2NetworkUuid })).inventory;

  // Checks: every failure names its property.
  t.match(SecurityGroup.check({}, { name: 'g', state: 'Off' }).failures, [{ property: 'state' }], 'check: state');
  const bad = SecurityGroupRule.check({}, { securityGroupUuid: 'x', type: 'In', protocol: 'TCP', startPort: 70000, allowedCidr: '10.0.0.0/40' }).failures;
  t.same(bad.map((f) => f.property).sort(), ['allowedCidr', 'securityGroupUuid', 'startPort', 'type'], 'check: uuid, type, port, CIDR');
  const reversed = SecurityGroupRule.check({}, { securityGroupUuid: plain.uuid, type: 'Ingress', protocol: 'TCP', startPort: 90, endPort: 80 }).failures;
  t.match(reversed, [{ property: 'endPort', reason: /below startPort/ }], 'check: a reversed range is refused (the server would swap it)');
  t.match(
    SecurityGroupRule.check({}, { securityGroupUuid: plain.uuid, type: 'Ingress', protocol: 'TCP', startPort: 22, allowedCidr: '10.1.2.3/8' }).failures,
    [{ property: 'allowedCidr', reason: /write 10\.0\.0\.0\/8/ }],
    'check: host bits in a CIDR',
  );

  // The group: created, renamed and disabled in place, read back.
  const g0 = { name: 'web', description: 'web servers' };
  t.same(
    SecurityGroup.diff('id', g0, { ...g0, name: 'web2' }),
    { changes: true, replaces: [], deleteBeforeReplace: false, changed: ['name'] },
    'rename: in place',
  );
  const g = await SecurityGroup.create(ctx, SecurityGroup.check({}, g0).inputs);
  t.match(g.outs, { uuid: g.id, name: 'web', state: 'Enabled', rules: [], attachedL3NetworkUuids: [] });
  const g1 = await SecurityGroup.update(ctx, g.id, g.outs, { ...g0, name: 'web2', state: 'Disabled' });
  t.match(g1.outs, { name: 'web2', description: 'web servers', state: 'Disabled' }, 'UpdateSecurityGroup + ChangeSecurityGroupState');
  await SecurityGroup.update(ctx, g.id, g1.outs, { ...g0, name: 'web2', state: 'Enabled' });
  t.match((await SecurityGroup.read(ctx, g.id, g.outs)).props, { name: 'web2', state: 'Enabled' }, 'read');

  // A rule: defaults filled by check, any change replaces it, the new rule is found among the group's rules.
  const r0 = SecurityGroupRule.check({}, { securityGroupUuid: g.id, type: 'Ingress', protocol: 'TCP', startPort: 22 }).inputs;
  t.match(r0, { endPort: 22, allowedCidr: '0.0.0.0/0' }, 'defaults made explicit');
  t.same(SecurityGroupRule.diff('id', r0, { ...r0, allowedCidr: '10.0.0.0/8' }).replaces, ['allowedCidr'], 'a new CIDR replaces');
  t.same(SecurityGroupRule.diff('id', r0, r0).changes, false, 'no change');
  const ssh = await SecurityGroupRule.create(ctx, r0);
  t.match(ssh.outs, { uuid: ssh.id, securityGroupUuid: g.id, type: 'Ingress', protocol: 'TCP', startPort: 22, endPort: 22, allowedCidr: '0.0.0.0/0' });
  // The replacement of a rule: the new one first (the engine's default order), then the old one deleted.
  const r1 = SecurityGroupRule.check({}, { ...r0, allowedCidr: '10.0.0.0/8' }).inputs;
  const ssh2 = await SecurityGroupRule.create(ctx, r1);
  t.not(ssh2.id, ssh.id, 'a new rule');
  await SecurityGroupRule.delete(ctx, ssh.id, ssh.outs);
  t.equal((await SecurityGroupRule.read(ctx, ssh.id, ssh.outs)).id, '', 'the old rule is gone');
  const rules = (await zs.querySecurityGroup({ q: [`uuid=${g.id}`] })).inventories![0].rules;
  t.match(rules, [{ uuid: ssh2.id, allowedCidr: '10.0.0.0/8' }], 'the group holds the new rule only');
  await t.rejects(SecurityGroupRule.update(ctx, ssh2.id, ssh2.outs, r0), /cannot be changed in place/);

  // Attachment: to the network with the service; refused (and explained) on one without it.
  const a = await SecurityGroupAttachment.create(ctx, { securityGroupUuid: g.id, l3NetworkUuid: world.l3NetworkUuid });
  t.equal(a.id, `${g.id}:${world.l3NetworkUuid}`);
  t.same((await SecurityGroupAttachment.read(ctx, a.id, {})).props, { securityGroupUuid: g.id, l3NetworkUuid: world.l3NetworkUuid }, 'read from the id');
  t.same(SecurityGroupAttachment.diff(a.id, a.outs, { ...a.outs, l3NetworkUuid: plain.uuid }).replaces, ['l3NetworkUuid'], 'another network replaces');
  await t.rejects(
    SecurityGroupAttachment.create(ctx, { securityGroupUuid: g.id, l3NetworkUuid: plain.uuid }),
    new RegExp(`^attaching security group ${g.id} to L3 network ${plain.uuid}: `),
    'a refused attach names what was being done',
  );

  // The rule reaches the host of a member NIC.
  const vm = (
    await zs.createVmInstance({
      name: 'vm',
      instanceOfferingUuid: world.instanceOfferingUuid,
      imageUuid: world.imageUuid,
      l3NetworkUuids: [world.l3NetworkUuid],
    })
  ).inventory;
  await zs.addVmNicToSecurityGroup({ securityGroupUuid: g.id, vmNicUuids: [vm.vmNics[0].uuid] });
  const res = await fetch(`${s.sim.url}/simulator/hosts/securitygroup`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${AGENT_SECRET}` },
    body: JSON.stringify({ hostUuid: vm.hostUuid }),
  });
  const sets = ((await res.json()).ruleSets ?? []) as Array<{ vmNicUuid: string; rules: Array<{ startPort: number; allowedCidr: string }> }>;
  t.match(sets.find((x) => x.vmNicUuid === vm.vmNics[0].uuid)?.rules, [{ startPort: 22, allowedCidr: '10.0.0.0/8' }], 'the rule is on the host');

  // Detach, then delete the group: its rules go with it, and deleting them again is a no-op.
  await SecurityGroupAttachment.delete(ctx, a.id, a.outs);
  t.equal((await SecurityGroupAttachment.read(ctx, a.id, a.outs)).id, '', 'detached');
  await SecurityGroupAttachment.delete(ctx, a.id, a.outs);
  await SecurityGroup.delete(ctx, g.id, g.outs);
  t.equal((await SecurityGroup.read(ctx, g.id, g.outs)).id, '', 'group gone');
  t.equal((await SecurityGroupRule.read(ctx, ssh2.id, ssh2.outs)).id, '', 'its rule went with it (refresh drops it)');
  await SecurityGroupRule.delete(ctx, ssh2.id, ssh2.outs);
  await t.rejects(SecurityGroup.update(ctx, g.id, g.outs, g0), /no longer exists; run `pulumi refresh`/, 'updating a vanished group');
  await t.rejects(
    SecurityGroupRule.create(ctx, r0),
    new RegExp(`security group ${g.id} does not exist`),
    'a rule for a missing group is refused with the group named',
  );
});

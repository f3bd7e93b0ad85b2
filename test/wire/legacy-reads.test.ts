// 1.1's legacy reads (APIGet/APIList/APISearch<X>Msg), generated from `x-zstack-legacy-reads`: the house REST form
// (`PUT /zstack/v1/legacy/.../actions`) and the 1.1 RPC form, the replies' 1.1 shapes, paging, search triples, a
// subclass's fixed condition, validation, and tenant isolation (the query engine's account scope).
import t from 'tap';
import { createHash } from 'node:crypto';
import { AGENT_SECRET, startServer } from '../lib/harness.js';
import { buildWorld } from '../lib/world.js';
import { ZStackClient, ZStackError } from '../../sdk/src/index.js';
import { Cli11 } from './cli11.js';

const failure = async (p: Promise<unknown>) => {
  const e = await p.then(
    () => undefined,
    (x) => x,
  );
  return e instanceof ZStackError ? { status: e.httpStatus, code: e.code, details: e.details ?? '' } : { status: 0, code: String(e), details: '' };
};

t.test('legacy reads', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const admin = s.client;
  const w = await buildWorld(admin, { virtualRouter: false });
  const sha512 = (x: string) => createHash('sha512').update(x).digest('hex');
  const tenant = async (name: string) => {
    await admin.createAccount({ name, password: sha512('pw') });
    return new ZStackClient({ endpoint: s.url, accountName: name, password: 'pw', pollIntervalMs: 20 });
  };
  const alice = await tenant('alice');
  const bob = await tenant('bob');
  await admin.shareResource({ resourceUuids: [w.imageUuid, w.instanceOfferingUuid, w.l3NetworkUuid], toPublic: true });
  const vm = (
    await alice.createVmInstance({ name: 'alice-vm', instanceOfferingUuid: w.instanceOfferingUuid, imageUuid: w.imageUuid, l3NetworkUuids: [w.l3NetworkUuid] })
  ).inventory;
  const cli = new Cli11(s.url);
  await cli.login();
  const bobCli = new Cli11(s.url);
  await bobCli.login('bob', 'pw');

  t.test('Get, List, Search over REST: 1.1 reply shapes', async (t) => {
    const get = await admin.getZone({ uuid: w.zoneUuid });
    t.equal(typeof get.inventory, 'string', 'Get: the inventory as a JSON string');
    t.match(JSON.parse(get.inventory), { uuid: w.zoneUuid, name: 'zone1' });
    const missing = await failure(admin.getZone({ uuid: 'd'.repeat(32) }));
    t.equal(missing.code, 'SYS.1003');

    const hosts = (await admin.queryHost({})).inventories!.map((h) => h.uuid);
    t.equal(hosts.length, 2);
    t.same(
      (await admin.listHost({})).inventories!.map((h) => h.uuid),
      hosts,
      'List without arguments: all, in the query order',
    );
    t.same(
      (await admin.listHost({ offset: 1, length: 1 })).inventories!.map((h) => h.uuid),
      [hosts[1]],
      'paging',
    );
    t.same((await admin.listHost({ length: 0 })).inventories, [], 'length 0: none');
    t.same((await admin.listHost({ length: -1, offset: 2 })).inventories, [], 'offset past the end');
    t.same(
      (await admin.listHost({ uuids: [hosts[0]] })).inventories!.map((h) => h.uuid),
      [hosts[0]],
      'by uuids',
    );

    const search = await admin.searchHost({ nameOpValueTriples: [{ name: 'name', op: 'AND_EQ', val: 'host2' }], fields: ['uuid', 'name'] });
    t.same(JSON.parse(search.content), [{ uuid: hosts[1], name: 'host2' }], 'Search: content is a JSON string; fields');
    const inList = await admin.searchHost({ nameOpListTriples: [{ name: 'uuid', op: 'AND_NOT_IN', vals: [hosts[0]] }], size: 5 });
    t.same(
      JSON.parse(inList.content).map((h: { uuid: string }) => h.uuid),
      [hosts[1]],
    );
    const nested = await admin.searchVmInstance({ nameOpValueTriples: [{ name: 'vmNics.l3NetworkUuid', op: 'AND_EQ', val: w.l3NetworkUuid }] });
    t.same(
      JSON.parse(nested.content).map((v: { uuid: string }) => v.uuid),
      [vm.uuid],
      'expanded fields, as in the query engine',
    );
    const tricky = await admin.searchZone({ nameOpValueTriples: [{ name: 'name', op: 'AND_EQ', val: 'a>=b!=c' }] });
    t.same(JSON.parse(tricky.content), [], 'operator characters in a value are only a value');

    t.same(JSON.parse((await admin.searchL2VlanNetwork({})).content), [], "a subclass's reads see only it (the world's L2 has no VLAN)");
    t.equal((await failure(admin.getL2VlanNetwork({ uuid: w.l2NetworkUuid }))).code, 'SYS.1003');
    t.match(JSON.parse((await admin.getL2Network({ uuid: w.l2NetworkUuid })).inventory), { uuid: w.l2NetworkUuid });
  });

  t.test('the same over the 1.1 RPC protocol', async (t) => {
    const get = await cli.call('org.zstack.header.vm.APIGetVmInstanceMsg', { uuid: vm.uuid });
    t.equal(get.cls, 'org.zstack.header.vm.APIGetVmInstanceReply');
    t.match(JSON.parse(get.reply.inventory), { uuid: vm.uuid, name: 'alice-vm' });
    const list = await cli.call('org.zstack.header.vm.APIListVmInstanceMsg', { offset: 0, length: 2147483647 });
    t.equal(list.cls, 'org.zstack.header.vm.APIListVmInstanceReply');
    t.same(
      list.reply.inventories.map((v: { uuid: string }) => v.uuid),
      [vm.uuid],
      'length = Integer.MAX_VALUE (sent as a string): all',
    );
    const search = await cli.call('org.zstack.network.service.virtualrouter.APISearchVirtualRouterOffingMsg', {});
    t.equal(search.cls, 'org.zstack.network.service.virtualrouter.APISearchVirtualRouterOffingReply', "1.1's spelling");
    t.same(JSON.parse(search.reply.content), []);
    const nics = await cli.call('org.zstack.header.vm.APIListVmNicMsg', { uuids: [vm.vmNics[0].uuid] });
    t.equal(nics.reply.inventories[0].vmInstanceUuid, vm.uuid);
  });

  t.test('tenants read only what they may see', async (t) => {
    t.match(JSON.parse((await alice.getVmInstance({ uuid: vm.uuid })).inventory), { uuid: vm.uuid });
    t.equal((await alice.listVmInstance({})).inventories!.length, 1);
    t.equal((await failure(bob.getVmInstance({ uuid: vm.uuid }))).code, 'SYS.1003', "another account's VM is not found");
    t.same((await bob.listVmInstance({ uuids: [vm.uuid] })).inventories, []);
    t.same(JSON.parse((await bob.searchVmInstance({ inventoryUuid: vm.uuid })).content), []);
    const rpc = await bobCli.call('org.zstack.header.vm.APIGetVmInstanceMsg', { uuid: vm.uuid });
    t.equal(rpc.reply.error.code, 'SYS.1003', 'over RPC too');
    t.same((await bobCli.call('org.zstack.header.vm.APIListVmInstanceMsg', {})).reply.inventories, []);
    t.match(await failure(bob.listHost({})), { status: 403, code: 'ID.1002' }, 'admin-only as the query it mirrors (QueryHost)');
    t.ok(JSON.parse((await bob.searchZone({})).content).length >= 1, 'zones are readable by all, as QueryZone');
    const accounts = await bobCli.call('org.zstack.header.identity.APISearchAccountMsg', {});
    t.same(
      JSON.parse(accounts.reply.content).map((a: { name: string }) => a.name),
      ['bob'],
      'an account finds only itself',
    );
    const aliceUuid = (await admin.queryAccount({ q: ['name=alice'] })).inventories![0].uuid;
    t.equal((await bobCli.call('org.zstack.header.identity.APIGetAccountMsg', { uuid: aliceUuid })).reply.error.code, 'SYS.1003');
  });

  t.test('validation', async (t) => {
    t.match(await failure(admin.searchZone({ nameOpValueTriples: [{ name: 'name', op: 'OR_EQ' as never, val: 'x' }] })), { code: 'SYS.1007', details: /op/ });
    t.match(await failure(admin.searchZone({ nameOpValueTriples: [{ name: 'name;drop', op: 'AND_EQ', val: 'x' }] })), { code: 'SYS.1007', details: /name/ });
    t.match(await failure(admin.searchZone({ nameOpValueTriples: [{ name: 'nope', op: 'AND_EQ', val: 'x' }] })), { code: 'SYS.1007', details: /nope/ });
    t.match(await failure(admin.getZone({ uuid: 'not-a-uuid' })), { code: 'SYS.1007', details: /uuid/ });
    t.match(await failure(admin.listZones({ uuids: ['x'] })), { code: 'SYS.1007', details: /uuids/ });
    const rpc = await cli.call('org.zstack.header.zone.APISearchZoneMsg', { nameOpValueTriples: [{ name: 'name', op: 'OR_EQ', val: 'x' }] });
    t.equal(rpc.reply.error.code, 'SYS.1007', 'over RPC: the OR_* family is not served');
    t.equal((await cli.call('org.zstack.header.zone.APIGetZoneMsg', {})).reply.error.code, 'SYS.1007', 'uuid is mandatory');
  });

  t.test('types, strategies, global config and properties', async (t) => {
    t.same((await bob.getHypervisorTypes()).hypervisorTypes, ['KVM', 'Simulator'], "from the spec's enums; readable by every account");
    // The storage types follow what the storage domains declare (their inventories' `type` enums).
    const schemas = s.app.doc.components.schemas;
    t.same((await admin.getPrimaryStorageTypes()).primaryStorageTypes, schemas.PrimaryStorageInventory.properties.type.enum);
    t.match((await admin.getPrimaryStorageTypes()).primaryStorageTypes, ['SimulatorPrimaryStorage', 'LocalStorage']);
    t.same((await admin.getBackupStorageTypes()).backupStorageTypes, schemas.BackupStorageInventory.properties.type.enum);
    t.match((await admin.getBackupStorageTypes()).backupStorageTypes, ['SimulatorBackupStorage', 'SftpBackupStorage']);
    t.same((await admin.getL2NetworkTypes()).l2NetworkTypes, ['L2NoVlanNetwork', 'L2VlanNetwork']);
    t.same((await admin.getL3NetworkTypes()).l3NetworkTypes, ['L3BasicNetwork']);
    t.same((await admin.getHostAllocatorStrategies()).hostAllocatorStrategies, ['DefaultHostAllocatorStrategy', 'LeastVmPreferredHostAllocatorStrategy']);
    t.same((await admin.getPrimaryStorageAllocatorStrategies()).primaryStorageAllocatorStrategies, ['DefaultPrimaryStorageAllocationStrategy']);
    const providers = (await admin.queryNetworkServiceProvider({})).inventories!;
    const services = (await admin.getNetworkServiceTypes()).serviceAndProviderTypes;
    const dhcp = providers.filter((p) => p.networkServiceTypes.includes('DHCP')).map((p) => p.uuid);
    t.same([...services.DHCP].sort(), dhcp.sort(), "as 1.1: each service type's provider uuids");
    const rpcTypes = await cli.call('org.zstack.header.host.APIGetHypervisorTypesMsg', {});
    t.match(rpcTypes, { cls: 'org.zstack.header.host.APIGetHypervisorTypesReply', reply: { hypervisorTypes: ['KVM', 'Simulator'] } });

    const all = (await admin.queryGlobalConfig({})).inventories!;
    const one = await admin.getGlobalConfig({ category: all[0].category, name: all[0].name });
    t.same(one.inventory, all[0]);
    t.match(await failure(admin.getGlobalConfig({ category: 'nope', name: 'nope' })), { code: 'SYS.1007', details: /nope/ });
    t.match(await failure(bob.getGlobalConfig({ category: all[0].category, name: all[0].name })), { status: 403, code: 'ID.1002' });
    const rpcConfig = await cli.call('org.zstack.core.config.APIGetGlobalConfigMsg', { category: all[1].category, name: all[1].name });
    t.match(rpcConfig, { cls: 'org.zstack.core.config.APIGetGlobalConfigReply', reply: { inventory: { name: all[1].name } } });
    const page = await cli.call('org.zstack.core.config.APIListGlobalConfigMsg', { offset: 1, length: 2 });
    t.equal(page.cls, 'org.zstack.core.config.APIListGlobalConfigReply');
    t.same(
      page.reply.inventories.map((c: { id: number }) => c.id),
      all.slice(1, 3).map((c) => c.id),
    );

    const props = (await admin.getGlobalProperty()).properties;
    t.ok(props.includes(`version: 1.1.0`));
    t.ok(
      props.every((p) => /^[\w.]+: /.test(p)),
      '"name: value" strings',
    );
    const text = props.join('\n');
    t.notOk(text.includes(AGENT_SECRET) || /password|secret|postgres:\/\//i.test(text), 'no secret');
    t.match(await failure(bob.getGlobalProperty()), { status: 403 });
  });
});

// The 1.1 RPC protocol (../shared/reference/zstack-rpc-1.1.md) as 1.1's zstack-cli speaks it: envelopes, the session
// in the body, string-typed scalars, sync and async messages, query messages with each of 1.1's operators, errors in
// the result envelope (never a bare HTTP error), and the release notes' §9 typed as the CLI sends it.
import t from 'tap';
import { startServer } from '../lib/harness.js';
import { buildWorld } from '../lib/world.js';
import * as seed from '../walkthrough/seed-replies.js';
import { Cli11 } from './cli11.js';

const M = {
  login: 'org.zstack.header.identity.APILogInByAccountMsg',
  version: 'org.zstack.header.managementnode.APIGetVersionMsg',
  createZone: 'org.zstack.header.zone.APICreateZoneMsg',
  queryZone: 'org.zstack.header.zone.APIQueryZoneMsg',
  createOffering: 'org.zstack.header.configuration.APICreateInstanceOfferingMsg',
  queryOffering: 'org.zstack.header.configuration.APIQueryInstanceOfferingMsg',
  createCluster: 'org.zstack.header.cluster.APICreateClusterMsg',
  deleteZone: 'org.zstack.header.zone.APIDeleteZoneMsg',
  updateGlobalConfig: 'org.zstack.core.config.APIUpdateGlobalConfigMsg',
};

t.test('1.1 RPC protocol', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const zs = s.client;
  const w = await buildWorld(zs);
  const cli = new Cli11(s.url);

  t.test('login: session in the body ignored, APILogInReply', async (t) => {
    const stale = await cli.call(M.login, { accountName: 'admin', password: 'x'.repeat(128) }, { session: { uuid: 'f'.repeat(32) } });
    t.equal(stale.cls, 'org.zstack.header.identity.APILogInReply');
    t.equal(stale.reply.success, false);
    t.equal(stale.reply.error.code, 'ID.1000', 'wrong password');
    const r = await cli.login();
    t.equal(r.cls, 'org.zstack.header.identity.APILogInReply');
    t.equal(r.envelope.state, 'Done', 'sync: answered at once');
    t.equal(typeof r.envelope.result, 'string', 'the result is a JSON string');
    t.match(r.envelope, { createdDate: /^[A-Z][a-z]{2} \d{1,2}, \d{4} \d{1,2}:\d{2}:\d{2} [AP]M$/ });
    t.match(r.reply, { success: true, inventory: { uuid: /^[0-9a-f]{32}$/, accountUuid: /^[0-9a-f]{32}$/ } });
    t.notOk('schema' in r.reply, 'no REST schema map in 1.1 replies');
  });

  t.test('sync and async messages, string scalars coerced', async (t) => {
    const v = await cli.call(M.version);
    t.equal(v.cls, 'org.zstack.header.managementnode.APIGetVersionReply');
    t.equal(v.reply.success, true);
    const z = await cli.call(M.createZone, { name: 'rpc-zone', description: 'from the CLI', unknownField: 'ignored' });
    t.equal(z.envelope.state, 'Processing', 'async: a uuid to poll');
    t.match(z.envelope.uuid, /^[0-9a-f]{32}$/);
    t.equal(z.cls, 'org.zstack.header.zone.APICreateZoneEvent');
    t.match(z.reply, { success: true, inventory: { name: 'rpc-zone', description: 'from the CLI', state: 'Enabled' } });
    t.notOk(Object.values(z.reply.inventory).includes(null), 'null members are left out');
    const o = await cli.call(M.createOffering, { name: 'rpc-io', cpuNum: 2, cpuSpeed: 1, memorySize: 2 ** 28, sortKey: 3 });
    t.match(o.reply.inventory, { cpuNum: 2, memorySize: 2 ** 28, sortKey: 3 }, '"2", "268435456" and "3" became numbers');
    const c = await cli.call('org.zstack.header.vm.APICreateVmInstanceMsg', {
      name: 'rpc-vm',
      instanceOfferingUuid: w.instanceOfferingUuid,
      imageUuid: w.imageUuid,
      l3NetworkUuids: [w.l3NetworkUuid],
      timeout: 600000,
    });
    t.equal(c.cls, 'org.zstack.header.vm.APICreateVmInstanceEvent');
    t.match(c.reply.inventory, { name: 'rpc-vm', state: 'Running', vmNics: [{ l3NetworkUuid: w.l3NetworkUuid }] });
    const gc = await cli.call(M.updateGlobalConfig, { category: 'apiTimeout', name: 'CreateZone', value: '2h' });
    t.match(gc.reply.inventory, { category: 'apiTimeout', name: 'CreateZone', value: '2h' }, 'path fields from the message');
    const del = await cli.call(M.deleteZone, { uuid: z.reply.inventory.uuid, deleteMode: 'Enforcing' });
    t.same(del.reply, { success: true });
    t.equal(del.cls, 'org.zstack.header.zone.APIDeleteZoneEvent');
    const shared = await cli.call('org.zstack.header.simulator.APIAddSimulatorHostMsg', {
      name: 'rpc-host',
      managementIp: '192.168.200.199',
      clusterUuid: w.clusterUuid,
      cpuCapacity: 8,
      memoryCapacity: 2 ** 33,
    });
    t.equal(shared.cls, 'org.zstack.header.host.APIAddHostEvent', 'the event class 1.1 shares between the Add*Host messages');
    t.equal(shared.reply.inventory.status, 'Connected');
  });

  t.test('query messages with each of 1.1 operators', async (t) => {
    for (const [name, cpuNum] of [
      ['q-a', 1],
      ['q-b', 2],
      ['q-c', 4],
    ] as const)
      await zs.createInstanceOffering({ name, cpuNum, memorySize: 2 ** 27 });
    const names = async (conditions: Array<{ name: string; op: string; value?: string }>, extra: Record<string, unknown> = {}) => {
      const r = await cli.call(M.queryOffering, {
        conditions: [{ name: 'name', op: 'like', value: 'q-%' }, ...conditions.map((c) => ({ value: '', ...c }))],
        ...extra,
      });
      t.equal(r.cls, 'org.zstack.header.configuration.APIQueryInstanceOfferingReply');
      return (r.reply.inventories ?? []).map((i: { name: string }) => i.name).sort();
    };
    t.same(await names([{ name: 'cpuNum', op: '=', value: '2' }]), ['q-b'], '=');
    t.same(await names([{ name: 'cpuNum', op: '!=', value: '2' }]), ['q-a', 'q-c'], '!=');
    t.same(await names([{ name: 'cpuNum', op: '>', value: '1' }]), ['q-b', 'q-c'], '>');
    t.same(await names([{ name: 'cpuNum', op: '<', value: '4' }]), ['q-a', 'q-b'], '<');
    t.same(await names([{ name: 'cpuNum', op: '>=', value: '2' }]), ['q-b', 'q-c'], '>=');
    t.same(await names([{ name: 'cpuNum', op: '<=', value: '2' }]), ['q-a', 'q-b'], '<=');
    t.same(await names([{ name: 'cpuNum', op: 'in', value: '1,4' }]), ['q-a', 'q-c'], 'in');
    t.same(await names([{ name: 'cpuNum', op: 'not in', value: '1,4' }]), ['q-b'], 'not in');
    t.same(await names([{ name: 'name', op: 'not like', value: '%b' }]), ['q-a', 'q-c'], 'not like');
    t.same(await names([{ name: 'description', op: 'is null' }]), ['q-a', 'q-b', 'q-c'], 'is null');
    t.same(await names([{ name: 'description', op: 'is not null' }]), [], 'is not null');
    const count = await cli.call(M.queryOffering, { conditions: [{ name: 'name', op: 'like', value: 'q-%' }], count: true });
    t.same(count.reply, { total: 3, success: true }, 'count=true: no inventories');
    const page = await cli.call(M.queryOffering, {
      conditions: [{ name: 'name', op: 'like', value: 'q-%' }],
      limit: 1,
      start: 1,
      sortBy: 'cpuNum',
      sortDirection: 'desc',
      replyWithCount: true,
      fields: ['name', 'cpuNum'],
    });
    t.same(page.reply, { inventories: [{ name: 'q-b', cpuNum: 2 }], total: 3, success: true }, 'limit, start, sort, replyWithCount, fields');
    const bad = await cli.call(M.queryOffering, { conditions: [{ name: 'cpuNum', op: '~=', value: '1' }] });
    t.equal(bad.reply.error.code, 'SYS.1007', "REST's operators are not 1.1's");
    const unknownField = await cli.call(M.queryOffering, { conditions: [{ name: 'colour', op: '=', value: 'red' }] });
    t.equal(unknownField.reply.error.code, 'SYS.1007', 'unknown query field');
  });

  t.test('errors come in the result envelope', async (t) => {
    const noSession = await cli.call(M.createZone, { name: 'x' }, { session: {} });
    t.equal(noSession.cls, 'org.zstack.header.message.APIEvent');
    t.equal(noSession.reply.success, false);
    t.equal(noSession.reply.error.code, 'ID.1001');
    const stale = await cli.call(M.queryZone, { conditions: [] }, { session: { uuid: '0'.repeat(32) } });
    t.equal(stale.cls, 'org.zstack.header.message.APIReply');
    t.equal(stale.reply.error.code, 'ID.1001');
    const invalid = await cli.call(M.createOffering, { name: 'bad', cpuNum: 'many', memorySize: 1 });
    t.equal(invalid.reply.error.code, 'SYS.1007', 'a scalar that is no number');
    t.match(invalid.reply.error.details, /cpuNum/);
    const missing = await cli.call(M.createCluster, { name: 'c', hypervisorType: 'Simulator', zoneUuid: 'a'.repeat(32) });
    t.equal(missing.reply.error.code, 'SYS.1003', 'unknown zone');
    const noPath = await cli.call(M.deleteZone, {});
    t.equal(noPath.reply.error.code, 'SYS.1007');
    const unknown = await cli.call('org.zstack.header.zone.APINoSuchThingMsg', { name: 'x' });
    t.equal(unknown.cls, 'org.zstack.header.message.APIReply');
    t.equal(unknown.reply.error.code, 'SYS.1008', 'a message the server does not serve');
    for (const raw of ['{"org.zstack.header.zone.APICreateZoneMsg": ', '[]', '{}', '{"org.zstack.header.zone.APICreateZoneMsg": "x"}']) {
      const r = await cli.post(raw);
      t.equal(r.status, 200, raw);
      t.equal(r.json.state, 'Done', `${raw}: Done, never something to poll`);
      t.equal(JSON.parse(r.json.result)[Object.keys(JSON.parse(r.json.result))[0]].success, false);
    }
    const gone = await cli.poll('e'.repeat(32));
    t.equal(gone.json.state, 'Done', 'an unknown result ends the polling');
    t.match(JSON.parse(gone.json.result), { 'org.zstack.header.message.APIEvent': { success: false, error: { code: 'SYS.1003' } } });
    const junk = await cli.poll('None');
    t.equal(junk.json.state, 'Done');
  });

  t.test('every API with a message class is reachable: an envelope and a reply of its class, never SYS.1000/1008', async (t) => {
    const other = new Cli11(s.url);
    await other.login();
    const ops = s.app.operations.filter((op) => op.x.message && op.operationId !== 'LogOut');
    t.ok(ops.length >= 100, `${ops.length} APIs`);
    for (const op of ops) {
      const r = await other.call(op.x.message!, op.x.kind === 'query' ? { conditions: [], limit: 1 } : {});
      t.ok(r.cls === op.x.replyClass || r.cls.startsWith('org.zstack.header.message.API'), `${op.operationId}: ${r.cls}`);
      t.type(r.reply.success, 'boolean', `${op.operationId}: success present`);
      if (!r.reply.success) t.notOk(['SYS.1000', 'SYS.1008'].includes(r.reply.error.code), `${op.operationId}: ${r.reply.error.code} ${r.reply.error.details}`);
    }
  });

  t.test("1.1's legacy reads (Get, List, Search) from the query engine", async (t) => {
    const zones = (await zs.queryZone({})).inventories!;
    const get = await cli.call('org.zstack.header.zone.APIGetZoneMsg', { uuid: w.zoneUuid });
    t.equal(get.cls, 'org.zstack.header.zone.APIGetZoneReply');
    t.equal(typeof get.reply.inventory, 'string', 'the inventory as a JSON string');
    t.match(JSON.parse(get.reply.inventory), { uuid: w.zoneUuid, name: 'zone1' });
    const missing = await cli.call('org.zstack.header.zone.APIGetZoneMsg', { uuid: 'd'.repeat(32) });
    t.equal(missing.reply.error.code, 'SYS.1003');
    const list = await cli.call('org.zstack.header.zone.APIListZonesMsg', { uuids: [w.zoneUuid] });
    t.equal(list.cls, 'org.zstack.header.zone.APIListZonesReply');
    t.same(
      list.reply.inventories.map((z: { uuid: string }) => z.uuid),
      [w.zoneUuid],
    );
    const all = await cli.call('org.zstack.header.zone.APIListZonesMsg', { offset: 0, length: 2147483647 });
    t.equal(all.reply.inventories.length, zones.length, 'length = Integer.MAX_VALUE: all of them');
    const paged = await cli.call('org.zstack.header.zone.APIListZonesMsg', { offset: 1, length: 1 });
    t.equal(paged.reply.inventories.length, Math.min(1, zones.length - 1));
    const clusters = await cli.call('org.zstack.header.cluster.APIListClusterMsg', {});
    t.equal(clusters.reply.inventories[0].uuid, w.clusterUuid, 'ListCluster (no plural)');
    const search = await cli.call('org.zstack.header.zone.APISearchZoneMsg', { nameOpValueTriples: [{ name: 'name', op: 'AND_EQ', val: 'zone1' }] });
    t.equal(search.cls, 'org.zstack.header.zone.APISearchZoneReply');
    t.same(
      JSON.parse(search.reply.content).map((z: { uuid: string }) => z.uuid),
      [w.zoneUuid],
      'content: the inventories as a JSON string',
    );
    const inList = await cli.call('org.zstack.header.network.l3.APISearchL3NetworkMsg', {
      nameOpListTriples: [{ name: 'uuid', op: 'AND_IN', vals: [w.l3NetworkUuid] }],
      fields: ['uuid', 'name'],
    });
    t.same(JSON.parse(inList.reply.content), [{ uuid: w.l3NetworkUuid, name: 'l3-etpz' }]);
    const or = await cli.call('org.zstack.header.zone.APISearchZoneMsg', { nameOpValueTriples: [{ name: 'name', op: 'OR_EQ', val: 'x' }] });
    t.equal(or.reply.error.code, 'SYS.1007');
    const noSession = await cli.call('org.zstack.header.zone.APIGetZoneMsg', { uuid: w.zoneUuid }, { session: {} });
    t.equal(noSession.reply.error.code, 'ID.1001');
  });

  t.test('/zstack/api without the slash, and PUT', async (t) => {
    const noSlash = new Cli11(s.url, '/zstack/api');
    noSlash.session = cli.session;
    t.equal((await noSlash.call(M.version)).reply.success, true);
    const res = await fetch(`${s.url}/zstack/api/`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ [M.version]: { session: { uuid: cli.session } } }),
    });
    t.equal(JSON.parse((await res.json()).result)['org.zstack.header.managementnode.APIGetVersionReply'].success, true);
  });

  t.test('§9 typed as the 1.1 CLI sends it', async (t) => {
    await zs.createVmInstance({ name: 'vm1', instanceOfferingUuid: w.instanceOfferingUuid, imageUuid: w.imageUuid, l3NetworkUuids: [w.l3NetworkUuid] });
    // >>>QueryNetworkServiceL3NetworkRef l3NetworkUuid=<l3>
    const step1 = await cli.call('org.zstack.header.network.service.APIQueryNetworkServiceL3NetworkRefMsg', {
      conditions: [{ name: 'l3NetworkUuid', op: '=', value: w.l3NetworkUuid }],
    });
    t.equal(step1.cls, 'org.zstack.header.network.service.APIQueryNetworkServiceL3NetworkRefReply');
    t.same(Object.keys(step1.reply.inventories[0]).sort(), Object.keys(seed.step1QueryNetworkServiceL3NetworkRef.inventories[0]).sort());
    const vr = step1.reply.inventories[0].networkServiceProviderUuid;
    // >>>DetachNetworkServiceFromL3Network l3NetworkUuid=<l3> networkServices='{"<vr>":["DHCP","DNS"]}'
    const step2 = await cli.call('org.zstack.header.network.service.APIDetachNetworkServiceFromL3NetworkMsg', {
      l3NetworkUuid: w.l3NetworkUuid,
      networkServices: { [vr]: ['DHCP', 'DNS'] },
    });
    t.equal(step2.cls, 'org.zstack.header.network.service.APIDetachNetworkServiceFromL3NetworkEvent');
    t.same(step2.reply.inventory.networkServices, []);
    // >>>QueryNetworkServiceProvider type=Flat
    const step3 = await cli.call('org.zstack.header.network.service.APIQueryNetworkServiceProviderMsg', {
      conditions: [{ name: 'type', op: '=', value: 'Flat' }],
    });
    t.equal(step3.reply.inventories.length, 1);
    const flat = step3.reply.inventories[0].uuid;
    // >>>QueryL3Network fields=l2NetworkUuid, uuid=<l3>
    const step4 = await cli.call('org.zstack.header.network.l3.APIQueryL3NetworkMsg', {
      fields: ['l2NetworkUuid'],
      conditions: [{ name: 'uuid', op: '=', value: w.l3NetworkUuid }],
    });
    t.same(step4.reply, { inventories: [{ l2NetworkUuid: w.l2NetworkUuid }], success: true }, 'step 4 exactly as the seed');
    // >>>AttachNetworkServiceProviderToL2Network l2NetworkUuid=<l2> networkServiceProviderUuid=<flat>
    const step5 = await cli.call('org.zstack.header.network.service.APIAttachNetworkServiceProviderToL2NetworkMsg', {
      l2NetworkUuid: w.l2NetworkUuid,
      networkServiceProviderUuid: flat,
    });
    t.equal(step5.reply.success, true);
    // >>>AttachNetworkServiceToL3Network l3NetworkUuid=<l3> networkServices='{"<flat>":["DHCP","Userdata"]}'
    const step6 = await cli.call('org.zstack.header.network.service.APIAttachNetworkServiceToL3NetworkMsg', {
      l3NetworkUuid: w.l3NetworkUuid,
      networkServices: { [flat]: ['DHCP', 'Userdata'] },
    });
    t.same(
      step6.reply.inventory.networkServices.map((n: any) => n.networkServiceType),
      ['DHCP', 'Userdata'],
    );
    // >>>QueryVirtualRouterVm, >>>DestroyVmInstance uuid=<vr vm>
    const step7 = await cli.call('org.zstack.network.service.virtualrouter.APIQueryVirtualRouterVmMsg', { conditions: [] });
    t.equal(step7.reply.inventories.length, 1);
    const destroyed = await cli.call('org.zstack.header.vm.APIDestroyVmInstanceMsg', { uuid: step7.reply.inventories[0].uuid });
    t.same(destroyed.reply, seed.step7DestroyVmInstance, 'DestroyVmInstance: {success: true}');
    t.equal(destroyed.cls, 'org.zstack.header.vm.APIDestroyVmInstanceEvent');
    // >>>QueryHost, >>>ReconnectHost uuid=<host>
    const step8 = await cli.call('org.zstack.header.host.APIQueryHostMsg', { conditions: [] });
    t.ok(step8.reply.inventories.length >= 2);
    for (const h of step8.reply.inventories) {
      const r = await cli.call('org.zstack.header.host.APIReconnectHostMsg', { uuid: h.uuid });
      t.equal(r.cls, 'org.zstack.header.host.APIReconnectHostEvent');
      t.equal(r.reply.success, true);
    }
  });
});

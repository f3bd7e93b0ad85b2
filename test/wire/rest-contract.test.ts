// Contract tests: requests exactly as upstream's SDKs send them (every declared field with its default, the
// `{"null":{}}` / `{"":{}}` bodies, `X-JSON-Schema: true` on every request) get upstream's answers: the status, the
// reply keys and the `schema` map with upstream's inventory class names.
import t from 'tap';
import { startServer } from '../lib/harness.js';
import { buildWorld } from '../lib/world.js';
import { UpstreamSdk } from './upstream-sdk.js';

t.test('REST wire fidelity for upstream SDKs', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const zs = s.client;
  const w = await buildWorld(zs);
  const sdk = new UpstreamSdk(s.url);

  t.test('login carries the schema map when asked', async (t) => {
    const r = await sdk.login();
    t.equal(r.status, 200);
    t.same(r.json.schema, { inventory: 'org.zstack.header.identity.SessionInventory' });
    const plain = await fetch(`${s.url}/zstack/v1/accounts/login`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        logInByAccount: { accountName: 'admin', password: (await import('node:crypto')).createHash('sha512').update('password').digest('hex') },
      }),
    }).then((x) => x.json());
    t.notOk('schema' in plain, 'no schema on a sync reply without X-JSON-Schema');
  });

  t.test('unknown body fields and query parameters are ignored', async (t) => {
    const r = await sdk.call('POST', '/zstack/v1/zones', { params: { name: 'zone-gson', colour: 'red', isolated: false }, somethingElse: 1 });
    t.equal(r.status, 200);
    t.equal(r.json.inventory.name, 'zone-gson');
    t.notOk('colour' in r.json.inventory);
    t.same(r.json.schema, { inventory: 'org.zstack.header.zone.ZoneInventory' }, 'the poll answers with the schema map');
    const q = await sdk.send('GET', `/zstack/v1/zones?q=name=zone-gson&systemTags=x&unknownParam=1`);
    t.equal(q.status, 200);
    t.equal(q.json.inventories.length, 1);
    const g = await sdk.send('GET', `/zstack/v1/accounts/sessions/${sdk.session}/valid?foo=bar`);
    t.equal(g.status, 200, 'a sync GET ignores an unknown query parameter');
  });

  t.test('prototype keys are still refused', async (t) => {
    for (const raw of [
      '{"params": {"name": "z", "__proto__": {"admin": true}}}',
      '{"params": {"name": "z", "constructor": {"prototype": {"x": 1}}}}',
      '{"__proto__": {"params": {"name": "z"}}}',
    ]) {
      const r = await sdk.send('POST', '/zstack/v1/zones', undefined, { raw });
      t.equal(r.status, 400, raw);
      t.equal(r.json?.error?.code, 'SYS.1007');
    }
    t.same((await zs.queryZone({ q: ['name=z'] })).inventories, [], 'nothing created');
  });

  t.test('default-valued fields of upstream SDK actions', async (t) => {
    const ps = await sdk.call('POST', '/zstack/v1/primary-storage/simulators', {
      params: {
        name: 'ps-sdk',
        zoneUuid: w.zoneUuid,
        url: '/ps-sdk',
        totalCapacity: 2 ** 40,
        availableCapacity: 2 ** 40,
        totalPhysicalCapacity: 0,
        availablePhysicalCapacity: 0,
        type: null,
        resourceUuid: null,
        tagUuids: null,
      },
      systemTags: null,
      userTags: null,
    });
    t.equal(ps.status, 200, JSON.stringify(ps.json?.error));
    t.equal(ps.json.schema.inventory, 'org.zstack.header.storage.primary.PrimaryStorageInventory');
    // Older SDKs send `{"": {}}` to the attach APIs with URL-only parameters.
    const attachPs = await sdk.call('POST', `/zstack/v1/clusters/${w.clusterUuid}/primary-storage/${ps.json.inventory.uuid}`, { '': {} });
    t.equal(attachPs.status, 200, JSON.stringify(attachPs.json?.error));
    t.same(attachPs.json.inventory.attachedClusterUuids, [w.clusterUuid]);

    const bs = await sdk.call('POST', '/zstack/v1/backup-storage/simulators', {
      params: { name: 'bs-sdk', url: '/bs-sdk', totalCapacity: 2 ** 40, availableCapacity: 2 ** 40, importImages: false },
    });
    t.equal(bs.status, 200, JSON.stringify(bs.json?.error));
    const attachBs = await sdk.call('POST', `/zstack/v1/zones/${w.zoneUuid}/backup-storage/${bs.json.inventory.uuid}`, { '': {} });
    t.equal(attachBs.status, 200, JSON.stringify(attachBs.json?.error));

    const l2 = await sdk.call('POST', '/zstack/v1/l2-networks/vlan', {
      params: { name: 'l2-sdk', zoneUuid: w.zoneUuid, physicalInterface: 'eth1', vlan: 100, isolated: false, pvlan: null },
    });
    t.equal(l2.status, 200, JSON.stringify(l2.json?.error));
    t.same(l2.json.schema, { inventory: 'org.zstack.header.network.l2.L2VlanNetworkInventory' }, 'the subclass by type');
    // SDKs ≥ 2.0 send `{"null": {}}` to AttachL2NetworkToCluster (parameterName = "null").
    const attachL2 = await sdk.call('POST', `/zstack/v1/l2-networks/${l2.json.inventory.uuid}/clusters/${w.clusterUuid}`, { null: {} });
    t.equal(attachL2.status, 200, JSON.stringify(attachL2.json?.error));
    t.same(attachL2.json.inventory.attachedClusterUuids, [w.clusterUuid]);

    const l3 = await sdk.call('POST', '/zstack/v1/l3-networks', {
      params: { name: 'l3-sdk', l2NetworkUuid: l2.json.inventory.uuid, enableIPAM: true, system: false },
    });
    t.equal(l3.status, 200, JSON.stringify(l3.json?.error));

    const offering = await zs.createDiskOffering({ name: 'do', diskSize: 2 * 2 ** 30 });
    const vol = await sdk.call('POST', '/zstack/v1/volumes/data', {
      params: { name: 'vol-sdk', diskOfferingUuid: offering.inventory.uuid, diskSize: 0 },
    });
    t.equal(vol.status, 200, JSON.stringify(vol.json?.error));
    t.equal(vol.json.inventory.size, 2 * 2 ** 30, 'the size comes from the offering');
    t.equal(vol.json.schema.inventory, 'org.zstack.header.volume.VolumeInventory');
    const noSize = await sdk.call('POST', '/zstack/v1/volumes/data', { params: { name: 'vol-none', diskSize: 0 } });
    t.equal(noSize.json?.error?.code, 'SYS.1007', 'neither an offering nor a size');

    const agents = await zs.queryConsoleProxyAgent({});
    const agent = agents.inventories![0];
    const upd = await sdk.call('PUT', `/zstack/v1/consoles/agents/${agent.uuid}/actions`, {
      updateConsoleProxyAgent: { consoleProxyOverriddenIp: '203.0.113.10', consoleProxyPort: 0 },
    });
    t.equal(upd.status, 200, JSON.stringify(upd.json?.error));
    t.equal(upd.json.inventory.consoleProxyPort, agent.consoleProxyPort, 'port 0 leaves the port unchanged');
    t.equal(upd.json.schema.inventory, 'org.zstack.header.console.ConsoleProxyAgentInventory');
  });

  t.test("UpdateAccount at upstream's PUT /accounts/{uuid}", async (t) => {
    const me = (await zs.queryAccount({ q: ['name=admin'] })).inventories![0];
    for (const path of [`/zstack/v1/accounts/${me.uuid}`, `/zstack/v1/accounts/${me.uuid}/actions`]) {
      const r = await sdk.call('PUT', path, { updateAccount: { description: `via ${path}` } });
      t.equal(r.status, 200, JSON.stringify(r.json?.error));
      t.equal(r.json.inventory.description, `via ${path}`);
      t.equal(r.json.schema.inventory, 'org.zstack.header.identity.AccountInventory');
    }
  });

  t.test('every query reply carries the schema map', async (t) => {
    const vm = (
      await zs.createVmInstance({
        name: 'vm-schema',
        instanceOfferingUuid: w.instanceOfferingUuid,
        imageUuid: w.imageUuid,
        l3NetworkUuids: [w.l3NetworkUuid],
      })
    ).inventory;
    // Without X-JSON-Schema too: upstream sets it on every query reply.
    const plain = await fetch(`${s.url}/zstack/v1/vm-instances?q=uuid=${vm.uuid}`, { headers: { Authorization: `OAuth ${sdk.session}` } }).then((x) =>
      x.json(),
    );
    t.match(plain.schema, {
      'inventories[0]': 'org.zstack.header.vm.VmInstanceInventory',
      'inventories[0].vmNics[0]': 'org.zstack.header.vm.VmNicInventory',
      'inventories[0].allVolumes[0]': 'org.zstack.header.volume.VolumeInventory',
    });
    const keys = Object.keys(plain.schema);
    t.ok(keys.indexOf('inventories[0].vmNics[0]') < keys.indexOf('inventories[0]'), 'children before their parent, as upstream');
    // Exactly the inventories, in the reply's own key order (the walk skips scalar fields, never an inventory).
    t.same(keys, ['inventories[0].vmNics[0]', 'inventories[0].allVolumes[0]', 'inventories[0]']);
    const byUuid = await sdk.send('GET', `/zstack/v1/vm-instances/${vm.uuid}`);
    t.same(byUuid.json.schema, plain.schema, 'GET by uuid: the same map');

    const providers = await sdk.send('GET', '/zstack/v1/network-services/providers');
    t.equal(providers.status, 200);
    providers.json.inventories.forEach((_: unknown, i: number) =>
      t.equal(providers.json.schema[`inventories[${i}]`], 'org.zstack.header.network.service.NetworkServiceProviderInventory'),
    );
    const offerings = await sdk.send('GET', '/zstack/v1/instance-offerings');
    const classes = offerings.json.inventories.map((o: { type: string }, i: number) => [o.type, offerings.json.schema[`inventories[${i}]`]]);
    t.ok(
      classes.some(([type, cls]: string[]) => type === 'VirtualRouter' && cls === 'org.zstack.network.service.virtualrouter.VirtualRouterOfferingInventory'),
      'VR offerings keep their subclass',
    );
    t.ok(classes.some(([type, cls]: string[]) => type === 'UserVm' && cls === 'org.zstack.header.configuration.InstanceOfferingInventory'));
    const l3 = await sdk.send('GET', `/zstack/v1/l3-networks?q=uuid=${w.l3NetworkUuid}`);
    t.equal(l3.json.schema['inventories[0].ipRanges[0]'], 'org.zstack.header.network.l3.IpRangeInventory');
    const fields = await sdk.send('GET', `/zstack/v1/l3-networks?q=uuid=${w.l3NetworkUuid}&fields=l2NetworkUuid`);
    t.same(fields.json, {
      inventories: [{ l2NetworkUuid: w.l2NetworkUuid }],
      schema: { 'inventories[0]': 'org.zstack.header.network.l3.L3NetworkInventory' },
      success: true,
    });
    const count = await sdk.send('GET', '/zstack/v1/zones?count=true');
    t.same(count.json, { total: 2, success: true }, 'a count has no inventories, so no map');
  });
});

// Smoke run on the embedded database (what `npm start` uses with no configuration).
import t from 'tap';
import { startServer } from '../lib/harness.js';
import { buildWorld } from '../lib/world.js';

t.test('the server works on PGlite', async (t) => {
  const s = await startServer({ pglite: true });
  t.teardown(() => s.close());
  const { inventory } = await s.client.createZone({ name: 'embedded' });
  const found = await s.client.queryZone({ q: ['name~=emb%'], replyWithCount: true });
  t.equal(found.total, 1);
  t.equal(found.inventories![0].uuid, inventory.uuid);
  t.equal((await s.client.getVersion()).version, '1.1.0');
});

t.test('VMs are created, queried and destroyed on PGlite (the tryout path)', async (t) => {
  const s = await startServer({ pglite: true });
  t.teardown(() => s.close());
  const w = await buildWorld(s.client, { virtualRouter: false });
  await s.client.attachNetworkServiceToL3Network({
    l3NetworkUuid: w.l3NetworkUuid,
    networkServices: { [w.flatProviderUuid]: ['DHCP'] },
  });
  // Several of one shape (the reservation's text is rendered once and reused), then one with a data disk.
  const vms = await Promise.all(
    [1, 2, 3].map((i) =>
      s.client.createVmInstance({ name: `lite-${i}`, instanceOfferingUuid: w.instanceOfferingUuid, imageUuid: w.imageUuid, l3NetworkUuids: [w.l3NetworkUuid] }),
    ),
  );
  t.same(
    vms.map((v) => v.inventory.state),
    ['Running', 'Running', 'Running'],
  );
  t.equal(new Set(vms.map((v) => v.inventory.vmNics[0].ip)).size, 3, 'three distinct addresses');
  const disk = (await s.client.createDiskOffering({ name: 'd1', diskSize: 2 ** 30 })).inventory;
  const big = (
    await s.client.createVmInstance({
      name: 'lite-disk',
      instanceOfferingUuid: w.instanceOfferingUuid,
      imageUuid: w.imageUuid,
      l3NetworkUuids: [w.l3NetworkUuid],
      dataDiskOfferingUuids: [disk.uuid],
    })
  ).inventory;
  t.same(big.allVolumes.map((v) => [v.type, v.status]).sort(), [
    ['Data', 'Ready'],
    ['Root', 'Ready'],
  ]);
  const running = await s.client.queryVmInstance({ q: ['state=Running'], replyWithCount: true });
  t.equal(running.total, 4);
  await s.client.destroyVmInstance({ uuid: vms[0].inventory.uuid });
  t.equal((await s.client.queryVmInstance({ q: ['state=Running'], replyWithCount: true })).total, 3);
});

t.test('a VM no host can take is refused on PGlite, not left waiting', async (t) => {
  // The refusal takes the allocator's full pass inside the reservation's transaction; PGlite has one connection, so
  // a query there on the pool instead of the transaction waited forever (db/tx-scope.ts now refuses such a query).
  const s = await startServer({ pglite: true });
  t.teardown(() => s.close());
  const w = await buildWorld(s.client, { virtualRouter: false });
  const huge = (await s.client.createInstanceOffering({ name: 'huge', cpuNum: 1024, memorySize: 2 ** 30 })).inventory;
  const e = await s.client
    .createVmInstance({ name: 'too-big', instanceOfferingUuid: huge.uuid, imageUuid: w.imageUuid, l3NetworkUuids: [w.l3NetworkUuid] })
    .catch((x) => x);
  t.equal(e.code, 'HOST_ALLOCATION.1001');
  t.match(e.details, /cpu/i, 'says why each host was dropped');
});

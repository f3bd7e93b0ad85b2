// The shared Update / Change…State / Delete handler shapes (server/src/core/crud.ts): through real APIs built on
// them (zones, disk offerings, L2 networks, VIPs, EIPs) and the builders themselves on a test server's database.
import t, { type Test } from 'tap';
import { eq } from 'drizzle-orm';
import { startServer } from '../lib/harness.js';
import { ZStackError } from '../../sdk/src/index.js';
import { backgroundContext } from '../../server/src/core/context.js';
import { changeStateHandler, deleteHandler, updateHandler } from '../../server/src/core/crud.js';
import type { Handler } from '../../server/src/core/handlers.js';
import { zones } from '../../server/src/db/schema/index.js';
import { zoneInventory } from '../../server/src/zone/inventory.js';

const MISSING = '0123456789abcdef0123456789abcdef';
const LONG_AGO = new Date('2001-02-03T04:05:06Z');

t.test('crud handlers', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const zs = s.client;
  const db = s.app.db;

  const rowOf = async (uuid: string) => (await db.select().from(zones).where(eq(zones.uuid, uuid)))[0];
  /** Sets the zone's lastOpDate far back, so a write is seen moving it (inventories show whole seconds). */
  const age = (uuid: string) => db.update(zones).set({ lastOpDate: LONG_AGO }).where(eq(zones.uuid, uuid));
  const notFound = async (t: Test, p: Promise<unknown>, type: string) => {
    const e = await p.then(
      () => undefined,
      (x: unknown) => x,
    );
    t.ok(e instanceof ZStackError, `${type}: an error`);
    const z = e as ZStackError;
    t.equal(z.code, 'SYS.1003');
    t.equal(z.details, `invalid field[uuid], resource[uuid:${MISSING}, type:${type}] not found`);
    return z;
  };

  t.test('update: only the fields given, and lastOpDate', async (t) => {
    const { inventory: z } = await zs.createZone({ name: 'before', description: 'kept' });
    await age(z.uuid);
    const { inventory: up } = await zs.updateZone({ uuid: z.uuid, name: 'after' });
    t.equal(up.name, 'after');
    t.equal(up.description, 'kept', 'a field not given stays');
    const row = await rowOf(z.uuid);
    t.ok(row.lastOpDate > LONG_AGO, 'lastOpDate moves');
    t.notMatch(up.lastOpDate, /2001/, 'the reply is the row written');

    const { inventory: d } = await zs.updateZone({ uuid: z.uuid, description: 'changed' });
    t.equal(d.name, 'after', 'the name given before stays');
    t.equal(d.description, 'changed');

    const { inventory: off } = await zs.createDiskOffering({ name: 'disk', description: 'small', diskSize: 1 << 30 });
    const { inventory: offUp } = await zs.updateDiskOffering({ uuid: off.uuid, description: 'still small' });
    t.equal(offUp.name, 'disk');
    t.equal(offUp.description, 'still small');
    t.equal(offUp.diskSize, 1 << 30);
  });

  t.test('update of an unknown uuid: SYS.1003 naming the field and the type', async (t) => {
    const z = await notFound(t, zs.updateZone({ uuid: MISSING, name: 'x' }), 'ZoneVO');
    t.equal(z.httpStatus, 404, 'answered by the check, before any job');
    await notFound(t, zs.updateDiskOffering({ uuid: MISSING, name: 'x' }), 'DiskOfferingVO');
    await notFound(t, zs.updateEip({ uuid: MISSING, name: 'x' }), 'EipVO');
    // UpdateL2Network has no check: the run (the job) fails the same way.
    await notFound(t, zs.updateL2Network({ uuid: MISSING, name: 'x' }), 'L2NetworkVO');
  });

  t.test('change state: the event mapped to the state column', async (t) => {
    const { inventory: z } = await zs.createZone({ name: 'stateful' });
    t.equal(z.state, 'Enabled');
    await age(z.uuid);
    const { inventory: dis } = await zs.changeZoneState({ uuid: z.uuid, stateEvent: 'disable' });
    t.equal(dis.state, 'Disabled');
    t.equal(dis.name, 'stateful', 'nothing else changes');
    t.equal((await rowOf(z.uuid)).state, 'Disabled');
    t.ok((await rowOf(z.uuid)).lastOpDate > LONG_AGO, 'lastOpDate moves');
    t.equal((await zs.changeZoneState({ uuid: z.uuid, stateEvent: 'enable' })).inventory.state, 'Enabled');
    t.equal((await zs.changeZoneState({ uuid: z.uuid, stateEvent: 'enable' })).inventory.state, 'Enabled', 'enabling twice: Enabled');

    const { inventory: off } = await zs.createDiskOffering({ name: 'd', diskSize: 1 << 30 });
    t.equal((await zs.changeDiskOfferingState({ uuid: off.uuid, stateEvent: 'disable' })).inventory.state, 'Disabled');
    await notFound(t, zs.changeZoneState({ uuid: MISSING, stateEvent: 'disable' }), 'ZoneVO');
    await notFound(t, zs.changeL3NetworkState({ uuid: MISSING, stateEvent: 'disable' }), 'L3NetworkVO');
  });

  t.test('delete: gone, and a missing uuid answers {}', async (t) => {
    const { inventory: z } = await zs.createZone({ name: 'doomed' });
    t.same(await zs.deleteZone({ uuid: z.uuid }), { success: true });
    t.equal(await rowOf(z.uuid), undefined, 'the row is gone');
    t.same(await zs.deleteZone({ uuid: z.uuid }), { success: true }, 'deleting it again succeeds');
    t.same(await zs.deleteVip({ uuid: MISSING }), { success: true }, 'an unknown VIP: success (no cascade)');
    t.same(await zs.deleteEip({ uuid: MISSING }), { success: true });
    t.same(await zs.deleteDiskOffering({ uuid: MISSING }), { success: true });
  });

  t.test('the builders themselves', async (t) => {
    const call = backgroundContext('crud-test', 60_000, { timer: false });
    const { inventory: z } = await zs.createZone({ name: 'direct', description: 'kept' });

    // Only the listed fields are written, even when the message carries more.
    const nameOnly: Handler<'UpdateZone'> = updateHandler(s.app, { table: zones, entity: 'ZoneVO', inventory: zoneInventory, fields: ['name'] });
    t.type(nameOnly.check, 'function', 'checks by default');
    await nameOnly.check!({ uuid: z.uuid }, call);
    const r = await nameOnly.run({ uuid: z.uuid, name: 'renamed', description: 'not listed' }, call);
    t.equal(r.inventory?.name, 'renamed');
    t.equal(r.inventory?.description, 'kept');
    const e = await nameOnly.check!({ uuid: MISSING }, call).catch((x: { error?: { code?: string } }) => x);
    t.equal((e as { error?: { code?: string } }).error?.code, 'SYS.1003');

    // check: false leaves the 404 to the run.
    const unchecked: Handler<'UpdateZone'> = updateHandler(s.app, { table: zones, entity: 'ZoneVO', inventory: zoneInventory, fields: ['name'], check: false });
    t.equal(unchecked.check, undefined);
    const runErr = await unchecked.run({ uuid: MISSING, name: 'x' }, call).catch((x: { error?: { code?: string; details?: string } }) => x);
    t.equal((runErr as { error?: { code?: string } }).error?.code, 'SYS.1003');

    // Events of one's own: each event to the state given.
    const inverted: Handler<'ChangeZoneState'> = changeStateHandler(s.app, {
      table: zones,
      entity: 'ZoneVO',
      inventory: zoneInventory,
      events: { enable: 'Disabled', disable: 'Enabled' },
    });
    t.equal((await inverted.run({ uuid: z.uuid, stateEvent: 'enable' }, call)).inventory?.state, 'Disabled');
    t.equal((await inverted.run({ uuid: z.uuid, stateEvent: 'disable' }, call)).inventory?.state, 'Enabled');

    // Delete with onlyIfIn: a missing uuid never reaches the cascade (the node named here does not exist).
    const guarded: Handler<'DeleteZone'> = deleteHandler(s.app, { node: 'no-such-node', onlyIfIn: zones });
    t.same(await guarded.run({ uuid: MISSING }, call), {});
    await t.rejects(guarded.run({ uuid: z.uuid }, call), /unknown kind no-such-node/, 'an existing one does');
    const direct: Handler<'DeleteZone'> = deleteHandler(s.app, { node: 'zone' });
    t.same(await direct.run({ uuid: z.uuid, deleteMode: 'Enforcing' }, call), {});
    t.equal(await rowOf(z.uuid), undefined);
  });
});

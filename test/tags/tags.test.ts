// System and user tags (issue 17 item 8): written with the resource a creating call makes, refused when a system tag
// is unknown, queryable (QuerySystemTag/QueryUserTag and `__systemTag__`/`__userTag__` on every Query API), managed
// (CreateSystemTag, CreateUserTag, UpdateSystemTag, DeleteTag) and deleted with their resource, whatever deletes it.
import t from 'tap';
import { sql } from 'drizzle-orm';
import { startServer } from '../lib/harness.js';
import { ZStackError } from '../../sdk/src/index.js';

t.test('tags', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const zs = s.client;

  const zone = (await zs.createZone({ name: 'tagged', userTags: ['web', 'prod', 'web'], systemTags: ['host::reservedCpu::2'] })).inventory;
  const other = (await zs.createZone({ name: 'plain' })).inventory;

  t.test('a creating call writes its tags with the new resource', async (t) => {
    const user = (await zs.queryUserTag({ q: [`resourceUuid=${zone.uuid}`], sort: '+tag' })).inventories!;
    t.same(
      user.map((x) => [x.tag, x.resourceType, x.type]),
      [
        ['prod', 'ZoneVO', 'User'],
        ['web', 'ZoneVO', 'User'],
      ],
      'duplicates written once',
    );
    const sys = (await zs.querySystemTag({ q: [`resourceUuid=${zone.uuid}`] })).inventories!;
    t.match(sys, [{ tag: 'host::reservedCpu::2', resourceType: 'ZoneVO', type: 'System', inherent: false, uuid: /^[0-9a-f]{32}$/ }]);
  });

  t.test('an unknown system tag is refused (SYS.1007) and nothing is created', async (t) => {
    const e = await zs.createZone({ name: 'refused', systemTags: ['no::such::tag'] }).catch((x) => x);
    t.ok(e instanceof ZStackError);
    t.equal(e.code, 'SYS.1007');
    t.match(e.details, /no system tag matches no::such::tag/);
    t.same((await zs.queryZone({ q: ['name=refused'] })).inventories, []);
    const wrongType = await zs.createZone({ name: 'refused', systemTags: ['hostname::x'] }).catch((x) => x);
    t.equal(wrongType.code, 'SYS.1007', "a VM's system tag is not a zone's");
  });

  t.test('__systemTag__ and __userTag__ on a Query API', async (t) => {
    const names = async (...q: string[]) => (await zs.queryZone({ q })).inventories!.map((z) => z.name).sort();
    t.same(await names('__userTag__=web'), ['tagged']);
    t.same(await names('__userTag__!=web'), ['plain']);
    t.same(await names('__userTag__?=prod,nope'), ['tagged']);
    t.same(await names('__userTag__!?=prod'), ['plain']);
    t.same(await names('__userTag__~=we%'), ['tagged']);
    t.same(await names('__userTag__!~=we%'), ['plain']);
    t.same(await names('__userTag__ not null'), ['tagged']);
    t.same(await names('__userTag__ is null'), ['plain']);
    t.same(await names('__systemTag__=host::reservedCpu::2', 'name=tagged'), ['tagged']);
    t.same(await names("__userTag__=x' OR 1=1 --"), [], 'values are bound');
    const bad = await zs.queryZone({ q: ['__nope__=1'] }).catch((x) => x);
    t.equal(bad.code, 'SYS.1007');
  });

  t.test('CreateUserTag, CreateSystemTag, UpdateSystemTag, DeleteTag', async (t) => {
    const u = (await zs.createUserTag({ resourceType: 'ZoneVO', resourceUuid: other.uuid, tag: 'db' })).inventory;
    t.match(u, { resourceUuid: other.uuid, resourceType: 'ZoneVO', tag: 'db', type: 'User' });
    const again = (await zs.createUserTag({ resourceType: 'ZoneVO', resourceUuid: other.uuid, tag: 'db' })).inventory;
    t.equal(again.uuid, u.uuid, 'a tag the resource has is not created twice');
    const st = (await zs.createSystemTag({ resourceType: 'ZoneVO', resourceUuid: other.uuid, tag: 'host::reservedMemory::1G' })).inventory;
    t.match(st, { inherent: false, type: 'System' });
    const up = (await zs.updateSystemTag({ uuid: st.uuid, tag: 'host::reservedMemory::2G' })).inventory;
    t.equal(up.tag, 'host::reservedMemory::2G');
    t.equal((await zs.updateSystemTag({ uuid: st.uuid, tag: 'bogus' }).catch((x) => x)).code, 'SYS.1007');
    t.equal((await zs.createSystemTag({ resourceType: 'ZoneVO', resourceUuid: other.uuid, tag: 'bogus' }).catch((x) => x)).code, 'SYS.1007');
    t.equal((await zs.createUserTag({ resourceType: 'NoSuchVO', resourceUuid: other.uuid, tag: 'x' }).catch((x) => x)).code, 'SYS.1007');
    t.equal((await zs.createUserTag({ resourceType: 'ZoneVO', resourceUuid: 'a'.repeat(32), tag: 'x' }).catch((x) => x)).code, 'SYS.1003');
    await zs.deleteTag({ uuid: u.uuid });
    await zs.deleteTag({ uuid: st.uuid });
    await zs.deleteTag({ uuid: st.uuid });
    t.same((await zs.queryUserTag({ q: [`resourceUuid=${other.uuid}`] })).inventories, []);
    t.same((await zs.querySystemTag({ q: [`resourceUuid=${other.uuid}`] })).inventories, []);
    // An inherent tag (the system's own) stays.
    const [inh] = (await s.app.tags.create(s.app.db, { uuid: other.uuid, type: 'ZoneVO' }, { systemTags: ['host::reservedCpu::1'], inherent: true }))
      .systemTags;
    t.equal((await zs.deleteTag({ uuid: inh.uuid }).catch((x) => x)).code, 'SYS.1006');
  });

  t.test('tags go with their resource, whatever deletes it', async (t) => {
    const before = (await zs.queryUserTag({ q: [`resourceUuid=${zone.uuid}`] })).inventories!.length;
    t.equal(before, 2, 'the reply cache holds the query');
    await zs.deleteZone({ uuid: zone.uuid });
    t.same((await zs.queryUserTag({ q: [`resourceUuid=${zone.uuid}`] })).inventories, [], 'API deletion (the cached reply is not served)');
    t.same((await zs.querySystemTag({ q: [`resourceUuid=${zone.uuid}`] })).inventories, []);
    // A cascade: the cluster of a deleted zone loses its tags too.
    const z2 = (await zs.createZone({ name: 'z2' })).inventory;
    const c = (await zs.createCluster({ zoneUuid: z2.uuid, name: 'c', hypervisorType: 'Simulator', userTags: ['rack1'] })).inventory;
    t.equal((await zs.queryCluster({ q: ['__userTag__=rack1'] })).inventories!.length, 1);
    await zs.deleteZone({ uuid: z2.uuid });
    t.same((await zs.queryUserTag({ q: [`resourceUuid=${c.uuid}`] })).inventories, []);
    // A row deleted outside any API (every tagged table has the trigger).
    const z3 = (await zs.createZone({ name: 'z3', userTags: ['gone'] })).inventory;
    await s.app.db.execute(sql`DELETE FROM zones WHERE uuid = ${z3.uuid}`);
    t.same((await zs.queryUserTag({ q: ['tag=gone'] })).inventories, []);
    const triggers = await s.app.db.execute(sql`SELECT c.relname FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid WHERE g.tgname = 'zstack_tags_gc'`);
    const have = new Set((triggers as unknown as { rows: Array<{ relname: string }> }).rows.map((r) => r.relname));
    t.same(
      s.app.tags.taggedTables().filter((x) => !have.has(x)),
      [],
      'every tagged table has the trigger',
    );
    t.ok(have.has('vm_instances') && have.has('l3_networks') && have.has('hosts'));
  });
});

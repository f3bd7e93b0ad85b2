// Zones through the generated SDK on real PostgreSQL, and the query grammar (zstack-api.md §1.8) on them.
import t from 'tap';
import { startServer, http } from '../lib/harness.js';
import { ZStackError } from '../../sdk/src/index.js';
import { sql } from 'drizzle-orm';
import { compareColumn } from '../../server/src/core/query.js';

t.test('zones and the query engine', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const zs = s.client;

  const names = ['alpha', 'beta', 'gamma', 'delta', "o'brien; DROP TABLE zones;--"];
  const created: Array<{ uuid: string; name: string; createDate: string }> = [];
  for (const [i, name] of names.entries()) {
    const r = await zs.createZone({ name, description: `zone ${i}`, isDefault: i === 0 });
    created.push(r.inventory);
  }

  t.test('create, update, change state, delete', async (t) => {
    const { inventory } = await zs.createZone({ name: 'temp' });
    t.equal(inventory.state, 'Enabled');
    t.match(inventory.createDate, /^[A-Z][a-z]{2} \d{1,2}, \d{4} \d{1,2}:\d{2}:\d{2} [AP]M$/);
    const up = await zs.updateZone({ uuid: inventory.uuid, name: 'temp2', description: 'd' });
    t.equal(up.inventory.name, 'temp2');
    const dis = await zs.changeZoneState({ uuid: inventory.uuid, stateEvent: 'disable' });
    t.equal(dis.inventory.state, 'Disabled');
    t.same(await zs.deleteZone({ uuid: inventory.uuid }), { success: true });
    t.same((await zs.queryZone({ q: [`uuid=${inventory.uuid}`] })).inventories, []);
    t.same(await zs.deleteZone({ uuid: inventory.uuid }), { success: true }, 'deleting a missing zone succeeds');
    const err = await zs.updateZone({ uuid: inventory.uuid, name: 'x' }).catch((e) => e);
    t.ok(err instanceof ZStackError);
    t.equal(err.code, 'SYS.1003');
    t.equal(err.httpStatus, 404);
  });

  const q = async (...conditions: string[]) => (await zs.queryZone({ q: conditions })).inventories!.map((z) => z.name).sort();

  t.test('operators', async (t) => {
    t.same(await q('name=alpha'), ['alpha']);
    t.same(await q('name!=alpha', 'name!=beta', 'name!=gamma'), ['delta', names[4]].sort());
    t.same(await q('name?=alpha,beta,nope'), ['alpha', 'beta']);
    t.same(await q('name!?=alpha,beta', 'name~=%a'), ['delta', 'gamma']);
    t.same(await q('name~=_eta'), ['beta']);
    t.same(await q('name!~=%a%'), [names[4]], 'LIKE is case-sensitive');
    t.same(await q('description is null'), []);
    t.same((await q('description not null')).length, 5);
    t.same(await q('isDefault=true'), ['alpha']);
    const d = created[2].createDate;
    t.ok((await q(`createDate>=${d}`)).includes('gamma'));
    t.ok((await q(`createDate<${'Jan 1, 2000 1:00:00 AM'}`)).length === 0);
    t.same(await q(`name=${names[4]}`), [names[4]], 'injection text is just a value');
    t.same(await q(`uuid=${created[1].uuid}`), ['beta']);
  });

  t.test('fields, count, replyWithCount, sort, limit, start', async (t) => {
    const f = await zs.queryZone({ q: ['name=alpha'], fields: 'name,uuid' });
    t.same(Object.keys(f.inventories![0]).sort(), ['name', 'uuid']);
    t.same(await zs.queryZone({ count: true }), { total: 5, success: true });
    const rc = await zs.queryZone({ replyWithCount: true, limit: 2 });
    t.equal(rc.total, 5);
    t.equal(rc.inventories!.length, 2);
    const asc = (await zs.queryZone({ sort: '+name' })).inventories!.map((z) => z.name);
    t.same(asc, [...asc].sort());
    const desc = (await zs.queryZone({ sortBy: 'name', sortDirection: 'desc' })).inventories!.map((z) => z.name);
    t.same(desc, [...asc].reverse());
    const page1 = (await zs.queryZone({ sort: 'name', limit: 2, start: 0 })).inventories!.map((z) => z.name);
    const page2 = (await zs.queryZone({ sort: 'name', limit: 2, start: 2 })).inventories!.map((z) => z.name);
    t.same([...page1, ...page2], asc.slice(0, 4));
    const one = await http(s.url, 'GET', `/zstack/v1/zones/${created[1].uuid}`, { headers: { Authorization: `OAuth ${zs.sessionUuid}` } });
    t.same(
      one.json.inventories.map((z: { name: string }) => z.name),
      ['beta'],
      'GET /zones/{uuid} is the query by uuid',
    );
  });

  t.test('special conditions registered on the engine (e.g. __userTag__): any level, values bound', async (t) => {
    // A condition on a name that is no column: here the zone's name reversed, compared with the engine's operators.
    s.app.query.registerCondition('__reversedName__', ({ table, condition, name, bind }) =>
      compareColumn(sql`reverse(${table.name})`, { type: 'string' }, condition, name, bind),
    );
    t.throws(() => s.app.query.registerCondition('__reversedName__', () => sql`TRUE`), /twice/);
    t.same(await q('__reversedName__=ahpla'), ['alpha']);
    t.same(await q('__reversedName__?=ateb,ammag'), ['beta', 'gamma']);
    t.same(await q("__reversedName__~=%;neirb'o"), [names[4]], 'the value is a parameter, never SQL');
    const e = await zs.queryZone({ q: ['__nope__=1'] }).catch((x) => x);
    t.equal(e.code, 'SYS.1007', 'unregistered names are still refused');
  });

  t.test('bad queries are 400 SYS.1007 naming the problem', async (t) => {
    const bad = async (params: Record<string, unknown>, pattern: RegExp) => {
      const e = await zs.queryZone(params as never).catch((x) => x);
      t.ok(e instanceof ZStackError, JSON.stringify(params));
      t.equal(e.httpStatus, 400);
      t.equal(e.code, 'SYS.1007');
      t.match(e.details, pattern);
    };
    await bad({ q: ['nosuchfield=1'] }, /nosuchfield/);
    await bad({ q: ['name'] }, /no operator/);
    await bad({ q: ['name;drop table zones=1'] }, /not a queryable field/);
    await bad({ q: ['isDefault=maybe'] }, /boolean/);
    await bad({ q: ['createDate>yesterday'] }, /date/);
    await bad({ q: ['cluster.name=x'] }, /expanded field/);
    await bad({ fields: 'name,password' }, /password/);
    await bad({ sort: '+nope' }, /sort/);
    await bad({ limit: -1 }, /limit/);
    const raw = await http(s.url, 'GET', '/zstack/v1/zones?limit=abc', { headers: { Authorization: `OAuth ${zs.sessionUuid}` } });
    t.equal(raw.status, 400);
    t.match(raw.json.error.details, /limit/);
    t.equal((await zs.queryZone({ count: true })).total, 5, 'nothing was harmed');
  });
});

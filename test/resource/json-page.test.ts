// Query API pages rendered as JSON text by PostgreSQL (core/json-page.ts) are byte for byte the replies built from
// objects: rows with every nullable field empty and full, strings that need escaping, dates on both sides of noon
// and midnight, large sizes, appliance VMs (their extra fields and their `schema` class), VMs without NICs or with
// several volumes, and every way a request shapes its page (sort, start, limit, count). Both databases.
import t from 'tap';
import { sql } from 'drizzle-orm';
import { pageStatementShapes } from '../../server/src/core/json-page.js';
import { perfOf, rows } from '../../server/src/db/index.js';
import { http, startServer } from '../lib/harness.js';
import { until } from '../lib/wait.js';

// Valid uuids (32 hex digits) that say what they are: a hex tag per kind, then the index.
const TAGS: Record<string, string> = { vm: 'a0', zone: 'c0', host: 'd0', l3: 'e0', ps: 'f0', do: 'f1', img: 'f2' };
const uuid = (kind: string, i: number) => {
  const tag = TAGS[kind] ?? (kind.startsWith('nic') ? `b${kind.slice(3)}` : `9${kind.slice(3)}`);
  return `${tag}${String(i).padStart(30, '0')}`;
};

for (const pglite of [false, true]) {
  t.test(`page text equals object replies (${pglite ? 'PGlite' : 'PostgreSQL'})`, async (t) => {
    const s = await startServer({ pglite });
    t.teardown(() => s.close());
    await s.client.login();
    // These VMs are rows only: no host (reconciliation settles VMs whose host row is missing), NICs on a real L3
    // (it detaches NICs of deleted L3 networks), and no periodic round while the test compares replies.
    await s.client.updateGlobalConfig({ category: 'vm', name: 'reconcile.interval', value: '86400' });
    const { inventory: zone } = await s.client.createZone({ name: 'z' });
    const { inventory: l2 } = await s.client.createL2NoVlanNetwork({ name: 'l2', zoneUuid: zone.uuid, physicalInterface: 'eth0' });
    const { inventory: l3 } = await s.client.createL3Network({ name: 'l3', l2NetworkUuid: l2.uuid });
    const headers = { authorization: `OAuth ${s.client.sessionUuid}` };
    const db = s.app.db;
    // Rows straight into the tables: every combination the mapping must agree on, no API needed.
    const names = ['plain', 'quote " and \\ backslash', 'line\nbreak\ttab\u0001ctl', 'ünïcödé ✓ 🙂', ''];
    const dates = ['2026-01-05 00:04:05.999+00', '2026-12-31 12:00:00+00', '2026-07-09 23:59:59.5+00', '2001-02-03 11:22:33+00', '2026-03-01 13:00:07+00'];
    for (let i = 0; i < 10; i++) {
      const full = i % 2 === 0;
      const applianceVm = i % 3 === 0;
      const at = dates[i % dates.length];
      await db.execute(sql`INSERT INTO vm_instances (uuid, name, description, zone_uuid, host_uuid, platform, type, hypervisor_type, memory_size, cpu_num,
        cpu_speed, allocator_strategy, state, appliance_vm_type, management_network_uuid, status, create_date, last_op_date)
        VALUES (${uuid('vm', i)}, ${names[i % names.length]}, ${full ? names[(i + 1) % names.length] : null}, ${full ? uuid('zone', i) : null},
        NULL, ${full ? 'Linux' : null}, ${applianceVm ? 'ApplianceVm' : 'UserVm'}, ${full ? 'KVM' : null},
        ${2 ** 40 + i}, ${i + 1}, ${i * 1000}, ${full ? 'DefaultHostAllocatorStrategy' : null}, ${i % 4 === 1 ? 'Stopped' : 'Running'},
        ${applianceVm && full ? 'VirtualRouter' : null}, ${applianceVm ? uuid('l3', i) : null}, ${applianceVm ? 'Connected' : null}, ${at}, ${at})`);
      for (let n = 0; n < i % 3; n++) {
        await db.execute(sql`INSERT INTO vm_nics (uuid, vm_instance_uuid, l3_network_uuid, ip, mac, netmask, gateway, meta_data, device_id, create_date, last_op_date)
          VALUES (${uuid(`nic${n}`, i)}, ${uuid('vm', i)}, ${l3.uuid}, ${`10.0.${n}.${i}`}, ${`fa:16:3e:00:${n}${n}:${String(i).padStart(2, '0')}`},
          '255.255.255.0', '10.0.0.1', ${n === 1 ? 'meta "x"' : null}, ${2 - n}, ${at}, ${at})`);
      }
      for (let v = 0; v < (i === 9 ? 0 : (i % 3) + 1); v++) {
        await db.execute(sql`INSERT INTO volumes (uuid, name, description, primary_storage_uuid, vm_instance_uuid, disk_offering_uuid, root_image_uuid,
          install_path, type, format, size, device_id, state, status, create_date, last_op_date)
          VALUES (${uuid(`vol${v}`, i)}, ${`ROOT-${names[i % names.length]}`}, ${full ? 'd' : null}, ${uuid('ps', 0)}, ${uuid('vm', i)},
          ${v > 0 ? uuid('do', v) : null}, ${v === 0 ? uuid('img', 0) : null}, ${full ? `/var/x/${v}.qcow2` : null}, ${v === 0 ? 'Root' : 'Data'},
          'qcow2', ${2 ** 33 * (v + 1)}, ${3 - v}, 'Enabled', 'Ready', ${at}, ${at})`);
      }
    }
    const [{ n }] = await rows<{ n: number }>(db, sql`SELECT count(*)::int AS n FROM vm_instances`);
    t.equal(n, 10, 'the rows are in');

    const engine = s.app.query;
    const shape = engine.descriptor('VmInstanceInventory').json;
    t.ok(shape, 'VMs are rendered by PostgreSQL');
    let nonce = 0;
    const get = async (query: string) => {
      // A different no-op condition each time: the reply cache never answers.
      const res = await http(s.url, 'GET', `/zstack/v1/vm-instances?${query}&q=${encodeURIComponent(`name!=nonce-${nonce++}`)}`, { headers });
      t.equal(res.status, 200, `${query}: HTTP 200`, { body: res.text.slice(0, 600) });
      // A computed page goes out as its rows' own buffers (core/chunks.ts): its length and headers all the same.
      t.equal(res.headers.get('content-length'), String(Buffer.byteLength(res.text)), `${query}: content-length`);
      t.ok(res.headers.get('x-request-id'), `${query}: x-request-id`);
      return res.text;
    };
    const requests = [
      'limit=100',
      'limit=3&start=2',
      'limit=100&sort=-createDate',
      'limit=100&sort=%2Bname',
      'limit=4&replyWithCount=true',
      `limit=100&q=${encodeURIComponent('type=ApplianceVm')}`,
      `limit=100&q=${encodeURIComponent('vmNics.ip?=10.0.0.2,10.0.1.4')}`,
      `limit=100&q=${encodeURIComponent('state=Nowhere')}`,
      `limit=100&q=${encodeURIComponent('description is null')}`,
    ];
    for (const query of requests) {
      engine.descriptor('VmInstanceInventory').json = shape;
      const fromText = await get(query);
      engine.descriptor('VmInstanceInventory').json = undefined;
      const fromObjects = await get(query);
      engine.descriptor('VmInstanceInventory').json = shape;
      t.equal(fromText, fromObjects, `${query}: the same bytes`);
    }
    // A page's statements are rendered once per shape: other values (and another number of values in a list) reuse
    // the text; another operator is another shape.
    const ips = (n: number) => Array.from({ length: n }, (_, i) => `10.0.${i % 2}.${n + i}`).join(',');
    await get(`limit=7&q=${encodeURIComponent(`vmNics.ip?=${ips(2)}`)}`);
    const shapes = pageStatementShapes();
    for (const n of [1, 5, 40]) await get(`limit=${n}&q=${encodeURIComponent(`vmNics.ip?=${ips(n)}`)}`);
    t.equal(pageStatementShapes(), shapes, 'the same shape with other values: no new statement text');
    // (Shapes are kept per process: each database's run asks for an operator not asked for before.)
    await get(`limit=7&q=${encodeURIComponent(`vmNics.ip${pglite ? '>=' : '!?='}${ips(2)}`)}`);
    t.ok(pageStatementShapes() > shapes, 'another operator: another text');

    // The cases are there: an appliance VM's class in the schema map, a VM without NICs, escapes.
    const all = JSON.parse(await get('limit=100'));
    t.equal(all.inventories.length, 10);
    const vr = all.inventories.findIndex((i: { type: string; applianceVmType?: string }) => i.type === 'ApplianceVm' && i.applianceVmType === 'VirtualRouter');
    t.ok(vr >= 0, 'appliance fields shown');
    t.ok(all.schema[`inventories[${vr}]`], 'the appliance VM has its schema entry');
    t.notOk('applianceVmType' in all.inventories.find((i: { type: string }) => i.type === 'UserVm'), 'user VMs have no appliance fields');
    t.ok(
      all.inventories.some((i: { vmNics: unknown[] }) => i.vmNics.length === 0),
      'a VM without NICs',
    );
    t.ok(
      all.inventories.some((i: { name: string }) => i.name.includes('\n')),
      'a name with a line break',
    );
    t.ok(
      all.inventories.some((i: { createDate: string }) => i.createDate.endsWith(' 12:04:05 AM')),
      'a date after midnight',
    );
    t.ok(
      all.inventories.some((i: { allVolumes: Array<{ size: number }> }) => i.allVolumes.some((v) => v.size > 2 ** 32)),
      'a size beyond 32 bits',
    );
    // The row cache (db/perf/row-cache.ts): once pages find their rows cached, a page reads its rows' tuple versions
    // and renders only the rows whose version is not cached — a changed row, a changed or removed nested row.
    const cache = perfOf(db)!.rows!;
    const fromObjects = async (query: string) => {
      engine.descriptor('VmInstanceInventory').json = undefined;
      try {
        return await get(query);
      } finally {
        engine.descriptor('VmInstanceInventory').json = shape;
      }
    };
    await get('limit=100');
    await get('limit=100');
    let { hits, misses } = cache;
    t.equal(await get('limit=100'), await fromObjects('limit=100'), 'a page from the row cache: the same bytes');
    t.same([cache.hits - hits, cache.misses - misses], [10, 0], 'every row came from the row cache');
    await db.execute(sql`UPDATE vm_nics SET ip = '10.9.9.9' WHERE uuid = ${uuid('nic0', 1)}`);
    await db.execute(sql`UPDATE vm_instances SET name = 'renamed' WHERE uuid = ${uuid('vm', 3)}`);
    await db.execute(sql`DELETE FROM volumes WHERE uuid = ${uuid('vol1', 5)}`);
    ({ hits, misses } = cache);
    const changed = await get('limit=100');
    t.same([cache.hits - hits, cache.misses - misses], [7, 3], 'the three changed rows were rendered again');
    t.equal(changed, await fromObjects('limit=100'), 'and the page is current: the same bytes as objects');
    const inventories = JSON.parse(changed).inventories as Array<{ uuid: string; name: string; vmNics: Array<{ ip: string }>; allVolumes: unknown[] }>;
    const vm = (i: number) => inventories.find((v) => v.uuid === uuid('vm', i))!;
    t.ok(
      vm(1).vmNics.some((n) => n.ip === '10.9.9.9'),
      "a nested row's change is seen",
    );
    t.equal(vm(3).name, 'renamed', "the row's own change is seen");
    t.equal(vm(5).allVolumes.length, 2, 'a removed nested row is gone');
    // Without the change tracker (no freshness sync: each row's nested versions are read with the page), the row
    // cache serves the same rows, and a nested row's change is still seen.
    const direct = async () => {
      const page = (await engine.jsonPage(db, 'VmInstanceInventory', { limit: 100 }))!;
      return page.rows.map((r) => JSON.parse(r.json.toString()));
    };
    ({ hits, misses } = cache);
    t.same(await direct(), JSON.parse(await fromObjects('limit=100')).inventories, 'untracked: the same rows as objects');
    t.same([cache.hits - hits, cache.misses - misses], [10, 0], 'untracked: every row from the row cache');
    await db.execute(sql`UPDATE volumes SET size = 7 WHERE uuid = ${uuid('vol0', 2)}`);
    ({ hits, misses } = cache);
    const untracked = await direct();
    t.same([cache.hits - hits, cache.misses - misses], [9, 1], 'untracked: the row whose volume changed was rendered again');
    t.equal(untracked.find((v: { uuid: string }) => v.uuid === uuid('vm', 2)).allVolumes.find((v: { uuid: string }) => v.uuid === uuid('vol0', 2)).size, 7);
    // A page served from cached rows read no nested table, yet its cached reply depends on them.
    const same = async () => (await http(s.url, 'GET', '/zstack/v1/vm-instances?limit=100', { headers })).text;
    const replies = perfOf(db)!.replies!;
    // (A background round's write may drop the reply a moment: asked again until the reply cache answers.)
    await until('the reply cache holds the page', async () => {
      await same();
      const held = replies.hits;
      ({ hits, misses } = cache);
      await same();
      return replies.hits === held + 1 && cache.hits === hits && cache.misses === misses;
    });
    t.pass('the same request again: the reply cache answers, without looking at rows');
    await db.execute(sql`UPDATE vm_nics SET ip = '10.8.8.8' WHERE uuid = ${uuid('nic0', 1)}`);
    t.match(await same(), /10\.8\.8\.8/, "a nested row's change reaches a reply the reply cache held");

    // A row the API would never make (a uuid with a space, inserted by hand) is served like any other, tracked (after
    // the freshness sync) and untracked: nothing reads the versions by splitting text.
    const tracked = async () => {
      const changes = (await perfOf(db)!.fresh())!;
      const page = (await engine.jsonPage(db, 'VmInstanceInventory', { limit: 100 }, changes))!;
      return page.rows.map((r) => JSON.parse(r.json.toString()));
    };
    await tracked();
    const before = await tracked();
    t.same(await direct(), before, 'tracked and untracked pages agree');
    await db.execute(sql`INSERT INTO vm_instances (uuid, name, type, memory_size, cpu_num, cpu_speed, state, create_date, last_op_date)
      VALUES ('a space in a uuid', 'spaced', 'UserVm', 1, 1, 1, 'Running', '2001-01-01 00:00:00+00', '2001-01-01 00:00:00+00')`);
    for (const [how, read] of [
      ['tracked', tracked],
      ['untracked', direct],
    ] as const) {
      await read();
      const [first, ...rest] = await read();
      t.match(first, { uuid: 'a space in a uuid', name: 'spaced' }, `${how}: the row with a space in its uuid`);
      t.same(rest, before, `${how}: and the others as before`);
    }
    await db.execute(sql`DELETE FROM vm_instances WHERE uuid = 'a space in a uuid'`);

    // NICs and volumes alone are rendered the same way too.
    for (const [path, inventory] of [
      ['/zstack/v1/vm-instances/nics', 'VmNicInventory'],
      ['/zstack/v1/volumes', 'VolumeInventory'],
    ] as const) {
      const d = engine.descriptor(inventory);
      const own = d.json;
      t.ok(own, `${inventory} is rendered by PostgreSQL`);
      const fromText = await http(s.url, 'GET', `${path}?limit=100&q=${encodeURIComponent(`uuid!=a-${nonce++}`)}`, { headers });
      d.json = undefined;
      const fromObjects = await http(s.url, 'GET', `${path}?limit=100&q=${encodeURIComponent(`uuid!=a-${nonce++}`)}`, { headers });
      d.json = own;
      t.equal(fromText.status, 200, fromText.text.slice(0, 200));
      t.ok(fromText.json.inventories.length > 5, `${inventory}: rows`);
      t.equal(fromText.text, fromObjects.text, `${inventory}: the same bytes`);
    }
  });
}

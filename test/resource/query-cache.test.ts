// The query engine's reply cache (db/perf/reply-cache.ts) and the change detection under it (db/perf/changes.ts): cached
// replies equal uncached ones; writes through an API, raw SQL and transactions invalidate (the inventory's table,
// nested inventories' tables, tables joined by conditions); a rollback does not bump; two server processes on one
// database: a write acknowledged by one node is seen by the next query on the other; the memory bound holds.
import t from 'tap';
import pg from 'pg';
import { sql } from 'drizzle-orm';
import { ChangeTracker, changesOf, openDatabase, perfOf, tableNames } from '../../server/src/db/index.js';
import { Perf, ReplyCache, RowCache, perfSwitches } from '../../server/src/db/perf/index.js';
import { cacheKey } from '../../server/src/core/query.js';
import { ZStackClient } from '../../sdk/src/index.js';
import { startServerProcess } from '../../bench/provision/lib.js';
import { createDatabase, http, startServer } from '../lib/harness.js';
import { until } from '../lib/wait.js';

t.test('write detection from SQL text', async (t) => {
  const c = new ChangeTracker(tableNames);
  const writes = (text: string) => {
    const w = c.analyze(text).map((p) => p.writes ?? p.control);
    return w.length === 1 && w[0] instanceof Set ? [...w[0]].sort() : w;
  };
  t.same(writes('insert into "zones" ("uuid", "name") values ($1, $2)'), ['zones']);
  t.same(writes('update "vm_instances" set "state" = $1 where "vm_instances"."uuid" = $2'), ['vm_instances']);
  t.same(writes('delete from "sessions" where "sessions"."expired_date" < $1 returning "uuid"'), ['sessions']);
  t.same(writes('INSERT INTO used_ips (uuid, ip) SELECT $1, $2 FROM ip_ranges WHERE uuid = $3'), ['used_ips']);
  t.same(writes('WITH h AS (UPDATE hosts SET available_cpu_capacity = available_cpu_capacity - $1 WHERE uuid = $2 RETURNING uuid) SELECT uuid FROM h'), [
    'hosts',
  ]);
  t.same(writes('insert into "global_configs" ("id") values ($1) on conflict ("id") do update set "value" = excluded."value"'), ['global_configs']);
  t.same(writes('select * from "hosts" where "uuid" = $1 for update'), [], 'FOR UPDATE is a lock, not a write');
  t.same(writes('select * from "hosts" for no key update skip locked'), []);
  t.same(writes('SELECT * FROM vm_instances t0 WHERE state = $1 ORDER BY create_date LIMIT 100'), []);
  t.same(writes('UPDATE some_function_table SET x = 1'), ['all'], 'an unknown target forgets everything');
  t.same(writes('begin'), ['begin']);
  t.same(writes('commit'), ['commit']);
  t.same(writes('rollback'), ['rollback']);
  t.same(writes('rollback to savepoint sp1'), [], 'a savepoint rollback keeps the transaction (over-approximation)');
});

t.test('the memory bound: LRU by bytes', async (t) => {
  const changes = new ChangeTracker(tableNames);
  const cache = new ReplyCache(64 * 1024);
  const body = Buffer.alloc(10_000, 'x');
  for (let i = 0; i < 50; i++) {
    cache.set(`k${i}`, body, changes.stamp(), ['zones'], changes);
    t.ok(cache.bytes <= cache.maxBytes, `after ${i + 1} entries: ${cache.bytes} ≤ ${cache.maxBytes}`);
  }
  t.ok(cache.size >= 5 && cache.size <= 6, `${cache.size} entries of 10 KB fit in 64 KB`);
  t.equal(cache.get('k0', changes), undefined, 'the least recently used went first');
  t.ok(cache.get('k49', changes), 'the newest is there');
  // Touching an entry protects it from the next eviction.
  const oldest = [...Array(50).keys()].find((i) => cache.get(`k${i}`, changes) !== undefined)!;
  cache.set('new', body, changes.stamp(), ['zones'], changes);
  t.ok(cache.get(`k${oldest}`, changes), 'a recently read entry survives');
  cache.set('huge', Buffer.alloc(100_000), changes.stamp(), ['zones'], changes);
  t.equal(cache.get('huge', changes), undefined, 'an entry larger than the bound is not kept');
  t.ok(cache.bytes <= cache.maxBytes);
  // A change of a table read invalidates; a change elsewhere does not.
  const stamp = changes.stamp();
  cache.set('zq', body, stamp, ['zones', 'clusters'], changes);
  changes.changed(new Set(['hosts']));
  t.ok(cache.get('zq', changes), 'a write to another table keeps the entry');
  changes.changed(new Set(['clusters']));
  t.equal(cache.get('zq', changes), undefined, 'a write to a table read drops it');
  // Each switch alone (db/perf/README.md): the reply cache off keeps the read cache, and the other way round.
  const noReplies = new Perf(new ChangeTracker(tableNames), perfSwitches({ ZSTACK_QUERY_CACHE_MB: '0' }));
  t.equal(noReplies.replies, undefined, 'ZSTACK_QUERY_CACHE_MB=0 turns the reply cache off');
  t.ok(noReplies.reads, '… and only it: the read cache stays');
  t.equal(await noReplies.fresh(), noReplies.changes, '… and so does the freshness sync');
  const noReads = new Perf(new ChangeTracker(tableNames), perfSwitches({ ZSTACK_READ_CACHE: '0' }));
  t.equal(noReads.reads, undefined, 'ZSTACK_READ_CACHE=0 turns the read cache off');
  t.ok(noReads.replies, '… and only it');
  const neither = new Perf(new ChangeTracker(tableNames), perfSwitches({ ZSTACK_READ_CACHE: '0', ZSTACK_QUERY_CACHE_MB: '0' }));
  t.equal(await neither.fresh(), undefined, 'no cache on: no sync');
  t.equal(perfSwitches({ ZSTACK_QUERY_CACHE_MB: '2' }).replyCacheBytes, 2 * 1024 * 1024);
  t.equal(perfSwitches({ ZSTACK_PREPARED_STATEMENTS: '0' }).preparedStatements, false);
  const noRows = new Perf(new ChangeTracker(tableNames), perfSwitches({ ZSTACK_ROW_CACHE_MB: '0' }));
  t.equal(noRows.rows, undefined, 'ZSTACK_ROW_CACHE_MB=0 turns the row cache off');
  t.ok(noRows.replies, '… and only it');
  // The row cache's bound: by bytes, least recently used first (CLOCK: a read gives the oldest a second chance).
  const rowCache = new RowCache(64 * 1024);
  const row = (i: number) => ({ json: Buffer.from(`{"i":${i}}`.padEnd(10_000, ' ')), version: `v${i}`, skeleton: () => ({}), skeletonKey: '|1' });
  for (let i = 0; i < 20; i++) rowCache.set(`r${i}`, row(i));
  t.ok(rowCache.bytes <= rowCache.maxBytes && rowCache.size >= 5, `${rowCache.size} rows of 10 KB within 64 KB`);
  t.notOk(rowCache.has('r0'), 'the least recently used went first');
  const kept = [...Array(20).keys()].find((i) => rowCache.has(`r${i}`))!;
  t.ok(rowCache.get(`r${kept}`));
  rowCache.set('r20', row(20));
  t.ok(rowCache.has(`r${kept}`), 'a row just read survives the next eviction, though it was the oldest');
  t.notOk(rowCache.has(`r${kept + 1}`), '… and the next oldest went instead');
  rowCache.set('huge', { json: Buffer.alloc(100_000, ' '), version: 'h', skeleton: () => ({}), skeletonKey: '|' });
  t.notOk(rowCache.has('huge'), 'a row larger than the bound is not kept');
  t.equal(
    cacheKey('ZoneInventory', { q: ['b=1', 'a=2'], sortBy: 'name', sortDirection: 'desc' }),
    cacheKey('ZoneInventory', { q: ['a=2', 'b=1'], sort: '-name', limit: 1000 }),
  );
});

t.test("a connection handed over by release() runs the waiter's statements in the waiter's context", async (t) => {
  // pg-pool gives a released connection to the next waiter from inside `release()`: without the driver binding the
  // waiter's callback, a background statement would count as read by whichever request released the connection, and
  // that request's cached reply would be dropped by writes to tables it never read.
  const database = await createDatabase({ migrated: true });
  t.teardown(() => database.drop());
  const opened = await openDatabase({ url: database.url, dataDir: '/nonexistent', poolSize: 1 });
  t.teardown(() => opened.close());
  const pool = opened.pool!;
  const held = await pool.connect();
  const background = pool.query('SELECT count(*) FROM console_proxies');
  await until('the background statement waits for the only connection', () => pool.waitingCount === 1);
  const { tables } = await opened.changes.trackReads(async () => {
    held.release();
    await pool.query('SELECT count(*) FROM zones');
  });
  await background;
  t.same([...tables], ['zones'], 'only the tables this context read');
});

for (const pglite of [false, true]) {
  t.test(`cached replies equal uncached ones; writes invalidate (${pglite ? 'PGlite' : 'PostgreSQL'})`, async (t) => {
    const s = await startServer({ pglite });
    t.teardown(() => s.close());
    const zs = s.client;
    await zs.login();
    const auth = { authorization: `OAuth ${zs.sessionUuid}` };
    const cache = perfOf(s.app.db)!.replies!;
    t.ok(cache, 'the cache is on by default');
    const { inventory: zone } = await zs.createZone({ name: 'zone-a' });
    await zs.createZone({ name: 'zone-b' });
    const { inventory: cluster } = await zs.createCluster({ zoneUuid: zone.uuid, name: 'c1', hypervisorType: 'Simulator' });
    const { inventory: l2 } = await zs.createL2NoVlanNetwork({ name: 'l2', zoneUuid: zone.uuid, physicalInterface: 'eth0' });
    const { inventory: l3 } = await zs.createL3Network({ name: 'l3', l2NetworkUuid: l2.uuid });
    await zs.addDnsToL3Network({ l3NetworkUuid: l3.uuid, dns: '8.8.8.8' });

    const get = async (path: string) => {
      const r = await http(s.url, 'GET', path, { headers: auth });
      t.equal(r.status, 200, `${path}: ${r.text.slice(0, 200)}`);
      t.match(r.headers.get('content-type'), /^application\/json/);
      return r.text;
    };
    const paths = [
      '/zstack/v1/zones',
      '/zstack/v1/zones?q=name~=zone%25&sort=-name',
      '/zstack/v1/zones?q=name=zone-a&fields=uuid,name',
      '/zstack/v1/zones?count=true',
      '/zstack/v1/zones?replyWithCount=true&limit=1&start=1',
      `/zstack/v1/zones/${zone.uuid}`,
      '/zstack/v1/clusters?q=zone.name=zone-a',
      `/zstack/v1/l3-networks?q=uuid=${l3.uuid}`,
    ];
    const first = [];
    for (const p of paths) first.push(await get(p));
    for (const [i, p] of paths.entries()) {
      const hits = cache.hits;
      t.equal(await get(p), first[i], `cached ${p} equals the computed reply`);
      t.equal(cache.hits - hits, 1, `the second ${p} came from the cache`);
    }
    // The same replies from an engine without a cache (another node on the same database, cache off).
    if (!pglite) {
      const saved = process.env.ZSTACK_QUERY_CACHE_MB;
      process.env.ZSTACK_QUERY_CACHE_MB = '0';
      const peer = await s.startPeer();
      if (saved === undefined) delete process.env.ZSTACK_QUERY_CACHE_MB;
      else process.env.ZSTACK_QUERY_CACHE_MB = saved;
      t.equal(perfOf(peer.db)!.replies, undefined, 'ZSTACK_QUERY_CACHE_MB=0: no cache');
      const peerUrl = `http://127.0.0.1:${(peer.http.server.address() as { port: number }).port}`;
      for (const [i, p] of paths.entries()) {
        const r = await http(peerUrl, 'GET', p, { headers: auth });
        t.equal(r.text, first[i], `uncached ${p} equals the cached reply`);
      }
    }

    // A write through an API invalidates (the inventory's own table).
    await zs.updateZone({ uuid: zone.uuid, name: 'zone-a2' });
    t.match(JSON.parse(await get(`/zstack/v1/zones/${zone.uuid}`)), { inventories: [{ name: 'zone-a2' }] }, 'an API write is seen');
    // A table joined by a condition: the cluster query named zones.
    t.match(JSON.parse(await get('/zstack/v1/clusters?q=zone.name=zone-a')), { inventories: [] }, 'a write to a joined table is seen');
    t.match(JSON.parse(await get('/zstack/v1/clusters?q=zone.name=zone-a2')), { inventories: [{ uuid: cluster.uuid }] });

    // A raw SQL write in a transaction, on a nested inventory's table (the L3's DNS list).
    const db = s.app.db;
    await db.transaction(async (tx) => {
      await tx.execute(sql`UPDATE l3_network_dns SET dns = '1.1.1.1' WHERE l3_network_uuid = ${l3.uuid}`);
    });
    t.match(JSON.parse(await get(`/zstack/v1/l3-networks?q=uuid=${l3.uuid}`)), { inventories: [{ dns: ['1.1.1.1'] }] }, 'a raw write in a transaction is seen');
    // A raw autocommit statement.
    await db.execute(sql`UPDATE zones SET description = 'raw' WHERE uuid = ${zone.uuid}`);
    t.match(JSON.parse(await get(`/zstack/v1/zones/${zone.uuid}`)), { inventories: [{ description: 'raw' }] }, 'a raw autocommit write is seen');

    // A rolled-back transaction neither bumps nor leaves its write visible.
    const changes = changesOf(db)!;
    await get('/zstack/v1/zones');
    const before = changes.stamp();
    const hitsBefore = cache.hits;
    await t.rejects(
      db.transaction(async (tx) => {
        await tx.execute(sql`UPDATE zones SET name = 'rolled-back' WHERE uuid = ${zone.uuid}`);
        throw new Error('abort');
      }),
    );
    // (Background rounds of either node may commit meanwhile: the global version may move, zones' generation not.)
    const afterRollback = changes.stamp();
    t.equal(afterRollback.epoch, before.epoch, 'a rollback forgets nothing');
    t.equal(afterRollback.gens.get('zones'), before.gens.get('zones'), 'a rollback does not bump');
    const after = JSON.parse(await get('/zstack/v1/zones'));
    t.equal(cache.hits, hitsBefore + 1, 'the cached reply is still served after the rollback');
    t.notOk(
      after.inventories.some((z: { name: string }) => z.name === 'rolled-back'),
      'and it does not show the rolled-back write',
    );
    // A transaction that commits after a nested savepoint rolled back still bumps.
    await db.transaction(async (tx) => {
      await tx.execute(sql`UPDATE zones SET description = 'outer' WHERE uuid = ${zone.uuid}`);
      await tx
        .transaction(async (inner) => {
          await inner.execute(sql`UPDATE zones SET description = 'inner' WHERE uuid = ${zone.uuid}`);
          inner.rollback();
        })
        .catch(() => undefined);
    });
    t.match(JSON.parse(await get(`/zstack/v1/zones/${zone.uuid}`)), { inventories: [{ description: 'outer' }] });
  });
}

t.test('two server processes on one database: a write on one node is seen by the next query on the other', async (t) => {
  const a = await startServer();
  t.teardown(() => a.close());
  const b = await startServerProcess(a.databaseUrl!);
  t.teardown(() => b.stop());
  const za = a.client;
  const zb = new ZStackClient({ endpoint: b.url, accountName: 'admin', password: 'password', pollIntervalMs: 20 });
  await za.login();
  await zb.login();
  const { inventory: zone } = await zb.createZone({ name: 'n0' });
  const cache = perfOf(a.app.db)!.replies!;
  // Node B's start-up work (boot hooks, first periodic rounds) commits for a moment after it answers: wait until A
  // can answer twice in a row from its cache, so the rounds below see only the writes they make.
  await until('node B done starting: A answers a repeated query from its cache', async () => {
    await za.queryZone({ q: [`uuid=${zone.uuid}`] });
    const hits = cache.hits;
    await za.queryZone({ q: [`uuid=${zone.uuid}`] });
    return cache.hits === hits + 1;
  });
  for (let i = 1; i <= 15; i++) {
    // Node A has the current reply cached (a background write of either node, e.g. a periodic round, may flush it a
    // moment: asked again until a repeated query is a hit)…
    const seen = await until(`round ${i}: A answers a repeated query from its cache`, async () => {
      await za.queryZone({ q: [`uuid=${zone.uuid}`] });
      const hits = cache.hits;
      const reply = await za.queryZone({ q: [`uuid=${zone.uuid}`] });
      return cache.hits === hits + 1 && reply;
    });
    t.equal(seen.inventories![0].name, `n${i - 1}`, `round ${i}: A's cached reply is the current one`);
    // …node B changes the zone and replies…
    await zb.updateZone({ uuid: zone.uuid, name: `n${i}` });
    // …and the very next query on A sees it.
    const { inventories } = await za.queryZone({ q: [`uuid=${zone.uuid}`] });
    t.equal(inventories![0].name, `n${i}`, `round ${i}: A sees B's write right after B's reply`);
  }
  // The other way: a raw SQL transaction on A, then a query on B (twice cached before).
  await zb.queryZone({ q: [`uuid=${zone.uuid}`] });
  await zb.queryZone({ q: [`uuid=${zone.uuid}`] });
  await a.app.db.transaction(async (tx) => {
    await tx.execute(sql`UPDATE zones SET name = 'from-a' WHERE uuid = ${zone.uuid}`);
  });
  const { inventories } = await zb.queryZone({ q: [`uuid=${zone.uuid}`] });
  t.equal(inventories![0].name, 'from-a', "B sees A's raw SQL write");

  // Commits that end while a publish statement runs share the next one (core/batcher.ts): their tables merged.
  const shared = a.app.database.changes.shared!;
  const client = await a.app.database.pool!.connect();
  t.teardown(() => client.release());
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const texts: string[] = [];
  const query = async (text: string) => {
    texts.push(text);
    if (texts.length === 1) await gate;
    return client.query(text);
  };
  const first = shared.publish(query, new Set(['zones']));
  const rest = ['clusters', 'hosts', 'zones', 'l3_networks'].map((table) => shared.publish(query, new Set([table])));
  await new Promise((r) => setTimeout(r, 20));
  t.equal(texts.length, 1, 'later publishes wait while one runs');
  release();
  await Promise.all([first, ...rest]);
  // (A background commit's publish in flight when the first was added makes all five wait and go out as one.)
  t.ok(texts.length <= 2, 'the four waiting publishes went out as one statement');
  t.match(
    texts[texts.length - 1],
    /nextval\('qgen_clusters'\) AS "clusters", nextval\('qgen_hosts'\) AS "hosts", nextval\('qgen_l3_networks'\) AS "l3_networks", nextval\('qgen_zones'\) AS "zones"; SELECT nextval\('qgen'\)/,
  );

  // Sessions checked by a Query API are reused briefly, but a logout on another node ends them at once.
  await za.login();
  const session = za.sessionUuid!;
  const headers = { authorization: `OAuth ${session}` };
  t.equal((await http(a.url, 'GET', '/zstack/v1/zones', { headers })).status, 200);
  t.equal((await http(a.url, 'GET', '/zstack/v1/zones', { headers })).status, 200);
  const bSession = new ZStackClient({ endpoint: b.url, sessionUuid: session });
  await bSession.logout();
  const after = await http(a.url, 'GET', '/zstack/v1/zones', { headers });
  t.equal(after.status, 401, 'a session logged out on B is refused by A right after');
  t.equal(after.json.error.code, 'ID.1001');

  // Every API (not only queries) takes its session from the memo: the same holds for a write.
  await za.login();
  const onA = new ZStackClient({ endpoint: a.url, sessionUuid: za.sessionUuid! });
  await onA.createZone({ name: 'memo-1' });
  await onA.createZone({ name: 'memo-2' });
  await new ZStackClient({ endpoint: b.url, sessionUuid: za.sessionUuid! }).logout();
  const refused = await onA.createZone({ name: 'memo-3' }).catch((e) => e);
  t.match(refused, { httpStatus: 401, code: 'ID.1001' }, 'a write with a session logged out on B is refused by A right after');
});

t.test("writes made outside the servers: SELECT nextval('qgen_flush') flushes the caches", async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const { inventory: zone } = await s.client.createZone({ name: 'outside-0' });
  const query = async () => (await s.client.queryZone({ q: [`uuid=${zone.uuid}`] })).inventories![0].name;
  t.equal(await query(), 'outside-0');
  t.equal(await query(), 'outside-0', 'cached');
  const psql = new pg.Client({ connectionString: s.databaseUrl });
  await psql.connect();
  t.teardown(() => psql.end());
  await psql.query(`UPDATE zones SET name = 'outside-1' WHERE uuid = $1`, [zone.uuid]);
  t.equal(await query(), 'outside-0', 'a write outside the servers is not seen (documented)');
  await psql.query(`SELECT nextval('qgen_flush')`);
  t.equal(await query(), 'outside-1', "after SELECT nextval('qgen_flush') the next query reads again");
  // Again, now that the step has read every table's sequence.
  t.equal(await query(), 'outside-1', 'cached');
  // Another node's write at the same time (its publish: clusters' sequence, then qgen) does not hide the flush.
  await psql.query(`UPDATE zones SET name = 'outside-2' WHERE uuid = $1`, [zone.uuid]);
  t.equal(await query(), 'outside-1', 'not seen');
  await psql.query(`SELECT nextval('qgen_clusters'); SELECT nextval('qgen'); SELECT nextval('qgen_flush')`);
  t.equal(await query(), 'outside-2', "SELECT nextval('qgen_flush') flushes beside another node's write");

  // The older way, `SELECT nextval('qgen')` alone, still flushes — also when this node's own publishes took numbers
  // just before it (a table moved only by this node's numbers is not another node's write).
  await psql.query(`UPDATE zones SET name = 'outside-2b' WHERE uuid = $1`, [zone.uuid]);
  await s.app.db.execute(sql`UPDATE clusters SET description = 'own' WHERE uuid = 'none'`);
  await psql.query(`SELECT nextval('qgen')`);
  t.equal(await query(), 'outside-2b', "SELECT nextval('qgen') after this node's own write flushes");
  await psql.query(`UPDATE zones SET name = 'outside-2' WHERE uuid = $1`, [zone.uuid]);
  await psql.query(`SELECT nextval('qgen_flush')`);
  t.equal(await query(), 'outside-2');

  // Another node's write elsewhere (its publish: the table's sequence, then qgen) after this node's own writes was
  // seen: the next step reads every table's sequence and must bump only the table the other node wrote — not every
  // table this node wrote since its last full read (its own publishes are counted in as they pass).
  const cache = perfOf(s.app.db)!.replies!;
  await s.app.db.execute(sql`UPDATE zones SET description = 'own' WHERE uuid = ${zone.uuid}`);
  t.equal(await query(), 'outside-2');
  let hits = cache.hits;
  t.equal(await query(), 'outside-2');
  t.equal(cache.hits, hits + 1, 'cached after its own write');
  await psql.query(`SELECT nextval('qgen_clusters'); SELECT nextval('qgen')`);
  hits = cache.hits;
  t.equal(await query(), 'outside-2');
  t.equal(cache.hits, hits + 1, "another node's write to clusters leaves the zones reply cached");

  // This node's commit is counted locally before its publish lands: a reply cached in between (stamped after the local
  // count) stays cached when a later step reads every table's sequence (another node's write to clusters forces that
  // read) and finds zones moved only by this node's number.
  const shared = s.app.database.changes.shared!;
  const publishOwn = async (tables: string[]) => {
    const own = await s.app.database.pool!.connect();
    try {
      await shared.publish((text) => own.query(text), new Set(tables));
    } finally {
      own.release();
    }
  };
  changesOf(s.app.db)!.changed(new Set(['zones']));
  t.equal(await query(), 'outside-2', 'computed after the local count');
  await publishOwn(['zones']);
  await psql.query(`SELECT nextval('qgen_clusters'); SELECT nextval('qgen')`);
  hits = cache.hits;
  t.equal(await query(), 'outside-2');
  t.equal(cache.hits, hits + 1, "a table moved only by this node's own numbers is not bumped again");

  // Another node committed a zones write and advanced zones' sequence but not yet qgen, then this node published a
  // zones write of its own (counted locally before the other commit): this node's number is not the next one after
  // what it last read, so zones stays unseen and the other node's qgen makes the next step bump it.
  t.equal(await query(), 'outside-2', 'cached');
  await psql.query(`UPDATE zones SET name = 'outside-3' WHERE uuid = $1`, [zone.uuid]);
  await psql.query(`SELECT nextval('qgen_zones'), nextval('qgen_clusters')`);
  await publishOwn(['zones']);
  t.equal(await query(), 'outside-2', "the other node's publish is not complete: its write is not promised yet");
  await psql.query(`SELECT nextval('qgen')`);
  t.equal(await query(), 'outside-3', "once its qgen moved, the other node's zones write is seen");
});

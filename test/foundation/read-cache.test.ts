// ReadCache (db/perf/read-cache.ts): a read is reused while none of the tables it named changed, read again after a
// write to one of them, after its maximum age, and never reused without a (synced) change tracker.
import t from 'tap';
import { ChangeTracker, foreignKeyDependents, tableNames } from '../../server/src/db/index.js';
import { ReadCache } from '../../server/src/db/perf/read-cache.js';

t.test('reuse while unchanged; a write, the age or no tracker forces a read', async (t) => {
  const changes = new ChangeTracker(tableNames);
  const memo = new ReadCache();
  let reads = 0;
  // The read "issues" a statement naming the images table (what the driver wrapper reports to the tracker).
  const readImage = async () => {
    changes.noteRead('select * from "images" where "uuid" = $1');
    return { uuid: 'i1', state: reads++ === 0 ? 'Enabled' : 'Disabled' };
  };

  t.same(await memo.read(changes, 'Image:i1', 60_000, readImage), { uuid: 'i1', state: 'Enabled' });
  t.same(await memo.read(changes, 'Image:i1', 60_000, readImage), { uuid: 'i1', state: 'Enabled' }, 'reused');
  t.equal(reads, 1);

  changes.changed(new Set(['hosts']));
  await memo.read(changes, 'Image:i1', 60_000, readImage);
  t.equal(reads, 1, 'a write to another table keeps it');

  changes.changed(new Set(['images']));
  t.same(await memo.read(changes, 'Image:i1', 60_000, readImage), { uuid: 'i1', state: 'Disabled' }, 'a write to images: read again');
  t.equal(reads, 2);

  changes.changed('all');
  await memo.read(changes, 'Image:i1', 60_000, readImage);
  t.equal(reads, 3, 'an unknown write (epoch) forgets everything');

  await new Promise((r) => setTimeout(r, 30));
  await memo.read(changes, 'Image:i1', 10, readImage);
  t.equal(reads, 4, 'older than maxAgeMs: read again');

  await memo.read(undefined, 'Image:i1', 60_000, readImage);
  await memo.read(undefined, 'Image:i1', 60_000, readImage);
  t.equal(reads, 6, 'without a synced tracker every call reads');
  t.equal(memo.hits, 2);
});

t.test('aged but unchanged: one background refresh while the others keep the value', async (t) => {
  const changes = new ChangeTracker(tableNames);
  const memo = new ReadCache();
  let reads = 0;
  const read = async () => {
    changes.noteRead('select * from "images"');
    await new Promise((r) => setTimeout(r, 20));
    return ++reads;
  };
  t.equal(await memo.read(changes, 'k', 200, read), 1);
  await new Promise((r) => setTimeout(r, 250));
  const five = await Promise.all(Array.from({ length: 5 }, () => memo.read(changes, 'k', 200, read)));
  t.same(five, [1, 1, 1, 1, 1], 'aged: the old value, no caller waits');
  await new Promise((r) => setTimeout(r, 60));
  t.equal(reads, 2, 'one refresh for the five');
  t.equal(await memo.read(changes, 'k', 200, read), 2, 'then the refreshed value');
  changes.changed(new Set(['images']));
  t.equal(await memo.read(changes, 'k', 200, read), 3, 'a change is never served from the memo, aged or not');
});

t.test('a drizzle query builder (a lazy thenable) records its tables; a read naming none is not remembered', async (t) => {
  const { PGlite } = await import('@electric-sql/pglite');
  const { drizzle } = await import('drizzle-orm/pglite');
  const { eq } = await import('drizzle-orm');
  const { images } = await import('../../server/src/db/schema/index.js');
  const { trackPglite } = await import('../../server/src/db/perf/changes.js');
  const client = await PGlite.create();
  t.teardown(() => client.close());
  await client.exec(`CREATE TABLE images (uuid text primary key, name text, state text)`);
  await client.exec(`INSERT INTO images (uuid, name, state) VALUES ('i1', 'tiny', 'Enabled')`);
  const changes = new ChangeTracker(tableNames);
  trackPglite(client as never, changes);
  const db = drizzle(client);
  const memo = new ReadCache();
  // Not async: the builder itself is returned, its statement starts when awaited.
  const read = () => db.select({ uuid: images.uuid, state: images.state }).from(images).where(eq(images.uuid, 'i1'));
  t.same(await memo.read(changes, 'Image:i1', 60_000, read), [{ uuid: 'i1', state: 'Enabled' }]);
  await memo.read(changes, 'Image:i1', 60_000, read);
  t.equal(memo.hits, 1, 'remembered: the statement it started was seen naming images');
  await client.query(`UPDATE images SET state = 'Disabled' WHERE uuid = 'i1'`);
  t.same(await memo.read(changes, 'Image:i1', 60_000, read), [{ uuid: 'i1', state: 'Disabled' }], 'a write to images is seen at once');

  let n = 0;
  const tableless = async () => ++n;
  await memo.read(changes, 'k', 60_000, tableless);
  await memo.read(changes, 'k', 60_000, tableless);
  t.equal(n, 2, 'a read naming no known table is read every time');
});

t.test('a failed read is not remembered', async (t) => {
  const changes = new ChangeTracker(tableNames);
  const memo = new ReadCache();
  let n = 0;
  const read = async () => {
    changes.noteRead('select * from "images"');
    if (n++ === 0) throw new Error('connection lost');
    return 'ok';
  };
  await t.rejects(memo.read(changes, 'k', 60_000, read), /connection lost/);
  t.equal(await memo.read(changes, 'k', 60_000, read), 'ok');
  t.equal(n, 2);
});

t.test('foreign key actions: a delete marks the tables whose rows it nulls or removes, an update does not', async (t) => {
  const changes = new ChangeTracker(tableNames, foreignKeyDependents);
  const writes = (text: string) => new Set(changes.analyze(text).flatMap((p) => (p.writes === 'all' ? ['all'] : [...(p.writes ?? [])])));
  // eips.vm_nic_uuid is ON DELETE SET NULL: deleting a NIC writes eips (a remembered "which EIPs" must go).
  t.ok(writes('delete from "vm_nics" where "uuid" = $1').has('eips'), 'DELETE vm_nics writes eips');
  // Cascades of cascades: deleting a VM deletes its NICs (CASCADE), which nulls their EIPs and drops their memberships.
  const vmDelete = writes('delete from "vm_instances" where "uuid" = $1');
  t.ok(vmDelete.has('vm_nics') && vmDelete.has('eips') && vmDelete.has('vm_nic_security_group_refs'), 'DELETE vm_instances follows the chain');
  // No foreign key here has an ON UPDATE action: updating a NIC (a VM's creation does) leaves eips' reads valid.
  t.same([...writes('update "vm_nics" set "ip" = $1 where "uuid" = $2')], ['vm_nics'], 'UPDATE vm_nics writes vm_nics only');
  t.equal(foreignKeyDependents.onUpdate.size, 0, 'no ON UPDATE actions in the schema (keys never change)');
});

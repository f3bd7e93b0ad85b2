// A query on the pool inside a transaction's callback is refused with a clear error (it would wait for a second
// connection while the transaction holds one: with every connection held so, forever); detached work started inside
// a transaction (event listeners) runs outside its scope.
import t from 'tap';
import { sql } from 'drizzle-orm';
import { rows } from '../../server/src/db/index.js';
import { PoolQueryInTransaction } from '../../server/src/db/tx-scope.js';
import { startServer } from '../lib/harness.js';

const s = await startServer();
t.teardown(() => s.close());
const db = s.app.db;

t.test('the pool inside a transaction is refused; the transaction itself works', async (t) => {
  const e = await db
    .transaction(async (tx) => {
      await tx.execute(sql`SELECT 1`);
      await db.execute(sql`SELECT 2`);
    })
    .catch((x) => x);
  // drizzle wraps the driver's error (`cause`).
  t.ok(e.cause instanceof PoolQueryInTransaction, `refused (${e.cause ?? e})`);
  t.match(e.cause?.message, /run it on the transaction/);
  const got = await db.transaction(async (tx) => rows<{ n: number }>(tx, sql`SELECT 3 AS n`));
  t.same(got, [{ n: 3 }], 'queries on the transaction run');
  t.same(await rows(db, sql`SELECT 4 AS n`), [{ n: 4 }], 'after the transaction the pool is free to use');
});

t.test('a listener of an event emitted inside a transaction queries the pool', async (t) => {
  const seen = new Promise<unknown>((resolve, reject) => {
    const off = s.app.events.on('vm.deleted', async ({ vmUuid }) => {
      off();
      await rows(db, sql`SELECT ${vmUuid}::text AS uuid`).then(resolve, reject);
    });
  });
  await db.transaction(async (tx) => {
    await tx.execute(sql`SELECT 1`);
    s.app.events.emit('vm.deleted', { vmUuid: 'inside' });
    await seen;
  });
  t.same(await seen, [{ uuid: 'inside' }]);
});

// Repeated statements run as named prepared statements (db/perf/prepared.ts): a text with parameters is prepared on a
// connection from its second use, the results are the same as unnamed ones, drizzle's calling form is covered,
// texts without parameters (possibly several statements) are never named, and the number of names is bounded.
import t from 'tap';
import pg from 'pg';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { preparePgPool } from '../../server/src/db/perf/prepared.js';
import { ADMIN_URL } from '../lib/harness.js';

/** The statements prepared on the one connection of a pool of size 1 (read through that connection). */
async function preparedTexts(pool: pg.Pool): Promise<string[]> {
  const { rows } = await pool.query<{ statement: string }>('SELECT statement FROM pg_prepared_statements ORDER BY statement');
  return rows.map((r) => r.statement);
}

t.test('a repeated text is prepared once per connection, results unchanged', async (t) => {
  const pool = new pg.Pool({ connectionString: ADMIN_URL, max: 1 });
  t.teardown(() => pool.end());
  const prepared = preparePgPool(pool, { minUses: 2, maxNames: 10 });
  const text = 'SELECT $1::int + 1 AS n';
  t.equal((await pool.query(text, [1])).rows[0].n, 2);
  t.same(await preparedTexts(pool), [], 'first use: not prepared');
  t.equal((await pool.query(text, [41])).rows[0].n, 42, 'second use: same answer');
  t.equal((await pool.query({ text, values: [9] })).rows[0].n, 10, 'config form');
  t.same(await preparedTexts(pool), [text], 'prepared from the second use');
  t.equal(prepared.named(), 1);

  const multi = 'SELECT 1 AS a; SELECT 2 AS b';
  await pool.query(multi);
  await pool.query(multi);
  t.same(await preparedTexts(pool), [text], 'a text without parameters (maybe several statements) is never named');

  await pool.query({ name: 'mine', text: 'SELECT $1::int AS x', values: [1] });
  t.ok((await preparedTexts(pool)).includes('SELECT $1::int AS x'), "a caller's own name is kept");
  t.equal(prepared.named(), 1);
});

t.test("drizzle's form (config and values apart) and the bound on names", async (t) => {
  const pool = new pg.Pool({ connectionString: ADMIN_URL, max: 1 });
  t.teardown(() => pool.end());
  const prepared = preparePgPool(pool, { minUses: 1, maxNames: 3 });
  const db = drizzle(pool);
  for (let i = 0; i < 5; i++) {
    const { rows } = await db.execute(sql`SELECT ${i}::int * ${i}::int AS sq, ${'k' + i}::text AS k`);
    t.same(rows[0], { sq: i * i, k: `k${i}` });
  }
  t.equal(prepared.named(), 1, 'one text, one name whatever the values');
  for (let i = 0; i < 6; i++) await pool.query(`SELECT $1::int + ${i} AS n`, [i]);
  t.equal(prepared.named(), 3, 'no more names than maxNames');
  t.equal((await pool.query('SELECT $1::int + 5 AS n', [1])).rows[0].n, 6, 'texts beyond the bound still run (unnamed)');
  t.equal((await preparedTexts(pool)).length, 3);
});

t.test('a stale name is replaced: a migration on another connection, a statement the server dropped', async (t) => {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  const table = `zz_prepared_${process.pid}`;
  await admin.query(`DROP TABLE IF EXISTS ${table}; CREATE TABLE ${table} (a int)`);
  await admin.query(`INSERT INTO ${table} VALUES (1)`);
  const pool = new pg.Pool({ connectionString: ADMIN_URL, max: 1 });
  t.teardown(async () => {
    await pool.end();
    await admin.query(`DROP TABLE IF EXISTS ${table}`);
    await admin.end();
  });
  preparePgPool(pool, { minUses: 1 });
  const select = `SELECT * FROM ${table} WHERE a = $1`;
  t.same((await pool.query(select, [1])).rows, [{ a: 1 }]);
  // Another node's migration: the prepared SELECT * would now have to return another row type.
  await admin.query(`ALTER TABLE ${table} ADD COLUMN b int DEFAULT 7`);
  t.same((await pool.query(select, [1])).rows, [{ a: 1, b: 7 }], 'runs again under a new name, with the new column');
  t.same((await pool.query({ text: select, values: [1] })).rows, [{ a: 1, b: 7 }], 'and keeps working');

  // The server forgot every prepared statement of this connection (pg still counts them as prepared).
  await pool.query('DEALLOCATE ALL');
  t.same((await pool.query(select, [1])).rows, [{ a: 1, b: 7 }], 'a statement the server dropped is prepared again');

  // Inside a transaction the error stands (the transaction is aborted); the next use outside works.
  const client = await pool.connect();
  try {
    await client.query(select, [1]);
    await admin.query(`ALTER TABLE ${table} ADD COLUMN c int DEFAULT 8`);
    await client.query('BEGIN');
    await t.rejects(client.query(select, [1]), { code: '0A000' }, 'inside a transaction: no silent retry');
    await client.query('ROLLBACK');
    t.same((await client.query(select, [1])).rows, [{ a: 1, b: 7, c: 8 }], 'after the transaction: a new name');
  } finally {
    client.release();
  }
});

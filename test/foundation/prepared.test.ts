// Repeated statements run as named prepared statements (db/prepared.ts): a text with parameters is prepared on a
// connection from its second use, the results are the same as unnamed ones, drizzle's calling form is covered,
// texts without parameters (possibly several statements) are never named, and the number of names is bounded.
import t from 'tap';
import pg from 'pg';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { preparePgPool } from '../../server/src/db/prepared.js';
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

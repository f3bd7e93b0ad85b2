// Statements rendered once per shape (db/perf/template.ts): the same results as drizzle's own rendering, one rendering
// per shape, values through their columns' encoders, and in check mode an undeclared structural choice or an
// unbound value fails instead of running another call's text or values.
import t from 'tap';
import pg from 'pg';
import { eq, sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { integer, jsonb, pgTable, text } from 'drizzle-orm/pg-core';
import { bindAll, immediate, StatementTemplates, within, type Bind } from '../../server/src/db/perf/template.js';
import type { Tx } from '../../server/src/db/index.js';
import { createDatabase } from '../lib/harness.js';

const items = pgTable('tmpl_items', { id: text('id').primaryKey(), data: jsonb('data'), n: integer('n') });

t.test('statement templates', async (t) => {
  const database = await createDatabase();
  const pool = new pg.Pool({ connectionString: database.url, max: 2 });
  t.teardown(async () => {
    await pool.end();
    await database.drop();
  });
  const pgdb = drizzle(pool);
  const db = pgdb as unknown as Tx;
  await pool.query('CREATE TABLE tmpl_items (id text PRIMARY KEY, data jsonb, n integer)');

  // An insert (column encoders: the jsonb value) and a select whose WHERE depends on the input.
  const insert = (bind: Bind, row: typeof items.$inferInsert) =>
    sql`${pgdb
      .insert(items)
      .values(bindAll(bind, 'row', row))
      .returning()
      .getSQL()}`;
  const select = (bind: Bind, min?: number, newestFirst = false) =>
    sql`SELECT id, n FROM ${items} WHERE ${min === undefined ? sql`TRUE` : sql`${items.n} >= ${bind('min', min)}`}
        ORDER BY ${bind.shape(newestFirst) ? sql`${items.n} DESC` : sql`${items.n}`}`;

  t.test('one rendering per shape, the results of an ordinary statement', async (t) => {
    const templates = new StatementTemplates({ check: false });
    for (let i = 1; i <= 5; i++) {
      const [row] = await templates.rows<{ id: string; data: unknown; n: number }>(db, 'insert', (b) =>
        insert(b, { id: `i${i}`, data: { i, tags: ['a'] }, n: i }),
      );
      t.same(row, { id: `i${i}`, data: { i, tags: ['a'] }, n: i }, `row ${i} inserted with its own values (jsonb encoded)`);
    }
    t.equal(templates.renders, 1, 'five inserts, one rendering');
    const ids = async (min?: number, desc = false) => (await templates.rows<{ id: string }>(db, 'select', (b) => select(b, min, desc))).map((r) => r.id);
    t.same(await ids(3), ['i3', 'i4', 'i5']);
    t.same(await ids(4), ['i4', 'i5'], 'same shape, new value');
    t.same(await ids(), ['i1', 'i2', 'i3', 'i4', 'i5'], 'a clause without the value: another shape');
    t.same(await ids(4, true), ['i5', 'i4'], 'a declared structural choice: another shape');
    t.equal(templates.renders, 4);
    const ordinary = await db.execute(select(immediate, 4, true));
    t.same(
      (ordinary as unknown as { rows: Array<{ id: string }> }).rows.map((r) => r.id),
      ['i5', 'i4'],
      'immediate: the same statement rendered by drizzle',
    );
    const [changed] = await templates.rows<{ id: string; n: number }>(
      db,
      'update',
      (b) =>
        sql`${pgdb
          .update(items)
          .set({ n: b('n', 50) })
          .where(eq(items.id, b('id', 'i5')))
          .returning({ id: items.id, n: items.n })
          .getSQL()}`,
    );
    t.same(changed, { id: 'i5', n: 50 });
  });

  t.test('check mode: an undeclared choice or an unbound value fails', async (t) => {
    const templates = new StatementTemplates({ check: true });
    const undeclared = (desc: boolean) => () => sql`SELECT id FROM ${items} ORDER BY ${desc ? sql`n DESC` : sql`n`}`;
    await templates.rows(db, 'undeclared', undeclared(false));
    await t.rejects(templates.rows(db, 'undeclared', undeclared(true)), /one shape, two texts/);
    const unbound = (n: number) => (b: Bind) => sql`SELECT id FROM ${items} WHERE n >= ${n} AND id <> ${b('id', 'x')}`;
    await templates.rows(db, 'unbound', unbound(1));
    await t.resolves(templates.rows(db, 'unbound', unbound(1)), 'the same literal value is fine');
    await t.rejects(templates.rows(db, 'unbound', unbound(2)), /parameter \$1 is not bound/);
    await t.rejects(
      templates.rows(db, 'twice', (b) => sql`SELECT ${b('v', 1)}::int, ${b('v', 2)}::int`),
      /v bound twice with different values/,
    );
    const [both] = await templates.rows<{ a: number; b: number }>(
      db,
      'within',
      (b) => sql`SELECT ${within(b, 'x')('v', 1)}::int AS a, ${within(b, 'y')('v', 2)}::int AS b`,
    );
    t.same(both, { a: 1, b: 2 }, 'within: the same name under two prefixes');
    const [arr] = await templates.rows<{ n: number }>(db, 'array', (b) => sql`SELECT cardinality(${b.array('ids', ['a', 'b', 'c'])}::text[]) AS n`);
    t.equal(arr.n, 3, 'an array is one parameter');
  });

  t.test('deferred: values bound first, the statement built only when its shape has no text', async (t) => {
    const templates = new StatementTemplates({ check: false });
    let built = 0;
    const deferred = (min: number, desc: boolean) => (b: Bind) => {
      const m = b('min', min);
      const newestFirst = b.shape(desc);
      return () => {
        built++;
        return sql`SELECT id FROM ${items} WHERE ${items.n} >= ${m} ORDER BY ${newestFirst ? sql`${items.n} DESC` : sql`${items.n}`}`;
      };
    };
    const ids = async (min: number, desc = false) => (await templates.rows<{ id: string }>(db, 'deferred', deferred(min, desc))).map((r) => r.id);
    t.same(await ids(3), ['i3', 'i4', 'i5']);
    t.same(await ids(4), ['i4', 'i5'], 'a new value in the known text');
    t.same(await ids(4, true), ['i5', 'i4'], 'a declared choice: another shape');
    t.equal(built, 2, 'three calls, two shapes: built twice');
    await t.rejects(
      templates.rows(db, 'late', (b) => () => sql`SELECT ${b('late', 1)}::int`),
      /late bound after the statement's values were taken/,
      'a value bound in the deferred part would not be part of the shape',
    );
    const checking = new StatementTemplates({ check: true });
    const frozen = (n: number) => (b: Bind) => {
      const id = b('id', 'x');
      return () => sql`SELECT id FROM ${items} WHERE n >= ${n} AND id <> ${id}`;
    };
    await checking.rows(db, 'frozen', frozen(1));
    await t.rejects(checking.rows(db, 'frozen', frozen(2)), /parameter \$1 is not bound/, 'check mode builds every call and compares');
  });
});

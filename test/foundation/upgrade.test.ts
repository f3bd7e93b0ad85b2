// Upgrades keep the data: for every earlier migration k in server/drizzle (read from the journal, so each new
// migration is covered without touching this file), a database is built at k with drizzle's own migrator, filled
// with rows valid at k (generated from the schema snapshot of k: every table, every column, keys and foreign keys
// respected), migrated to the latest with the server's migrate(), and then every row is still there with every
// column that still exists (same name and type) unchanged, and the app's schema reads every table.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { sql } from 'drizzle-orm';
import { is } from 'drizzle-orm';
import { PgTable } from 'drizzle-orm/pg-core';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate as drizzleMigrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import { createDatabase } from '../lib/harness.js';
import { migrate, migrationsFolder, openDatabase } from '../../server/src/db/index.js';
import * as schema from '../../server/src/db/schema/index.js';

interface Column {
  name: string;
  type: string;
  primaryKey: boolean;
  notNull: boolean;
  default?: unknown;
}
interface ForeignKey {
  tableFrom: string;
  columnsFrom: string[];
  tableTo: string;
  columnsTo: string[];
}
interface Table {
  name: string;
  columns: Record<string, Column>;
  foreignKeys: Record<string, ForeignKey>;
  compositePrimaryKeys: Record<string, { columns: string[] }>;
}
interface Snapshot {
  tables: Record<string, Table>;
}
interface Journal {
  entries: Array<{ idx: number; tag: string; when: number }>;
}

const journal = JSON.parse(readFileSync(join(migrationsFolder, 'meta', '_journal.json'), 'utf8')) as Journal;
// drizzle-kit names a migration's snapshot after the number its file name starts with.
const snapshotOf = (tag: string): Snapshot =>
  JSON.parse(readFileSync(join(migrationsFolder, 'meta', `${tag.split('_')[0]}_snapshot.json`), 'utf8')) as Snapshot;

const ROWS = 3;
const q = (id: string) => `"${id.replace(/"/g, '""')}"`;

/** A value of `type` for row i, distinct per row (keys and unique indexes hold); undefined = let the default fill it. */
function valueFor(table: string, col: Column, i: number): unknown {
  const type = col.type.toLowerCase();
  if (type === 'serial' || type === 'bigserial' || type === 'smallserial') return undefined;
  if (type === 'text' || /char/.test(type))
    return `${table}.${col.name}.${i}`.slice(0, /\((\d+)\)/.exec(type)?.[1] ? Number(/\((\d+)\)/.exec(type)![1]) : undefined);
  if (['integer', 'bigint', 'smallint'].includes(type)) return 1000 + i * 7 + 1;
  if (/^(numeric|real|double precision)/.test(type)) return 10.5 + i;
  if (type === 'boolean') return i % 2 === 1;
  if (type.startsWith('timestamp')) return new Date(Date.UTC(2026, 0, 1, 0, 0, i));
  if (type === 'date') return `2026-01-0${1 + (i % 9)}`;
  if (type === 'jsonb' || type === 'json') return JSON.stringify({ row: i, table, column: col.name });
  if (type === 'uuid') return `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
  if (type.endsWith('[]')) return [];
  if (!col.notNull || col.default !== undefined) return undefined;
  throw new Error(`the upgrade test cannot make a value of type ${col.type} (${table}.${col.name}): teach valueFor()`);
}

/** Tables in an order where every NOT NULL foreign key points at an earlier table. */
function insertOrder(s: Snapshot): string[] {
  const names = Object.keys(s.tables);
  const done: string[] = [];
  const mustFollow = (name: string) =>
    Object.values(s.tables[name]!.foreignKeys).filter(
      (fk) => fk.tableTo !== s.tables[name]!.name && fk.columnsFrom.some((c) => s.tables[name]!.columns[c]?.notNull),
    );
  while (done.length < names.length) {
    const next = names.find((n) => !done.includes(n) && mustFollow(n).every((fk) => done.some((d) => s.tables[d]!.name === fk.tableTo)));
    if (!next) throw new Error(`a cycle of NOT NULL foreign keys among ${names.filter((n) => !done.includes(n)).join(', ')}`);
    done.push(next);
  }
  return done;
}

/** Fills every table of snapshot `s` with ROWS rows; returns them as the database has them (all columns as text). */
async function populate(client: pg.Client, s: Snapshot): Promise<Map<string, Array<Record<string, string | null>>>> {
  const inserted = new Map<string, Array<Record<string, unknown>>>();
  for (const key of insertOrder(s)) {
    const table = s.tables[key]!;
    const rows: Array<Record<string, unknown>> = [];
    for (let i = 0; i < ROWS; i++) {
      const row: Record<string, unknown> = {};
      for (const col of Object.values(table.columns)) {
        const v = valueFor(table.name, col, i);
        if (v !== undefined) row[col.name] = v;
      }
      for (const fk of Object.values(table.foreignKeys)) {
        const target = inserted.get(fk.tableTo);
        const nullable = fk.columnsFrom.every((c) => !table.columns[c]?.notNull);
        if (fk.tableTo === table.name || !target) {
          if (nullable) for (const c of fk.columnsFrom) row[c] = null;
          continue;
        }
        const ref = target[i % target.length]!;
        fk.columnsFrom.forEach((c, j) => (row[c] = ref[fk.columnsTo[j]!]));
      }
      const cols = Object.keys(row);
      const res = await client.query(
        `INSERT INTO ${q(table.name)} (${cols.map(q).join(', ')}) VALUES (${cols.map((_, j) => `$${j + 1}`).join(', ')}) RETURNING *`,
        cols.map((c) => row[c]),
      );
      rows.push(res.rows[0] as Record<string, unknown>);
    }
    inserted.set(table.name, rows);
  }
  return new Map(await Promise.all([...inserted.keys()].map(async (name) => [name, await dump(client, name)] as const)));
}

/** Every row of a table, each column as PostgreSQL's text, in a stable order. */
async function dump(client: pg.Client, table: string): Promise<Array<Record<string, string | null>>> {
  const cols = (
    await client.query<{ column_name: string }>(
      `SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position`,
      [table],
    )
  ).rows.map((r) => r.column_name);
  const res = await client.query(`SELECT ${cols.map((c) => `${q(c)}::text AS ${q(c)}`).join(', ')} FROM ${q(table)} ORDER BY 1, 2`);
  return res.rows as Array<Record<string, string | null>>;
}

/** A migrations folder holding the real one's migrations up to `tag` (the journal cut after it). */
function folderAt(tag: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'zstack-migrations-'));
  mkdirSync(join(dir, 'meta'));
  const entries = journal.entries.slice(0, journal.entries.findIndex((e) => e.tag === tag) + 1);
  for (const e of entries) cpSync(join(migrationsFolder, `${e.tag}.sql`), join(dir, `${e.tag}.sql`));
  writeFileSync(join(dir, 'meta', '_journal.json'), JSON.stringify({ ...journal, entries }));
  return dir;
}

const latest = journal.entries.at(-1)!;
const latestSnapshot = snapshotOf(latest.tag);

t.ok(journal.entries.length >= 2, `the journal lists ${journal.entries.length} migrations`);

for (const entry of journal.entries.slice(0, -1)) {
  t.test(`a database at ${entry.tag}, with rows in every table, migrates to ${latest.tag} with its data intact`, async (t) => {
    const database = await createDatabase();
    t.teardown(() => database.drop());
    const folder = folderAt(entry.tag);
    t.teardown(() => rmSync(folder, { recursive: true, force: true }));

    // The database at k: drizzle's migrator over the first k+1 migrations (its bookkeeping, as a real one had it).
    const pool = new pg.Pool({ connectionString: database.url, max: 2 });
    await drizzleMigrate(drizzle(pool), { migrationsFolder: folder });
    await pool.end();
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    t.teardown(() => client.end());
    const snap = snapshotOf(entry.tag);
    const before = await populate(client, snap);
    const total = [...before.values()].reduce((n, rows) => n + rows.length, 0);
    t.equal(total, Object.keys(snap.tables).length * ROWS, `${total} rows in ${before.size} tables at ${entry.tag}`);

    // Upgrade with the server's own code path.
    const db = await openDatabase({ url: database.url, dataDir: folder });
    try {
      await migrate(db);
      // The app's schema reads every table (every column it declares exists, every value decodes).
      for (const table of Object.values(schema)) {
        if (!is(table, PgTable)) continue;
        await db.db
          .select()
          .from(table)
          .limit(ROWS * 2);
      }
      const applied = await db.db.execute(sql`SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations`);
      t.equal((applied as unknown as { rows: Array<{ n: number }> }).rows[0]!.n, journal.entries.length, 'every migration is recorded as applied');
    } finally {
      await db.close();
    }

    // Every row is still there with every surviving column unchanged.
    const latestTables = new Map(Object.values(latestSnapshot.tables).map((x) => [x.name, x]));
    for (const [name, rows] of before) {
      const now = latestTables.get(name);
      if (!now) {
        t.comment(`${name} was dropped by a later migration`);
        continue;
      }
      const old = Object.values(snap.tables).find((x) => x.name === name)!;
      const kept = Object.values(old.columns)
        .filter((c) => now.columns[c.name]?.type === c.type)
        .map((c) => c.name);
      const after = await dump(client, name);
      const project = (rs: Array<Record<string, string | null>>) => rs.map((r) => Object.fromEntries(kept.map((c) => [c, r[c]])));
      const sortKey = (r: Record<string, unknown>) => JSON.stringify(r);
      t.same(project(after).map(sortKey).sort(), project(rows).map(sortKey).sort(), `${name}: ${rows.length} rows, ${kept.length} columns intact`);
    }
  });
}

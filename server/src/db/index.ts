// The database: real PostgreSQL through `pg` when a URL is given (DATABASE_URL, or the socket of `npm start`'s
// embedded PostgreSQL, db/embedded-postgres.ts), otherwise PGlite under the data directory (tests of the in-process
// path; `ZSTACK_EMBEDDED_DB=pglite`). Same schema, same SQL, same migrations.
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import { getTableColumns, getTableName, is, sql, type Column } from 'drizzle-orm';
import { getTableConfig, PgTable, type PgDatabase, type PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import * as schema from './schema/index.js';
import { installPgDriver, installPgliteDriver, Perf, SharedGenerations, type ChangeTracker, type ForeignKeyDependents } from './perf/index.js';

export { ChangeTracker, Perf, type Stamp } from './perf/index.js';

export type Schema = typeof schema;
export type Db = PgDatabase<PgQueryResultHKT, Schema>;
/** A transaction or the database itself: anything that runs queries. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0] | Db;

export interface Database {
  db: Db;
  kind: 'pg' | 'pglite';
  /** The pg pool (real PostgreSQL only): dedicated connections for cross-process advisory locks. */
  pool?: pg.Pool;
  /** Which tables changed (every write through this database is seen; other nodes' via PostgreSQL): perf/changes.ts. */
  changes: ChangeTracker;
  /** The performance layer (perf/README.md): caches, prepared statements, the freshness sync. */
  perf: Perf;
  close(): Promise<void>;
}

/** The schema's table names. */
export const tableNames: string[] = (Object.values(schema) as unknown[]).flatMap((v) => (is(v, PgTable) ? [getTableName(v)] : []));

/**
 * Table → the tables PostgreSQL itself writes when its rows are deleted (foreign keys with ON DELETE CASCADE, SET
 * NULL or SET DEFAULT), and when their keys change (the same ON UPDATE actions): the change tracker marks those too,
 * or cached reads of e.g. memberships would outlive the rows they point at. Kept apart: an UPDATE writes the
 * dependents only through ON UPDATE actions (none in this schema, whose keys never change), so updating a VM does
 * not mark every table that refers to VMs.
 */
export const foreignKeyDependents: ForeignKeyDependents = (() => {
  const out = { onDelete: new Map<string, string[]>(), onUpdate: new Map<string, string[]>() };
  const acts = (a: string | undefined) => a === 'cascade' || a === 'set null' || a === 'set default';
  for (const v of Object.values(schema) as unknown[]) {
    if (!is(v, PgTable)) continue;
    for (const fk of getTableConfig(v).foreignKeys) {
      const parent = getTableName(fk.reference().foreignTable);
      for (const [action, map] of [
        [fk.onDelete, out.onDelete],
        [fk.onUpdate, out.onUpdate],
      ] as const) {
        if (acts(action)) map.set(parent, [...new Set([...(map.get(parent) ?? []), getTableName(v)])]);
      }
    }
  }
  return out;
})();

const perfs = new WeakMap<object, Perf>();

/** The performance layer of the database a drizzle instance was opened on. */
export function perfOf(db: Tx): Perf | undefined {
  return perfs.get(db);
}

/** The change tracker of the database a drizzle instance was opened on. */
export function changesOf(db: Tx): ChangeTracker | undefined {
  return perfs.get(db)?.changes;
}

export const migrationsFolder = resolve(dirname(fileURLToPath(import.meta.url)), '../../drizzle');

// Bigint columns (counts, capacities) come back as numbers: values stay far below 2^53.
pg.types.setTypeParser(20, (v) => Number(v));

export async function openDatabase(opts: { url?: string; dataDir: string; poolSize?: number }): Promise<Database> {
  if (opts.url) {
    const pool = new pg.Pool({ connectionString: opts.url, max: opts.poolSize ?? 20 });
    // An idle client the server ended (57P01: a restart, pg_terminate_backend, a database dropped WITH (FORCE) at the
    // end of a test) is just dropped; the pool opens a new one when needed. Anything else is worth a line.
    pool.on('error', (e) => {
      if ((e as { code?: string }).code !== '57P01') console.error('[db] idle client error:', e.message);
    });
    const perf = Perf.create(tableNames, foreignKeyDependents);
    perf.shareThrough(pool);
    installPgDriver(pool, perf.changes, perf.switches);
    const db = drizzlePg(pool, { schema }) as unknown as Db;
    perfs.set(db, perf);
    return { db, kind: 'pg', pool, changes: perf.changes, perf, close: () => pool.end() };
  }
  const dir = join(opts.dataDir, 'pglite');
  mkdirSync(dir, { recursive: true });
  const client = await PGlite.create(dir);
  const perf = Perf.create(tableNames, foreignKeyDependents);
  installPgliteDriver(client as never, perf.changes);
  const db = drizzlePglite(client, { schema }) as unknown as Db;
  perfs.set(db, perf);
  return { db, kind: 'pglite', changes: perf.changes, perf, close: () => client.close() };
}

/** Applies the committed migrations; several servers starting at once take turns (advisory lock). */
export async function migrate(database: Database): Promise<void> {
  if (database.kind === 'pglite') {
    await migratePglite(database.db as never, { migrationsFolder });
    return;
  }
  const client = await database.pool!.connect();
  try {
    await client.query('SELECT pg_advisory_lock(727272)');
    await SharedGenerations.ensureSequences(client, tableNames);
    await migratePg(database.db as never, { migrationsFolder });
  } finally {
    await client.query('SELECT pg_advisory_unlock(727272)').catch(() => undefined);
    client.release();
  }
}

/** Rows of a raw SQL statement, whichever driver runs it. */
export async function rows<T = Record<string, unknown>>(db: Tx, query: ReturnType<typeof sql>): Promise<T[]> {
  const result = (await db.execute(query)) as unknown as { rows: T[] };
  return result.rows;
}

const columnLists = new WeakMap<PgTable, Array<{ key: string; name: string; col: Column }>>();

/**
 * A raw row of `table` (column names; driver values, or the text `row_to_json` gives) → the object drizzle's select
 * returns (property names, each value through its column's own decoder). The column list is computed once per table.
 */
export function decodeRow<T extends PgTable>(table: T, raw: Record<string, unknown>): T['$inferSelect'] {
  let cols = columnLists.get(table);
  if (!cols) {
    cols = Object.entries(getTableColumns(table)).map(([key, col]) => ({ key, name: col.name, col }));
    columnLists.set(table, cols);
  }
  const o: Record<string, unknown> = {};
  for (const c of cols) {
    const v = raw[c.name];
    o[c.key] = v === null || v === undefined ? null : c.col.mapFromDriverValue(v);
  }
  return o as T['$inferSelect'];
}

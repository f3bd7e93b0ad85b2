// A page of inventories as JSON text built by PostgreSQL: one statement selects the page and renders each row
// (with its nested inventories) in the inventory's field order, so the server neither decodes rows nor builds and
// serializes objects — what most of a computed query's CPU went to (bench/README.md, query section). An inventory
// opts in by declaring its `JsonShape` beside its row mapping; test/resource/json-page.test.ts checks that both
// render the same bytes.
import { getTableColumns, getTableName, sql, type SQL } from 'drizzle-orm';
import { PgDialect, type PgColumn, type PgTable } from 'drizzle-orm/pg-core';
import type { Tx } from '../db/index.js';
import type { CachedRow, ChangeTracker, RowCache, Stamp } from '../db/perf/index.js';
import { StatementTemplates, type Bind } from '../db/perf/template.js';
import { formatDate } from './dates.js';

/** One field of an inventory, in reply order. A null value leaves the field out (as upstream's Gson does). */
export type JsonField =
  | {
      name: string;
      /** Column key on the table; a timestamp renders as upstream's date (`Jan 30, 2016 3:01:03 PM`, UTC). */
      column: string;
      /** Only rows whose `column` equals `equals` carry the field (e.g. an appliance VM's own fields). */
      when?: { column: string; equals: string };
    }
  | {
      name: string;
      /** Rows of `table` whose `remoteKey` equals this row's `localKey`, ordered by `orderBy`: always an array. */
      nested: { table: PgTable; shape: JsonShape; localKey: string; remoteKey: string; orderBy: string };
    };

export interface JsonShape {
  fields: JsonField[];
  /** The field (a column field) whose value picks the inventory's subclass in the reply's `schema` map (`x-zstack-subclasses`). */
  discriminator?: string;
}

export interface JsonRow {
  /** The inventory's JSON text, UTF-8 (encoded once: a cached row's bytes go into every page that shows it). */
  json: Buffer;
  /** What the reply's `schema` map depends on: the discriminator's value and each nested array's length (built
   *  only when its key is not memoized yet). */
  skeleton(): Record<string, unknown>;
  /** A key equal for equal skeletons. */
  skeletonKey: string;
}

export interface JsonPage {
  total?: number;
  rows: JsonRow[];
}

/** A page's rows: `where`, `order` and the bounds on `t0`, every value bound through `bind` (db/perf/template.ts). */
export interface PageQuery {
  /** Names the page's statements (with the JSON shape); their text is rendered once per shape. */
  name: string;
  of(bind: Bind): { where: SQL; order: SQL[]; limit: unknown; offset?: unknown };
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const DATE_FORMAT = `'Mon FMDD, YYYY FMHH12:MI:SS AM'`;

function columnOf(table: PgTable, key: string): PgColumn {
  const col = (getTableColumns(table) as Record<string, PgColumn>)[key];
  if (!col) throw new Error(`${getTableName(table)} has no column ${key}`);
  return col;
}

/** `alias."column"` as JSON text (dates in upstream's format); only types whose JSON PostgreSQL and JSON.stringify agree on. */
function valueSql(table: PgTable, alias: string, key: string): SQL {
  const col = columnOf(table, key);
  const ref = sql`${sql.identifier(alias)}.${sql.identifier(col.name)}`;
  switch (col.columnType) {
    case 'PgText':
    case 'PgBoolean':
      return sql`to_json(${ref})`;
    case 'PgInteger':
    case 'PgSerial':
    case 'PgBigInt53':
    case 'PgSmallInt':
      return ref;
    case 'PgTimestamp':
      if (!(col as unknown as { withTimezone: boolean }).withTimezone) break;
      // The format has nothing JSON would escape.
      return sql`'"' || to_char(${ref} AT TIME ZONE 'UTC', ${sql.raw(DATE_FORMAT)}) || '"'`;
  }
  // Floats, JSON and arrays render differently in PostgreSQL and in JS: not for this path.
  throw new Error(`${getTableName(table)}.${key} (${col.columnType}) cannot be rendered as JSON by PostgreSQL`);
}

/**
 * The object as text: `concat` of one `,"name":value` piece per field. A null value makes its piece null, and
 * `concat` skips nulls: the field is left out (cheaper than json_build_object + json_strip_nulls, which look up
 * each argument's type on every row). The first field must never be null (it carries no comma).
 */
function objectSql(table: PgTable, alias: string, shape: JsonShape, nested: (name: string) => SQL): SQL {
  const first = shape.fields[0];
  if (!first || !('column' in first) || first.when || !columnOf(table, first.column).notNull) {
    throw new Error(`${getTableName(table)}: the first field of a JSON shape must be a column that is never null`);
  }
  const parts = shape.fields.map((f, i) => {
    if (!NAME.test(f.name)) throw new Error(`field name ${f.name} cannot be rendered`);
    const key = sql.raw(`'${i ? ',' : ''}"${f.name}":'`);
    if ('nested' in f) return sql`${key} || ${nested(f.name)}`;
    const value = sql`${key} || ${valueSql(table, alias, f.column)}`;
    if (!f.when) return value;
    if (!NAME.test(f.when.equals)) throw new Error(`condition value ${f.when.equals} cannot be rendered`);
    const cond = sql`${sql.identifier(alias)}.${sql.identifier(columnOf(table, f.when.column).name)} = ${sql.raw(`'${f.when.equals}'`)}`;
    return sql`CASE WHEN ${cond} THEN ${value} END`;
  });
  return sql`concat('{', ${sql.join(parts, sql`, `)}, '}')`;
}

/** What a shape renders to, compiled once: the select list and the lateral joins as SQL text (no parameters). */
interface Compiled {
  /** The shape's number: names its statements. */
  id: number;
  select: SQL;
  joins: SQL;
  nested: string[];
  /** `m`, `k`, the version of every tuple a row is rendered from (after `joins`), and `c`, the row's ctid. */
  version: SQL;
  /** Laterals giving `version` without rendering anything (a page's row versions alone). */
  versionJoins: SQL;
  /** `m`, the version of the row's own tuple (no nested rows: no laterals), and `c`. */
  ownVersion: SQL;
  nestedTables: string[];
  /** Of recent pages, the share of rows the row cache held: below one half, a page is rendered in one statement. */
  cachedShare: number;
}
let shapes = 0;
const compiled = new WeakMap<JsonShape, Compiled>();
const dialect = new PgDialect();

/** Static SQL (identifiers and literals only) → raw text, so a request does not build it again. */
function frozen(chunk: SQL): SQL {
  const { sql: text, params } = dialect.sqlToQuery(chunk);
  if (params.length) throw new Error('a JSON shape rendered with parameters');
  return sql.raw(text);
}

function compile(table: PgTable, shape: JsonShape): Compiled {
  const nestedFields = shape.fields.filter((f): f is Extract<JsonField, { nested: unknown }> => 'nested' in f);
  const laterals = nestedFields.map((f, i) => {
    const n = f.nested;
    if (n.shape.fields.some((x) => 'nested' in x)) throw new Error(`${f.name}: nested inventories one level deep only`);
    const alias = `n${i}`;
    const element = objectSql(n.table, alias, n.shape, () => sql``);
    const remote = sql`${sql.identifier(alias)}.${sql.identifier(columnOf(n.table, n.remoteKey).name)}`;
    const local = sql`${sql.identifier('t0')}.${sql.identifier(columnOf(table, n.localKey).name)}`;
    const order = sql`${sql.identifier(alias)}.${sql.identifier(columnOf(n.table, n.orderBy).name)}`;
    const from = sql`FROM ${sql.identifier(getTableName(n.table))} ${sql.identifier(alias)} WHERE ${remote} = ${local}`;
    const tuples = sql`string_agg(${tupleVersion(alias)}, ',' ORDER BY ${order}) AS s`;
    return {
      render: sql` LEFT JOIN LATERAL (SELECT '[' || COALESCE(string_agg(${element}, ',' ORDER BY ${order}), '') || ']' AS v, count(*)::int AS n, ${tuples} ${from}) ${sql.identifier(`j${i}`)} ON TRUE`,
      version: sql` LEFT JOIN LATERAL (SELECT ${tuples} ${from}) ${sql.identifier(`j${i}`)} ON TRUE`,
    };
  });
  // The row's key besides its tuple (a tuple's place is reused after a rewrite such as VACUUM FULL). `m` starts with
  // the shape's number: it is the row cache's key as it comes (no key built per row and page).
  const key = 'uuid' in getTableColumns(table) ? [sql`${sql.identifier('t0')}.${sql.identifier(columnOf(table, 'uuid').name)}`] : [];
  const id = ++shapes;
  const own = sql.join([sql.raw(`'${id}'`), ...key, tupleVersion('t0')], sql` || '|' || `);
  const version = sql.join([own, ...nestedFields.map((_, i) => sql`COALESCE(${sql.identifier(`j${i}`)}.s, '')`)], sql` || '|' || `);
  const object = objectSql(table, 't0', shape, (name) => sql`${sql.identifier(`j${nestedFields.findIndex((f) => f.name === name)}`)}.v`);
  const counts = nestedFields.map((_, i) => sql`, ${sql.identifier(`j${i}`)}.n AS ${sql.identifier(`n${i}`)}`);
  const picker = shape.fields.find((f) => f.name === shape.discriminator);
  if (shape.discriminator && !(picker && 'column' in picker)) throw new Error(`discriminator ${shape.discriminator} is not a column field`);
  const discriminator = picker && 'column' in picker ? sql`, ${sql.identifier('t0')}.${sql.identifier(columnOf(table, picker.column).name)} AS d` : sql``;
  return {
    id,
    select: frozen(sql`${object} AS j${discriminator}${sql.join(counts, sql``)}, ${own} AS m, ${version} AS k, t0._ctid::text AS c`),
    joins: frozen(
      sql.join(
        laterals.map((l) => l.render),
        sql``,
      ),
    ),
    nested: nestedFields.map((f) => f.name),
    version: frozen(sql`${own} AS m, ${version} AS k, t0._ctid::text AS c`),
    ownVersion: frozen(sql`${own} AS m, t0._ctid::text AS c`),
    nestedTables: nestedFields.map((f) => getTableName(f.nested.table)),
    versionJoins: frozen(
      sql.join(
        laterals.map((l) => l.version),
        sql``,
      ),
    ),
    cachedShare: 0,
  };
}

/**
 * A tuple's identity and version: its place (`ctid`) and the transaction that wrote it (`xmin`). The page's own rows
 * come through a subquery, which passes them on as `_ctid` and `_xmin` (`SELECT *` does not carry system columns).
 */
function tupleVersion(alias: string): SQL {
  const [ctid, xmin] = alias === 't0' ? ['_ctid', '_xmin'] : ['ctid', 'xmin'];
  return sql`${sql.identifier(alias)}.${sql.raw(ctid)}::text || ${sql.identifier(alias)}.${sql.raw(xmin)}::text`;
}

/** The rows of `table` (aliased `t0`) a page renders, with their tuple versions (see `tupleVersion`). */
function rowsOf(table: PgTable, rest: SQL): SQL {
  return sql`SELECT t0.*, t0.ctid AS _ctid, t0.xmin AS _xmin FROM ${sql.identifier(getTableName(table))} ${sql.identifier('t0')} ${rest}`;
}

/**
 * The statements of the JSON pages. Building and rendering a page's SQL with drizzle cost ~8 % of a computed
 * page's server CPU; rendered once per shape (the inventory, each condition's path and operator, the sort, which
 * bounds are given), a request only binds its values.
 */
const statements = new StatementTemplates({ maxShapes: 1000 });

/** How many page statement shapes have their text kept (for tests). */
export const pageStatementShapes = (): number => statements.shapes;

/** `SELECT <list> FROM (the page's rows) t0<joins> ORDER BY <the page's order>`, rendered once per shape. */
function pageStatement<T>(db: Tx, table: PgTable, page: PageQuery, name: string, list: SQL, joins: SQL = sql``): Promise<T[]> {
  return statements.rows<T>(db, `${page.name}.${name}`, (bind) => {
    const p = page.of(bind);
    return () => {
      const orderBy = sql.join(p.order, sql`, `);
      const bounds = sql`LIMIT ${p.limit}${p.offset !== undefined ? sql` OFFSET ${p.offset}` : sql``}`;
      const inner = rowsOf(table, sql`WHERE ${p.where} ORDER BY ${orderBy} ${bounds}`);
      return sql`SELECT ${list} FROM (${inner}) ${sql.identifier('t0')}${joins} ORDER BY ${orderBy}`;
    };
  });
}

/** `SELECT <list> FROM (the rows at these ctids) t0<joins>`, rendered once per statement. */
function byCtid<T>(db: Tx, table: PgTable, name: string, rows: Array<{ c: string }>, list: SQL, joins: SQL): Promise<T[]> {
  return statements.rows<T>(db, name, (bind) => {
    const ctids = bind('ctids', `{${rows.map((r) => `"${r.c}"`).join(',')}}`);
    return () => sql`SELECT ${list} FROM (${rowsOf(table, sql`WHERE t0.ctid = ANY(${ctids}::tid[])`)}) ${sql.identifier('t0')}${joins}`;
  });
}

/**
 * The page: `where`, `order` and the bounds select rows of `table` aliased `t0` (the same SQL the object path uses),
 * then each is rendered with its nested arrays (one lateral aggregate per nested field, after the limit).
 *
 * With a row cache: while recent pages found most of their rows in it, the page's tuple versions are read first
 * (the same page, nothing rendered) and only rows not cached by those versions are rendered (by ctid); see
 * `fromCache`. A row that moved in between (its ctid no longer holds that version) sends the page back to the
 * one-statement path. `changes`: the change tracker, passed only after the request's freshness sync.
 */
export async function selectJsonPage(db: Tx, table: PgTable, shape: JsonShape, page: PageQuery, cache?: RowCache, changes?: ChangeTracker): Promise<JsonRow[]> {
  let c = compiled.get(shape);
  if (!c) compiled.set(shape, (c = compile(table, shape)));
  const name = `${page.name}.${c.id}`;
  const named = { name, of: page.of };
  // Taken before any statement: what is read after it may be newer, never older.
  const fresh = changes ? { changes, stamp: changes.stamp() } : undefined;
  if (cache && c.cachedShare >= 0.5) {
    const versions = () =>
      fresh
        ? pageStatement<{ m: string; c: string }>(db, table, named, 'own-versions', c.ownVersion)
        : pageStatement<{ m: string; k: string; c: string }>(db, table, named, 'versions', c.version, c.versionJoins);
    const rows = await fromCache(db, table, shape, c, cache, versions, fresh);
    if (rows) return rows;
  }
  const raw = await pageStatement<Rendered>(db, table, named, 'rendered', c.select, c.joins);
  const verified = fresh ? fresh.changes.narrow(fresh.stamp, c.nestedTables) : undefined;
  if (cache) {
    let held = 0;
    for (const r of raw) if (cache.has(r.m)) held++;
    c.cachedShare = raw.length ? held / raw.length : c.cachedShare;
  }
  return raw.map((r) => {
    const row = cachedOf(c, shape, r, verified);
    cache?.set(r.m, row);
    return row;
  });
}

type Rendered = Record<string, unknown> & { j: string; m: string; k: string; c: string; d?: unknown };

/** A rendered row as the row cache keeps it; it is also the page's row (JsonRow): nothing is built per page. */
function cachedOf(c: Compiled, shape: JsonShape, r: Rendered, verified: Stamp | undefined): CachedRow {
  const discriminator = shape.discriminator ? r.d : undefined;
  const counts = c.nested.map((_, i) => Number(r[`n${i}`]));
  const skeleton = () => {
    const out: Record<string, unknown> = {};
    if (shape.discriminator) out[shape.discriminator] = discriminator;
    c.nested.forEach((name, i) => (out[name] = Array.from({ length: counts[i] }, () => ({}))));
    return out;
  };
  return { json: Buffer.from(r.j), version: r.k, verified, skeleton, skeletonKey: `${shape.discriminator ? String(discriminator) : ''}|${counts.join('|')}` };
}

/**
 * The page from its rows' versions (`versions`: `m`, `c`, and `k` when it reads the nested rows' versions too);
 * undefined when a row moved meanwhile. Entries are found by the row's own version `m`; an entry is current when its
 * whole version `k` (nested rows included) is the one read — or, when `versions` read no nested rows (`fresh`: the
 * request synced with the other nodes), when none of the nested tables changed since the entry's `k` was last read
 * (`verified`, a stamp taken before that read). Other cached entries have their `k` read by ctid (nothing rendered);
 * rows whose `k` moved, and rows not cached, are rendered.
 */
async function fromCache(
  db: Tx,
  table: PgTable,
  shape: JsonShape,
  c: Compiled,
  cache: RowCache,
  versions: () => Promise<Array<{ m: string; k?: string; c: string }>>,
  fresh?: { changes: ChangeTracker; stamp: Stamp },
): Promise<JsonRow[] | undefined> {
  const page = await versions();
  // The reply depends on the nested tables even when no statement of this page names them.
  if (fresh) fresh.changes.noteTables(c.nestedTables);
  const verified = fresh ? fresh.changes.narrow(fresh.stamp, c.nestedTables) : undefined;
  const entries = page.map((r) => cache.peek(r.m));
  // Rows rendered together share their `verified` stamp: each stamp is checked once per page.
  const current = new Map<Stamp, boolean>();
  const isCurrent = (stamp: Stamp) => current.get(stamp) ?? current.set(stamp, fresh!.changes.isCurrent(stamp, c.nestedTables)).get(stamp)!;
  const found = entries.map((e, i) => {
    const k = page[i].k;
    if (!e) return undefined;
    if (k !== undefined) return k === e.version ? e : undefined;
    return fresh && e.verified && isCurrent(e.verified) ? e : undefined;
  });
  // Cached, but the nested rows may have moved: read their versions (nothing rendered).
  const unsure = page.filter((r, i) => entries[i] && !found[i] && r.k === undefined);
  if (unsure.length) {
    const read = await byCtid<{ m: string; k: string }>(db, table, `${c.id}.versions-by-ctid`, unsure, c.version, c.versionJoins);
    const now = new Map(read.map((r) => [r.m, r.k]));
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      if (!e || found[i] || e.version !== now.get(page[i].m)) continue;
      e.verified = verified;
      found[i] = e;
    }
  }
  const missing = page.filter((_, i) => !found[i]);
  cache.served(page.length - missing.length, missing.length);
  c.cachedShare = page.length ? (page.length - missing.length) / page.length : c.cachedShare;
  if (missing.length) {
    const rendered = await byCtid<Rendered>(db, table, `${c.id}.rendered-by-ctid`, missing, c.select, c.joins);
    const byOwn = new Map(rendered.map((r) => [r.m, r]));
    for (const [i, r] of page.entries()) {
      if (found[i]) continue;
      const row = byOwn.get(r.m);
      if (!row || (r.k !== undefined && row.k !== r.k)) return undefined;
      found[i] = cachedOf(c, shape, row, verified);
      cache.set(r.m, found[i]!);
    }
  }
  return found as CachedRow[];
}

/** Fields named as their columns. */
export function columnFields(...keys: string[]): JsonField[] {
  return keys.map((key) => ({ name: key, column: key }));
}

/**
 * The inventory of a decoded row (drizzle's row object) by the same shape, for replies built from objects: the
 * same fields in the same order, dates formatted, nulls left out. `nested` holds each nested field's inventories.
 * Objects are built key by key (no `delete`, which turns objects into slow dictionaries).
 */
export function objectOf(shape: JsonShape, row: Record<string, unknown>, nested: Record<string, unknown[]> = {}): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const f of shape.fields) {
    if ('nested' in f) {
      o[f.name] = nested[f.name] ?? [];
      continue;
    }
    if (f.when && row[f.when.column] !== f.when.equals) continue;
    const v = row[f.column];
    if (v === null || v === undefined) continue;
    o[f.name] = v instanceof Date ? formatDate(v) : v;
  }
  return o;
}

// The one query engine behind every Query API. Each inventory registers a descriptor: its table, its queryable
// fields (inventory name → column), its expanded fields (joins to other inventories, so `vmNics.ip=10.0.0.5`
// works) and a batch mapping from rows to inventories. Conditions follow upstream's grammar (zstack-api.md §1.8);
// every value travels as a bind parameter and every field name is checked against the descriptor, so nothing
// a caller writes reaches the SQL text.
import { and, asc, desc, getTableColumns, getTableName, sql, type SQL } from 'drizzle-orm';
import { alias, type PgColumn, type PgTable } from 'drizzle-orm/pg-core';
import { decodeRow, perfOf, rows as rawRows, type ChangeTracker, type Stamp, type Tx } from '../db/index.js';
import { immediate, StatementTemplates, within, type Bind } from '../db/perf/template.js';
import type { Chunks, ReplyBody } from './chunks.js';
import { parseDate } from './dates.js';
import { argErr } from './errors.js';
import { selectJsonPage, type JsonPage, type JsonShape } from './json-page.js';

export type FieldType = 'string' | 'number' | 'boolean' | 'date';

export interface FieldDef {
  /** Property name of the column on the drizzle table. */
  key: string;
  type: FieldType;
  /** Numbers: the largest magnitude the column holds (2^31 − 1 for integer columns; default 2^53 − 1). */
  max?: number;
}

/** `record[key]` when it is the record's own entry (never Object.prototype's `__proto__`, `constructor`…). */
function own<T>(record: Record<string, T> | undefined, key: string): T | undefined {
  return record && Object.prototype.hasOwnProperty.call(record, key) ? record[key] : undefined;
}

/** A caller's value in a message: bounded. */
/** `alias(table, name)` made once per table and name: a drizzle alias is an immutable proxy, built anew it is garbage per request. */
const aliases = new WeakMap<PgTable, Map<string, PgTable>>();
function aliasOf(table: PgTable, name: string): any {
  let byName = aliases.get(table);
  if (!byName) aliases.set(table, (byName = new Map()));
  let a = byName.get(name);
  if (!a) byName.set(name, (a = alias(table, name)));
  return a;
}
const shown = (raw: string) => (raw.length > 64 ? `${raw.slice(0, 64)}…` : raw);

export interface Expansion {
  inventory: string;
  /** Column key on this inventory's table… */
  localKey: string;
  /** …equal to this column key on the other inventory's table. */
  remoteKey: string;
}

export interface InventoryDescriptor<Row = any, Inv = any> {
  name: string;
  table: PgTable;
  fields: Record<string, FieldDef>;
  expand?: Record<string, Expansion>;
  /** Shorthands, e.g. `cluster` → `clusterRef.cluster`. */
  aliases?: Record<string, string>;
  /** Extra restriction always applied (e.g. only appliance VMs). */
  where?: (table: any) => SQL;
  defaultSort?: string;
  /**
   * Visibility to Normal accounts (core/permissions.ts): rows whose `ownerKey` column (default `uuid`) names a
   * resource the account owns, has been shared, or is the account itself; `globalReadable` inventories are seen
   * whole (upstream's global readable resources, e.g. zones).
   */
  ownerKey?: string;
  globalReadable?: boolean;
  toInventories(rows: Row[], db: Tx): Promise<Inv[]>;
  /**
   * The same inventories as `toInventories`, declared so that PostgreSQL renders a page as JSON text (core/json-page.ts):
   * the Query API's reply is then assembled from text, without row decoding, objects or serialization.
   */
  json?: JsonShape;
}

/** How a Query API turns the engine's result into its reply: from objects, or from a page of JSON text. */
export interface ReplyBuilder {
  object(r: QueryReply): object;
  /** The reply's bytes from a page of rendered rows (the rows' own buffers, neither copied nor re-encoded). */
  page(p: JsonPage): Chunks;
}

export interface QueryParams {
  q?: string | string[];
  limit?: number;
  start?: number;
  count?: boolean;
  replyWithCount?: boolean;
  sort?: string;
  sortBy?: string;
  sortDirection?: 'asc' | 'desc';
  fields?: string;
  /** Set by the permission check for a Normal account: only what this account may see (part of the cache key). */
  accountScope?: string;
  /** Conditions already parsed (callers that build them, e.g. 1.1's search triples: no text grammar to escape). */
  conditions?: Condition[];
}

export interface QueryReply {
  inventories?: unknown[];
  total?: number;
}

// Priority order as upstream: the first operator contained in the condition wins.
const OPERATORS = ['!=', '>=', '<=', '!?=', '!~=', '~=', '?=', '=', '>', '<'] as const;
type Op = (typeof OPERATORS)[number] | 'is null' | 'not null';

export interface Condition {
  path: string[];
  op: Op;
  value?: string;
}

/**
 * A condition name that is not a column of the inventory (e.g. `__systemTag__`, `__userTag__`): registered on the
 * engine with `registerCondition`, it is tried at any level of a dotted path (so `vmNics.__userTag__=x` works) after
 * the inventory's own fields. `table` is the alias of `d.table` the condition applies to; every value must travel
 * as a bind parameter bound through `bind` (`bind('v', value)`, or `compareColumn`), and every structural choice
 * not implied by the condition's path and operator declared with `bind.shape` (db/perf/template.ts).
 */
export type SpecialCondition = (args: { d: InventoryDescriptor; table: any; condition: Condition; name: string; bind: Bind }) => SQL;

export function parseCondition(text: string): Condition {
  const s = String(text);
  for (const op of ['is null', 'not null'] as const) {
    if (s.endsWith(` ${op}`))
      return {
        path: s
          .slice(0, -op.length - 1)
          .trim()
          .split('.'),
        op,
      };
  }
  for (const op of OPERATORS) {
    const i = s.indexOf(op);
    if (i > 0) return { path: s.slice(0, i).trim().split('.'), op, value: s.slice(i + op.length) };
  }
  throw argErr(`invalid query condition[${s}]: no operator found; valid operators are ${[...OPERATORS, 'is null', 'not null'].join(', ')}`);
}

/** The count statements, rendered once per shape (db/perf/template.ts). */
const counts = new StatementTemplates({ maxShapes: 500 });

export class QueryEngine {
  private descriptors = new Map<string, InventoryDescriptor>();
  /** Computations in progress by key, shared by identical requests while nothing changed since they began. */
  private computing = new Map<string, { stamp: Stamp; body: Promise<Buffer | Chunks> }>();
  private specials = new Map<string, SpecialCondition>();

  register(d: InventoryDescriptor): void {
    this.descriptors.set(d.name, d);
  }

  /** A special condition name (see `SpecialCondition`); one builder per name. */
  registerCondition(name: string, build: SpecialCondition): void {
    if (this.specials.has(name)) throw new Error(`query condition ${name} registered twice`);
    this.specials.set(name, build);
  }

  descriptor(name: string): InventoryDescriptor {
    const d = this.descriptors.get(name);
    if (!d) throw new Error(`no query descriptor for ${name}`);
    return d;
  }

  has(name: string): boolean {
    return this.descriptors.has(name);
  }

  async query(db: Tx, inventory: string, params: QueryParams): Promise<QueryReply> {
    const d = this.descriptor(inventory);
    const table = aliasOf(d.table, 't0');
    const where = this.where(d, table, params, immediate);
    const reply: QueryReply = await this.counted(db, d, table, params);
    if (params.count) return reply;
    const fields = parseFields(d, params.fields);
    const order = sortOf(d, table, params, immediate);
    // Plain SQL and a precomputed column list instead of drizzle's select: its per-cell row mapping was most of the
    // server's CPU for a page of inventories. Each value still goes through its column's own decoder.
    const rows = await selectRows(
      db,
      d.table,
      sql`${where} ORDER BY ${sql.join(order, sql`, `)} LIMIT ${params.limit ?? 1000}${params.start ? sql` OFFSET ${params.start}` : sql``}`,
    );
    let inventories = (await d.toInventories(rows as never[], db)) as Record<string, unknown>[];
    if (fields) inventories = inventories.map((inv) => Object.fromEntries(fields.filter((f) => f in inv).map((f) => [f, inv[f]])));
    reply.inventories = inventories;
    return reply;
  }

  /**
   * The page as JSON text rendered by PostgreSQL, when the inventory declares its shape and the request wants whole
   * inventories (no `fields`, not a count alone); undefined otherwise (the caller takes `query`).
   */
  async jsonPage(db: Tx, inventory: string, params: QueryParams, changes?: ChangeTracker): Promise<JsonPage | undefined> {
    const d = this.descriptor(inventory);
    const shape = d.json;
    if (!shape || params.count || params.fields) return undefined;
    const table = aliasOf(d.table, 't0');
    const { total } = await this.counted(db, d, table, params);
    // Every value bound, every choice declared: the page's statements are rendered once per shape (json-page.ts).
    const page = (bind: Bind) => ({
      where: this.where(d, table, params, bind),
      order: sortOf(d, table, params, bind),
      limit: bind('limit', params.limit ?? 1000),
      offset: params.start ? bind('offset', params.start) : undefined,
    });
    const rows = await selectJsonPage(db, d.table, shape, { name: d.name, of: page }, perfOf(db)?.rows, changes);
    return { total, rows };
  }

  /**
   * The request's conditions (checked, each value bound through `bind` under `q<i>`, each condition's path and
   * operator declared as part of the statement's shape), the inventory's own restriction and the account's scope.
   */
  private where(d: InventoryDescriptor, table: any, params: QueryParams, bind: Bind): SQL {
    const conditions = [...([] as string[]).concat(params.q ?? []).map(parseCondition), ...(params.conditions ?? [])].map((c, i) => {
      bind.shape(`${c.path.join('.')} ${c.op}`);
      return this.conditionSql(d, table, c, 1, within(bind, `q${i}`));
    });
    if (d.where) conditions.push(d.where(table));
    if (params.accountScope && !d.globalReadable) conditions.push(visibleTo(d, table, bind('account', params.accountScope)));
    return conditions.length ? and(...conditions)! : sql`TRUE`;
  }

  /** The total count, when the request asks for it (its statement rendered once per shape). */
  private async counted(db: Tx, d: InventoryDescriptor, table: any, params: QueryParams): Promise<QueryReply> {
    if (!params.count && !params.replyWithCount) return {};
    const from = sql`${sql.identifier(getTableName(d.table))} ${sql.identifier('t0')}`;
    const [{ n }] = await counts.rows<{ n: string | number }>(db, d.name, (bind) => {
      const where = this.where(d, table, params, bind);
      return () => sql`SELECT count(*) AS n FROM ${from} WHERE ${where}`;
    });
    return { total: Number(n) };
  }

  /** The cached reply of a request, if there is a current one; call after the freshness sync (`Perf.fresh`). */
  cached(db: Tx, inventory: string, params: QueryParams): Buffer | Chunks | undefined {
    const perf = perfOf(db);
    return perf?.replies?.get(cacheKey(inventory, params), perf.changes);
  }

  /**
   * The serialized reply of a Query API: `build` turns the engine's result (a JSON page when the inventory has a
   * shape, objects otherwise) into the reply (and may check it); its
   * JSON is cached (db/perf/reply-cache.ts) when the reply cache is on. Errors are never cached. `synced`: the
   * caller did the request's freshness sync (`Perf.fresh`) and it succeeded; otherwise it is done here.
   */
  async reply(db: Tx, inventory: string, params: QueryParams, build: ReplyBuilder, opts: { synced?: boolean } = {}): Promise<ReplyBody> {
    const perf = perfOf(db);
    const cache = perf?.replies;
    // `changes` only after the request's freshness sync succeeded (the row cache may then trust its generations).
    const json = async (changes: ChangeTracker | undefined) => {
      const page = await this.jsonPage(db, inventory, params, changes);
      return page ? build.page(page) : JSON.stringify(build.object(await this.query(db, inventory, params)));
    };
    // Without the cache the JSON string is sent as it is; cached replies are kept (and sent) as bytes or as a page's pieces.
    if (!perf || !cache) return json(opts.synced ? perf?.changes : undefined);
    const key = cacheKey(inventory, params);
    const changes = opts.synced ? perf.changes : await perf.fresh();
    const compute = async () => {
      const body = await json(changes);
      return typeof body === 'string' ? Buffer.from(body) : body;
    };
    // The shared generations could not be read: answer without the cache.
    if (!changes) return compute();
    const hit = cache.get(key, changes);
    if (hit) return hit;
    const stamp = changes.stamp();
    const running = this.computing.get(key);
    if (running && running.stamp.version === stamp.version) return running.body;
    // The stamp is taken before any statement runs: the result may be newer than it, never older.
    const body = changes.trackReads(compute).then(({ result, tables }) => {
      cache.set(key, result, stamp, tables, changes);
      return result;
    });
    const entry = { stamp, body };
    this.computing.set(key, entry);
    try {
      return await body;
    } finally {
      if (this.computing.get(key) === entry) this.computing.delete(key);
    }
  }

  /** SQL for one condition on `table` (an alias of d.table); dotted paths become EXISTS on the joined inventory. */
  private conditionSql(d: InventoryDescriptor, table: any, c: Condition, depth: number, bind: Bind): SQL {
    const [head, ...rest] = c.path;
    if (rest.length === 0) {
      const field = own(d.fields, head);
      const special = field ? undefined : this.specials.get(head);
      if (special) return special({ d, table, condition: c, name: head, bind });
      if (!field) throw argErr(`field[${head}] is not a queryable field of ${d.name}; queryable: ${Object.keys(d.fields).join(', ')}`);
      return compare(table[field.key] as PgColumn, field, c, head, bind);
    }
    const aliased = own(d.aliases, head);
    if (aliased) return this.conditionSql(d, table, { ...c, path: [...aliased.split('.'), ...rest] }, depth, bind);
    const exp = own(d.expand, head);
    if (!exp) {
      const known = [...Object.keys(d.expand ?? {}), ...Object.keys(d.aliases ?? {})];
      throw argErr(`${d.name} has no expanded field[${head}]; expandable: ${known.join(', ') || 'none'}`);
    }
    if (depth > 6) throw argErr(`query condition[${c.path.join('.')}] joins too deep`);
    const other = this.descriptor(exp.inventory);
    const t = aliasOf(other.table, `t${depth}`);
    const inner = this.conditionSql(other, t, { ...c, path: rest }, depth + 1, bind);
    const extra = other.where ? sql` AND ${other.where(t)}` : sql``;
    // An aliased table interpolated into raw SQL renders as its alias only: name the table explicitly.
    const from = sql`${sql.identifier(getTableName(other.table))} ${sql.identifier(`t${depth}`)}`;
    return sql`EXISTS (SELECT 1 FROM ${from} WHERE ${(t as any)[exp.remoteKey]} = ${table[exp.localKey]} AND ${inner}${extra})`;
  }
}

/** The rows of `d` an account may see: its `ownerKey` (or `uuid`) owned by, shared with, or equal to the account. */
function visibleTo(d: InventoryDescriptor, table: any, accountUuid: unknown): SQL {
  const key = d.ownerKey ?? d.fields.uuid?.key;
  if (!key) return sql`FALSE`;
  return sql`${table[key]} IN (SELECT resource_uuid FROM account_resource_refs WHERE account_uuid = ${accountUuid} UNION ALL SELECT resource_uuid FROM shared_resources WHERE receiver_account_uuid = ${accountUuid} OR to_public UNION ALL SELECT ${accountUuid}::text)`;
}

function convert(field: FieldDef, raw: string, name: string): unknown {
  switch (field.type) {
    case 'number': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n)) throw argErr(`field[${name}] is a number, but [${shown(raw)}] is not`);
      const max = field.max ?? Number.MAX_SAFE_INTEGER;
      if (Math.abs(n) > max) throw argErr(`field[${name}]: [${shown(raw)}] is out of range (at most ±${max})`);
      return n;
    }
    case 'boolean': {
      const v = raw.toLowerCase();
      if (v !== 'true' && v !== 'false') throw argErr(`field[${name}] is a boolean, but [${shown(raw)}] is not`);
      return v === 'true';
    }
    case 'date': {
      const date = parseDate(raw);
      if (!date) throw argErr(`field[${name}] is a date, but [${shown(raw)}] is not (use 'Jan 30, 2016 3:01:03 PM', ISO 8601 or epoch ms)`);
      return date;
    }
    default:
      return raw;
  }
}

/**
 * `col <op> value` for a condition on a field of type `field.type` (values converted, and bound through `bind`;
 * the operator is the statement's shape, declared here).
 */
export function compareColumn(col: PgColumn | SQL, field: Pick<FieldDef, 'type' | 'max'>, c: Condition, name: string, bind: Bind): SQL {
  return compare(col as PgColumn, field as FieldDef, c, name, bind);
}

function compare(col: PgColumn, field: FieldDef, c: Condition, name: string, bind: Bind): SQL {
  bind.shape(c.op);
  if (c.op === 'is null') return sql`${col} IS NULL`;
  if (c.op === 'not null') return sql`${col} IS NOT NULL`;
  const raw = c.value ?? '';
  if (c.op === '?=' || c.op === '!?=') {
    // One array parameter, whatever the number of values: one statement shape (and one plan) for every list.
    const list = bind.array(
      'v',
      raw.split(',').map((v) => convert(field, v, name)),
    );
    return c.op === '?=' ? sql`${col} = ANY(${list})` : sql`NOT (${col} = ANY(${list}))`;
  }
  if (c.op === '~=' || c.op === '!~=') {
    if (field.type !== 'string') throw argErr(`field[${name}] is not a string; ~= and !~= only apply to strings`);
    return c.op === '~=' ? sql`${col} LIKE ${bind('v', raw)}` : sql`${col} NOT LIKE ${bind('v', raw)}`;
  }
  const v = bind('v', convert(field, raw, name));
  switch (c.op) {
    case '=':
      return sql`${col} = ${v}`;
    case '!=':
      return sql`${col} IS DISTINCT FROM ${v}`;
    case '>':
      return sql`${col} > ${v}`;
    case '<':
      return sql`${col} < ${v}`;
    case '>=':
      return sql`${col} >= ${v}`;
    default:
      return sql`${col} <= ${v}`;
  }
}

function parseFields(d: InventoryDescriptor, fields?: string): string[] | undefined {
  if (!fields) return undefined;
  const list = fields
    .split(',')
    .map((f) => f.trim())
    .filter(Boolean);
  for (const f of list) {
    if (!own(d.fields, f)) throw argErr(`field[${f}] in 'fields' is not a field of ${d.name}; only the inventory's own fields can be selected`);
  }
  return list.length ? list : undefined;
}

function sortOf(d: InventoryDescriptor, table: any, p: QueryParams, bind: Bind): SQL[] {
  let name = p.sortBy;
  let dir = p.sortDirection ?? 'asc';
  if (p.sort) {
    const s = p.sort.trim();
    dir = s.startsWith('-') ? 'desc' : 'asc';
    name = s.replace(/^[+-]/, '');
  }
  const tiebreak = d.fields.uuid ? [asc(table[d.fields.uuid.key])] : [];
  if (!name) {
    const def = d.defaultSort && d.fields[d.defaultSort];
    return def ? [asc(table[def.key]), ...tiebreak] : tiebreak;
  }
  const field = own(d.fields, name);
  if (!field) throw argErr(`cannot sort by field[${name}]: not a field of ${d.name}`);
  bind.shape(`sort ${name} ${dir}`);
  return [dir === 'desc' ? desc(table[field.key]) : asc(table[field.key]), ...tiebreak];
}

/**
 * `SELECT * FROM table t0 WHERE <tail>` decoded into the objects drizzle's select returns (`decodeRow`), without
 * drizzle's select mapping (most of the server's CPU for a page of inventories).
 */
export async function selectRows<T extends PgTable>(db: Tx, table: T, tail: SQL): Promise<T['$inferSelect'][]> {
  const raw = await rawRows<Record<string, unknown>>(db, sql`SELECT * FROM ${sql.identifier(getTableName(table))} ${sql.identifier('t0')} WHERE ${tail}`);
  return raw.map((r) => decodeRow(table, r));
}

/**
 * Field definitions straight from a drizzle table: every column, typed from its column type, named as its
 * property on the table (which is the inventory field name). `exclude` hides columns such as password hashes.
 */
export function fieldsFromTable(table: PgTable, opts: { exclude?: string[]; rename?: Record<string, string> } = {}): Record<string, FieldDef> {
  const out: Record<string, FieldDef> = {};
  for (const [key, col] of Object.entries(getTableColumns(table))) {
    if (opts.exclude?.includes(key)) continue;
    const type: FieldType =
      col.dataType === 'number' || col.dataType === 'bigint' ? 'number' : col.dataType === 'boolean' ? 'boolean' : col.dataType === 'date' ? 'date' : 'string';
    if (col.dataType === 'json' || col.dataType === 'array') continue;
    const max = col.columnType === 'PgInteger' || col.columnType === 'PgSerial' ? 2 ** 31 - 1 : col.columnType === 'PgSmallInt' ? 2 ** 15 - 1 : undefined;
    out[opts.rename?.[key] ?? key] = max ? { key, type, max } : { key, type };
  }
  return out;
}

/**
 * The request as the engine sees it, normalized: conditions sorted (they are ANDed), defaults filled in, the two
 * sort syntaxes folded into one: the reply cache's key (db/perf/reply-cache.ts stores replies by it).
 */
export function cacheKey(inventory: string, p: QueryParams & { groupBy?: unknown }): string {
  const q = ([] as string[])
    .concat(p.q ?? [])
    .map(String)
    .sort();
  let sort = '';
  if (p.sort) sort = p.sort.trim().startsWith('-') ? `-${p.sort.trim().slice(1)}` : `+${p.sort.trim().replace(/^\+/, '')}`;
  else if (p.sortBy) sort = `${p.sortDirection === 'desc' ? '-' : '+'}${p.sortBy}`;
  return JSON.stringify([
    inventory,
    q,
    p.limit ?? 1000,
    p.start ?? 0,
    Boolean(p.count),
    Boolean(p.replyWithCount),
    sort,
    p.fields ?? '',
    p.groupBy ?? null,
    p.accountScope ?? '',
  ]);
}

// System and user tags (upstream's TagManager), in one place: the registry of known system tags per resource type
// (format `literal::{token}::…`, optional validator), the check every creating call's `systemTags` pass, the tags
// written with the resource a creating call made, the deletion of a resource's tags with the resource (one trigger
// function on every tagged table: whatever path deletes a row — an API, a cascade, a foreign key, the GC — its
// tags go in the same transaction), and the `__systemTag__`/`__userTag__` conditions of every Query API.
import { getTableName, sql, type SQL } from 'drizzle-orm';
import type { PgTable } from 'drizzle-orm/pg-core';
import { rows, type Db, type Database, type Tx } from '../db/index.js';
import { systemTags, userTags } from '../db/schema/index.js';
import { argErr } from './errors.js';
import type { Handler } from './handlers.js';
import { newUuid } from './ids.js';
import { resourceTypeOf, type Permissions } from './permissions.js';
import { compareColumn, type QueryEngine, type SpecialCondition } from './query.js';
import type { SpecOperation } from './spec.js';

export type TagTokens = Record<string, string>;

export interface SystemTagDefinition {
  /** Upstream's resource type (`VmInstanceVO`); the tag applies to every resource stored in the same table. */
  resourceType: string;
  /** Upstream's format: `hostname::{hostname}`, `staticIp::{l3NetworkUuid}::{staticIp}`, `capability:liveSnapshot`. */
  format: string;
  /**
   * Checks a tag of this format (throw an ApiError to refuse it). `resourceUuid` is absent while the resource is
   * being created (then `msg` is the creating call's message).
   */
  validate?(tokens: TagTokens, ctx: { tag: string; resourceUuid?: string; msg?: Record<string, unknown> }): Promise<void>;
}

interface CompiledTag extends SystemTagDefinition {
  re: RegExp;
  tokenNames: string[];
}

/** Upstream's subclass resource types, stored in their parent's table. */
const SUBCLASS_TYPES: Record<string, string> = {
  ApplianceVmVO: 'VmInstanceVO',
  KVMHostVO: 'HostVO',
  SimulatorHostVO: 'HostVO',
  SftpBackupStorageVO: 'BackupStorageVO',
  SimulatorBackupStorageVO: 'BackupStorageVO',
  LocalStoragePrimaryStorageVO: 'PrimaryStorageVO',
  SimulatorPrimaryStorageVO: 'PrimaryStorageVO',
  L2VlanNetworkVO: 'L2NetworkVO',
};

const TAG_TABLES: string[] = [getTableName(systemTags), getTableName(userTags)];
const TRIGGER_FUNCTION = 'zstack_delete_resource_tags';

function compile(def: SystemTagDefinition): CompiledTag {
  const tokenNames: string[] = [];
  const body = def.format
    .split(/(\{[A-Za-z0-9_]+\})/)
    .map((part) => {
      const m = /^\{([A-Za-z0-9_]+)\}$/.exec(part);
      if (!m) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      tokenNames.push(m[1]);
      return '(.+?)';
    })
    .join('');
  return { ...def, re: new RegExp(`^${body}$`, 's'), tokenNames };
}

export class TagService {
  private defs: CompiledTag[] = [];
  /** Resource type → its table (every inventory with a uuid and a query descriptor). */
  private tables = new Map<string, PgTable>();

  private db: Db;

  constructor(
    private database: Database,
    private query: QueryEngine,
    private doc: Record<string, any>,
  ) {
    this.db = database.db;
  }

  /** A known system tag (upstream's `@TagDefinition` fields). */
  define(def: SystemTagDefinition): void {
    this.defs.push(compile(def));
  }

  /** The tokens of `tag` when it has `format` (`{token}` parts), else undefined. */
  tokensOf(format: string, tag: string): TagTokens | undefined {
    const def = this.defs.find((d) => d.format === format) ?? compile({ resourceType: '', format });
    const m = def.re.exec(tag);
    if (!m) return undefined;
    return Object.fromEntries(def.tokenNames.map((n, i) => [n, m[i + 1]]));
  }

  /** The tags of `format` among `tags`, parsed. */
  find(format: string, tags: readonly string[] | undefined): TagTokens[] {
    return (tags ?? []).flatMap((t) => {
      const tokens = this.tokensOf(format, t);
      return tokens ? [tokens] : [];
    });
  }

  /** `format` with its tokens filled in. */
  static instantiate(format: string, tokens: TagTokens): string {
    return format.replace(/\{([A-Za-z0-9_]+)\}/g, (_, n: string) => tokens[n] ?? `{${n}}`);
  }

  /** The table of a resource type (undefined: not a resource type of the tag system). */
  tableOf(resourceType: string): PgTable | undefined {
    this.learnResourceTypes();
    return this.tables.get(SUBCLASS_TYPES[resourceType] ?? resourceType);
  }

  resourceTypes(): string[] {
    this.learnResourceTypes();
    return [...this.tables.keys(), ...Object.keys(SUBCLASS_TYPES)].sort();
  }

  private learnResourceTypes(): void {
    if (this.tables.size) return;
    for (const [name, schema] of Object.entries(this.doc.components.schemas as Record<string, any>)) {
      if (!schema['x-zstack-inventory'] || !this.query.has(name)) continue;
      const d = this.query.descriptor(name);
      const table = getTableName(d.table);
      if (!d.fields.uuid || TAG_TABLES.includes(table)) continue;
      this.tables.set(resourceTypeOf(name), d.table);
    }
  }

  /**
   * Upstream's check of system tags: each must match a system tag known for the resource type (else SYS.1007
   * "no system tag matches …"), and passes that tag's validator.
   */
  async validateSystemTags(resourceType: string, tags: readonly string[], ctx: { resourceUuid?: string; msg?: Record<string, unknown> }): Promise<void> {
    const table = this.tableOf(resourceType);
    for (const tag of tags) {
      const def = this.defs.find((d) => this.tableOf(d.resourceType) === table && d.re.test(tag));
      if (!def) throw argErr(`no system tag matches ${tag} (resource type ${resourceType})`);
      await def.validate?.(this.tokensOf(def.format, tag)!, { ...ctx, tag });
    }
  }

  /** Writes tags of one resource; a tag it already has is not written twice (upstream's isTagExisting). */
  async create(
    tx: Tx,
    resource: { uuid: string; type: string },
    tags: { systemTags?: readonly string[]; userTags?: readonly string[]; inherent?: boolean },
  ): Promise<{ systemTags: Array<typeof systemTags.$inferSelect>; userTags: Array<typeof userTags.$inferSelect> }> {
    const out = { systemTags: [] as Array<typeof systemTags.$inferSelect>, userTags: [] as Array<typeof userTags.$inferSelect> };
    for (const [kind, table, list] of [
      ['systemTags', 'system_tags', tags.systemTags],
      ['userTags', 'user_tags', tags.userTags],
    ] as const) {
      const unique = [...new Set(list ?? [])];
      if (!unique.length) continue;
      const inherent = kind === 'systemTags' ? sql`, inherent` : sql``;
      const inherentValue = kind === 'systemTags' ? sql`, ${tags.inherent ?? false}` : sql``;
      const written = await rows<Record<string, unknown>>(
        tx,
        sql`INSERT INTO ${sql.identifier(table)} (uuid, resource_uuid, resource_type, tag${inherent})
            SELECT x.uuid, ${resource.uuid}, ${resource.type}, x.tag${inherentValue}
              FROM unnest(${sql.param(unique.map(() => newUuid()))}::text[], ${sql.param(unique)}::text[]) AS x(uuid, tag)
             WHERE NOT EXISTS (SELECT 1 FROM ${sql.identifier(table)} t WHERE t.resource_uuid = ${resource.uuid} AND t.tag = x.tag)
            RETURNING *`,
      );
      out[kind] = written.map((r) => tagRow(r)) as never;
    }
    return out;
  }

  async deleteTagsOf(resourceUuids: string[]): Promise<void> {
    for (const table of TAG_TABLES)
      await this.db.execute(sql`DELETE FROM ${sql.identifier(table)} WHERE resource_uuid = ANY(${sql.param(resourceUuids)}::text[])`);
  }

  /**
   * Creating operations (`x-zstack.create`) with tags: their `systemTags` checked before the work (for the resource
   * type of the reply's inventory), and both lists written with the resource it creates.
   * Looked up at each call, as `Permissions.withOwnership` does.
   */
  withTags(handlers: Map<string, Handler<any>>, operations: SpecOperation[], permissions: Permissions): Map<string, Handler<any>> {
    const creates = new Map<string, SpecOperation>(operations.filter((op) => op.x.create).map((op) => [op.operationId, op]));
    const wrapped = new WeakMap<Handler<any>, Handler<any>>();
    const wrap = (op: SpecOperation, h: Handler<any>): Handler<any> => {
      const type = resourceTypeOf(permissions.replyInventory(op) ?? '');
      return {
        check: async (msg, call) => {
          // The new resource's uuid is chosen before the checks, which may prepare the creation with it.
          if (msg.systemTags?.length || msg.userTags?.length) (msg as { resourceUuid?: string }).resourceUuid ??= newUuid();
          const checked = await h.check?.(msg, call);
          if (msg.systemTags?.length) await this.validateSystemTags(type, msg.systemTags, { msg });
          return checked;
        },
        // Whatever else `run` is given (what the check found) goes through. The tags are written before the work,
        // under the uuid the new resource will have (`resourceUuid`, chosen here when the caller did not), so the
        // creation itself sees them (a VM's `hostname::` reaches its DHCP entry while it starts); a failed creation
        // takes them back.
        run: async (msg, call, ...rest: unknown[]) => {
          const run = () => (h.run as (...a: unknown[]) => Promise<Awaited<ReturnType<Handler<any>['run']>>>).call(h, msg, call, ...rest);
          if (!msg.systemTags?.length && !msg.userTags?.length) return run();
          const fields = msg as { resourceUuid?: string };
          const uuid = (fields.resourceUuid ??= newUuid());
          await this.create(this.db, { uuid, type }, msg);
          let result;
          try {
            result = await run();
          } catch (e) {
            await this.deleteTagsOf([uuid]);
            throw e;
          }
          // A creation that did not take the uuid it was given: its tags follow it.
          const [made] = permissions.createdBy(op, result).filter((r) => !r.parent);
          if (made && made.uuid !== uuid) {
            for (const table of TAG_TABLES)
              await this.db.execute(sql`UPDATE ${sql.identifier(table)} SET resource_uuid = ${made.uuid} WHERE resource_uuid = ${uuid}`);
          }
          return result;
        },
      };
    };
    return new (class extends Map<string, Handler<any>> {
      override get(id: string) {
        const h = handlers.get(id);
        const op = creates.get(id);
        if (!h || !op) return h;
        let w = wrapped.get(h);
        if (!w) wrapped.set(h, (w = wrap(op, h)));
        return w;
      }
      override has(id: string) {
        return handlers.has(id);
      }
    })();
  }

  /** `__systemTag__` and `__userTag__` on every Query API (upstream's TagSubQueryExtension). */
  registerConditions(): void {
    this.query.registerCondition('__systemTag__', tagCondition('system_tags'));
    this.query.registerCondition('__userTag__', tagCondition('user_tags'));
  }

  /**
   * The deletion trigger on every tagged table (created when missing, so a table added later gets it at the next
   * start), and the change tracker told that a DELETE there also writes the tag tables (for the reply cache).
   */
  async installDeletionTriggers(): Promise<void> {
    const database = this.database;
    this.learnResourceTypes();
    const tables = [...new Set([...this.tables.values()].map((t) => getTableName(t)))].sort();
    for (const t of tables) database.changes.deletionAlsoWrites(t, TAG_TABLES);
    const have = await rows<{ table: string }>(
      this.db,
      sql`SELECT c.relname AS table FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid WHERE g.tgname = 'zstack_tags_gc' AND NOT g.tgisinternal`,
    );
    const missing = tables.filter((t) => !have.some((h) => h.table === t));
    if (!missing.length) return;
    await this.db.transaction(async (tx) => {
      // Management nodes starting together take turns (DDL on the same objects).
      await tx.execute(sql`SELECT pg_advisory_xact_lock(727273)`);
      await tx.execute(
        sql.raw(`CREATE OR REPLACE FUNCTION ${TRIGGER_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM system_tags WHERE resource_uuid IN (SELECT uuid FROM gone);
  DELETE FROM user_tags WHERE resource_uuid IN (SELECT uuid FROM gone);
  RETURN NULL;
END $$`),
      );
      for (const t of missing) {
        await tx.execute(
          sql.raw(
            `CREATE OR REPLACE TRIGGER zstack_tags_gc AFTER DELETE ON "${t}" REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION ${TRIGGER_FUNCTION}()`,
          ),
        );
      }
    });
  }

  /** Tables whose rows are resources (the deletion trigger is on each). */
  taggedTables(): string[] {
    this.learnResourceTypes();
    return [...new Set([...this.tables.values()].map((t) => getTableName(t)))].sort();
  }
}

/** A tag row from raw SQL (snake_case) in drizzle's shape. */
function tagRow(r: Record<string, unknown>) {
  return {
    uuid: r.uuid as string,
    resourceUuid: r.resource_uuid as string,
    resourceType: r.resource_type as string,
    tag: r.tag as string,
    type: r.type as string,
    ...(r.inherent !== undefined ? { inherent: r.inherent as boolean } : {}),
    createDate: new Date(r.create_date as string),
    lastOpDate: new Date(r.last_op_date as string),
  };
}

// Upstream: =, >, >=, <, <=, in, like, not null → `uuid IN (tags matching)`; !=, not in, not like, is null →
// `uuid NOT IN (tags matching the positive form)`.
const NEGATED: Record<string, string> = { '!=': '=', '!?=': '?=', '!~=': '~=', 'is null': 'not null' };

function tagCondition(table: 'system_tags' | 'user_tags'): SpecialCondition {
  return ({ d, table: t, condition, bind }) => {
    const uuid = d.fields.uuid;
    if (!uuid) throw argErr(`${d.name} has no tags`);
    const positive = NEGATED[condition.op];
    const op = (positive ?? condition.op) as typeof condition.op;
    const match: SQL = op === 'not null' ? sql`TRUE` : compareColumn(sql`g.tag`, { type: 'string' }, { ...condition, op }, '__tag__', bind);
    const inner = sql`SELECT g.resource_uuid FROM ${sql.identifier(table)} g WHERE ${match}`;
    return positive ? sql`${t[uuid.key]} NOT IN (${inner})` : sql`${t[uuid.key]} IN (${inner})`;
  };
}

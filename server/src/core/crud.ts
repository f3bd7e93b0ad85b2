// The three handler shapes most domains share, built once: Update<X> (the fields the message gives, and lastOpDate,
// on the resource's row), Change<X>State (a state event mapped to the state column) and Delete<X> (the deletion
// cascade from the resource's node). Each builder returns a handler of the operation it is keyed by in
// defineHandlers; a handler that does more than its shape (further checks, side effects, events) is written by hand.
//
// An unknown uuid: `SYS.1003 invalid field[uuid], resource[uuid:…, type:<entity>] not found`, answered by the check
// before the 202 (or, with `check: false`, by the run: the job fails with it); Delete of an unknown uuid succeeds.
import { eq } from 'drizzle-orm';
import type { PgColumn, PgTable, PgUpdateSetSource } from 'drizzle-orm/pg-core';
import type { OperationId } from '@zstack-ts/openapi/helpers';
import type { DeleteMode } from './cascade.js';
import type { DomainContext } from './domain.js';
import { argErr, notFound } from './errors.js';
import type { Handler, Message, Reply } from './handlers.js';

/** A resource table: rows keyed by `uuid`, with the `lastOpDate` every change sets. */
export type ResourceTable = PgTable & { uuid: PgColumn; lastOpDate: PgColumn };
type Row<T extends ResourceTable> = T['$inferSelect'];
type Insert<T extends ResourceTable> = T['$inferInsert'];

/** What a reply's `inventory` is. */
type InventoryOf<K extends OperationId> = Reply<K> extends { inventory?: infer I } ? I : never;
/** The operations addressing one resource by `uuid` and replying with its inventory. */
type ByUuid = { [K in OperationId]: Message<K> extends { uuid: string } ? ([InventoryOf<K>] extends [never] ? never : K) : never }[OperationId];
/** The operations addressing one resource by `uuid` with a `stateEvent`, replying with its inventory. */
type StateChange = { [K in ByUuid]: Message<K> extends { stateEvent: string } ? K : never }[ByUuid];
/** The operations deleting one resource by `uuid` (in a delete mode) and replying `{}`. */
type Deletion = {
  [K in OperationId]: Message<K> extends { uuid: string; deleteMode?: DeleteMode } ? ({} extends Reply<K> ? K : never) : never;
}[OperationId];

/** Message fields that are columns of the table taking the field's values (the uuid addresses the row: no field). */
export type FieldOf<K extends OperationId, T extends ResourceTable> = {
  [F in keyof Message<K> & keyof Insert<T>]-?: F extends 'uuid' ? never : Exclude<Message<K>[F], undefined> extends Insert<T>[F] ? F : never;
}[keyof Message<K> & keyof Insert<T>];

type Inventory<K extends OperationId, T extends ResourceTable> = (row: Row<T>) => InventoryOf<K> | Promise<InventoryOf<K>>;
type Db = Pick<DomainContext, 'db'>;

interface RowSpec<K extends OperationId, T extends ResourceTable> {
  table: T;
  /** The type the 404 names (`ZoneVO`). */
  entity: string;
  /** The reply's inventory of the updated row. */
  inventory: Inventory<K, T>;
  /** `false`: nothing is looked up before the 202 (an unknown uuid fails the run). Default: the check answers it. */
  check?: boolean;
}

export interface UpdateSpec<K extends OperationId, T extends ResourceTable, F extends keyof Insert<T>> extends RowSpec<K, T> {
  /** The message fields written when given (`undefined` = unchanged). */
  fields: readonly F[];
}

type StateOf<K extends OperationId> = Message<K> extends { stateEvent: infer E extends string } ? E : never;
type StateTable = ResourceTable & { state: PgColumn };
/** What the table's state column takes. */
type StateValue<T extends StateTable> = Insert<T> extends { state?: infer S } ? S : never;
/** Each state event → the state it leads to. */
type Events<K extends OperationId, T extends StateTable> = { readonly [E in StateOf<K>]: StateValue<T> };
/** `enable` → Enabled, `disable` → Disabled: the default of operations with no other events. */
const ENABLE_DISABLE = { enable: 'Enabled', disable: 'Disabled' } as const;

export type ChangeStateSpec<K extends OperationId, T extends StateTable> = RowSpec<K, T> &
  ([StateOf<K>] extends [keyof typeof ENABLE_DISABLE] ? { events?: Events<K, T> } : { events: Events<K, T> });

export interface DeleteSpec {
  /** The cascade node deleting the resource and what lives under it. */
  node: string;
  /** A uuid with no row here answers `{}` without running the cascade. */
  onlyIfIn?: ResourceTable;
}

const uuidOf = (msg: unknown) => (msg as { uuid: string }).uuid;

async function exists({ db }: Db, table: ResourceTable, uuid: string): Promise<boolean> {
  const [row] = await db
    .select({ uuid: table.uuid })
    .from(table as PgTable)
    .where(eq(table.uuid, uuid));
  return row !== undefined;
}

/** Writes `set` and lastOpDate on the row of `uuid`; replies with its inventory (or the 404 when there is no row). */
async function writeRow<K extends OperationId, T extends ResourceTable>(
  { db }: Db,
  spec: RowSpec<K, T>,
  uuid: string,
  set: Partial<Insert<T>>,
): Promise<Reply<K>> {
  const [row] = (await db
    .update(spec.table)
    .set({ ...set, lastOpDate: new Date() } as PgUpdateSetSource<T>)
    .where(eq(spec.table.uuid, uuid))
    .returning()) as Row<T>[];
  if (!row) throw notFound(spec.entity, uuid);
  const reply: { inventory: InventoryOf<K> } = { inventory: await spec.inventory(row) };
  return reply as unknown as Reply<K>;
}

const checkOf = <K extends OperationId, T extends ResourceTable>(app: Db, spec: RowSpec<K, T>): Pick<Handler<K, void>, 'check'> =>
  spec.check === false
    ? {}
    : {
        async check(msg) {
          if (!(await exists(app, spec.table, uuidOf(msg)))) throw notFound(spec.entity, uuidOf(msg));
        },
      };

/** Update<X>: the given `fields` and lastOpDate on the row; replies with its inventory. */
export function updateHandler<K extends OperationId, T extends ResourceTable, F extends FieldOf<K, T>>(
  app: Db,
  spec: K extends ByUuid ? UpdateSpec<K, T, F> : never,
): Handler<K, void> {
  // (The conditional parameter type refuses an operation of another shape; inside, it is the spec.)
  const s = spec as UpdateSpec<K, T, F>;
  return {
    ...checkOf(app, s),
    run(msg) {
      const set: Partial<Insert<T>> = {};
      for (const f of s.fields) {
        const value = (msg as Record<F, Insert<T>[F] | undefined>)[f];
        if (value !== undefined) set[f] = value;
      }
      return writeRow(app, s, uuidOf(msg), set);
    },
  };
}

/** Change<X>State: the state the message's `stateEvent` leads to (default: enable/disable) and lastOpDate. */
export function changeStateHandler<K extends OperationId, T extends StateTable>(
  app: Db,
  spec: K extends StateChange ? ChangeStateSpec<K, T> : never,
): Handler<K, void> {
  const s = spec as RowSpec<K, T> & { events?: Events<K, T> };
  const events = (s.events ?? ENABLE_DISABLE) as Readonly<Record<string, StateValue<T>>>;
  return {
    ...checkOf(app, s),
    run(msg) {
      const { stateEvent } = msg as unknown as { stateEvent: string };
      const state = events[stateEvent];
      // (The spec's enum has refused other events already.)
      if (state === undefined) throw argErr(`unknown state event[${stateEvent}]`);
      return writeRow(app, s, uuidOf(msg), { state } as Partial<Insert<T>>);
    },
  };
}

/** Delete<X>: the deletion cascade from `node` in the message's mode (default Permissive); replies `{}`. */
export function deleteHandler<K extends OperationId>(
  app: Pick<DomainContext, 'db' | 'cascade'>,
  spec: K extends Deletion ? DeleteSpec : never,
): Handler<K, void> {
  return {
    async run(msg) {
      const { uuid, deleteMode } = msg as unknown as { uuid: string; deleteMode?: DeleteMode };
      if (!spec.onlyIfIn || (await exists(app, spec.onlyIfIn, uuid))) await app.cascade.delete(spec.node, [uuid], deleteMode ?? 'Permissive');
      return {} as Reply<K>;
    },
  };
}

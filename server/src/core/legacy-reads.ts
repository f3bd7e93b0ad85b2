// 1.1's legacy reads (APIGet<X>Msg, APIList<X>Msg, APISearch<X>Msg): one handler for every operation the spec
// generates from `x-zstack-legacy-reads` (openapi/scripts/legacy-reads.mjs). Each is answered by the query engine
// with its inventory's descriptor, so visibility is the Query API's: the permission check scopes a Normal
// account's message (`accountScope`, core/permissions.ts) exactly as it scopes a query.
import type { Tx } from '../db/index.js';
import { argErr, notFound } from './errors.js';
import type { Handler, Handlers } from './handlers.js';
import { parseCondition, type Condition, type QueryEngine, type QueryParams } from './query.js';
import type { SpecOperation } from './spec.js';

/** The most inventories one legacy read returns (1.1's default length is Integer.MAX_VALUE). */
export const LEGACY_READ_MAX = 100_000;

/** 1.1's search operators (SearchOp, the AND_* half) → the query engine's. The OR_* half is not served. */
const SEARCH_OPS: Record<string, Condition['op']> = {
  AND_EQ: '=',
  AND_NOT_EQ: '!=',
  AND_GT: '>',
  AND_GTE: '>=',
  AND_LT: '<',
  AND_LTE: '<=',
  AND_IN: '?=',
  AND_NOT_IN: '!?=',
};

/** Gson (1.1's JSON) leaves null members out. */
function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (!value || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== null && v !== undefined)
      .map(([k, v]) => [k, withoutNulls(v)]),
  );
}

interface Triple {
  name: string;
  op: string;
  val?: string;
  vals?: string[];
}

interface LegacyMessage {
  uuid?: string;
  length?: number;
  offset?: number;
  uuids?: string[];
  fields?: string[];
  nameOpValueTriples?: Triple[];
  nameOpListTriples?: Triple[];
  start?: number;
  size?: number;
  inventoryUuid?: string;
  accountScope?: string;
}

function tripleCondition(t: Triple, list: boolean): Condition {
  const op = SEARCH_OPS[t.op];
  if (!op) throw argErr(`invalid search op[${t.op}], valid ops are ${Object.keys(SEARCH_OPS).join(', ')}`);
  const values = list ? (t.vals ?? []) : [t.val ?? ''];
  if ((op === '?=' || op === '!?=') && values.some((v) => v.includes(','))) {
    throw argErr(`field[${list ? 'nameOpListTriples' : 'nameOpValueTriples'}]: values of ${t.op} cannot contain a comma`);
  }
  if (list && values.length === 0) throw argErr(`field[nameOpListTriples]: ${t.name} ${t.op} has no vals`);
  return { path: t.name.split('.'), op, value: values.join(',') };
}

/** The handlers of every legacy read operation of the spec, keyed by operationId. */
export function legacyReadHandlers(operations: SpecOperation[], query: QueryEngine, db: Tx): Handlers {
  const handlers: Record<string, Handler<never>> = {};
  for (const op of operations) {
    const legacy = op.x.legacy;
    if (!legacy) continue;
    const fixed = legacy.where.map(parseCondition);
    const type = legacy.inventory.replace(/Inventory$/, '');
    const read = (msg: LegacyMessage, params: QueryParams) =>
      query.query(db, legacy.inventory, { ...params, conditions: [...fixed, ...(params.conditions ?? [])], accountScope: msg.accountScope });
    const run = async (msg: LegacyMessage): Promise<object> => {
      if (legacy.verb === 'get') {
        const { inventories = [] } = await read(msg, { conditions: [{ path: ['uuid'], op: '=', value: msg.uuid! }], limit: 1 });
        if (!inventories.length) throw notFound(type, msg.uuid!);
        return { inventory: JSON.stringify(withoutNulls(inventories[0])) };
      }
      if (legacy.verb === 'list') {
        const length = msg.length === undefined || msg.length < 0 ? LEGACY_READ_MAX : Math.min(msg.length, LEGACY_READ_MAX);
        const conditions: Condition[] = msg.uuids?.length ? [{ path: ['uuid'], op: '?=', value: msg.uuids.join(',') }] : [];
        // length 0 is "none" (a LIMIT of 0), not the engine's default page.
        if (length === 0) return { inventories: [] };
        const { inventories = [] } = await read(msg, { conditions, start: msg.offset, limit: length });
        return { inventories };
      }
      const conditions = [
        ...(msg.nameOpValueTriples ?? []).map((t) => tripleCondition(t, false)),
        ...(msg.nameOpListTriples ?? []).map((t) => tripleCondition(t, true)),
        ...(msg.inventoryUuid ? [{ path: ['uuid'], op: '=' as const, value: msg.inventoryUuid }] : []),
      ];
      const limit = msg.size ? Math.min(msg.size, LEGACY_READ_MAX) : LEGACY_READ_MAX;
      const { inventories = [] } = await read(msg, { conditions, start: msg.start, limit, fields: msg.fields?.length ? msg.fields.join(',') : undefined });
      return { content: JSON.stringify(withoutNulls(inventories)) };
    };
    handlers[op.operationId] = { run: (msg) => run(msg as LegacyMessage) as never };
  }
  return handlers as Handlers;
}

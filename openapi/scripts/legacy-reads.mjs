// 1.1's legacy read family (APIGetMessage, APIListMessage, APISearchMessage, all @Deprecated in 1.1) as generated
// operations: a domain file lists them under a top-level `x-zstack-legacy-reads`, next to the Query API that
// answers them, and this expands each message class into a full operation before the conventions run — so the
// RPC table, the SDK, the docs and the permission table pick them up like any other operation.
//
//   x-zstack-legacy-reads:
//     - query: QueryZone                      # the Query API (its inventory, permission, tags) that answers them
//       where: [type=L2VlanNetwork]           # optional: conditions always applied (a subclass's reads)
//       messages: [org.zstack.header.zone.APIGetZoneMsg, org.zstack.header.zone.APIListZonesMsg, …]
//
// The verb is the class name's (`API<Get|List|Search><Name>Msg`), the operationId `<Verb><Name>`. House REST form
// (no upstream 2.0 path exists): `PUT /zstack/v1/legacy/<the query's path below /zstack/v1>/actions` with
// `{"<operationId in lowerCamel>": {<the 1.1 message's fields>}}` — under `/legacy/`, so never an upstream URL.
// Replies are 1.1's: Get `{inventory: "<JSON string>"}`, List `{inventories: [...]}`, Search `{content: "<JSON
// string of the inventories>"}`. The server answers all of them with one handler (server/src/core/legacy-reads.ts).

const ref = (kind, name) => ({ $ref: `#/components/${kind}/${name}` });
const lowerFirst = (s) => s[0].toLowerCase() + s.slice(1);

/** 1.1's search operators we serve (the AND_* family; the OR_* family is refused, see the README). */
export const SEARCH_OPS = ['AND_EQ', 'AND_NOT_EQ', 'AND_GT', 'AND_GTE', 'AND_LT', 'AND_LTE', 'AND_IN', 'AND_NOT_IN'];

const FIELD_NAME = { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)*$', maxLength: 255 };

/** The request fields of each base class (1.1: APIGetMessage, APIListMessage, APISearchMessage). */
const REQUEST = {
  Get: () => ({
    type: 'object',
    additionalProperties: false,
    required: ['uuid'],
    properties: { uuid: ref('schemas', 'Uuid') },
  }),
  List: () => ({
    type: 'object',
    additionalProperties: false,
    properties: {
      length: { type: 'integer', minimum: -1, maximum: 2147483647, description: 'How many (default and -1: all, up to 100,000).' },
      offset: { type: 'integer', minimum: 0, maximum: 2147483647, description: 'How many to skip (default 0).' },
      uuids: { type: 'array', items: ref('schemas', 'Uuid'), maxItems: 1000, description: 'Only these (default: all).' },
    },
  }),
  Search: () => ({
    type: 'object',
    additionalProperties: false,
    properties: {
      fields: { type: 'array', items: FIELD_NAME, maxItems: 100, description: 'Only these fields of each inventory.' },
      nameOpValueTriples: {
        type: 'array',
        maxItems: 100,
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['name', 'op'],
          properties: { name: FIELD_NAME, op: { type: 'string', enum: SEARCH_OPS }, val: { type: 'string', maxLength: 2048 } },
        },
      },
      nameOpListTriples: {
        type: 'array',
        maxItems: 100,
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['name', 'op'],
          properties: {
            name: FIELD_NAME,
            op: { type: 'string', enum: SEARCH_OPS },
            vals: { type: 'array', items: { type: 'string', maxLength: 2048 }, maxItems: 1000 },
          },
        },
      },
      start: { type: 'integer', minimum: 0, maximum: 2147483647 },
      size: { type: 'integer', minimum: 0, maximum: 2147483647, description: 'How many (0, the default: all, up to 100,000).' },
      inventoryUuid: ref('schemas', 'Uuid'),
    },
  }),
};

const EXAMPLE = {
  Get: () => ({ uuid: '1a82c2691978476fa6cefa36bb9d4bfd' }),
  List: () => ({ offset: 0, length: 10 }),
  Search: () => ({ nameOpValueTriples: [{ name: 'name', op: 'AND_EQ', val: 'name1' }], start: 0, size: 10 }),
};

const DOING = {
  Get: 'by uuid; the inventory comes back as a JSON string (`inventory`), as in 1.1',
  List: 'by uuids or a page (`offset`, `length`); reply `inventories`',
  Search: "by 1.1's search triples (AND_* operators); the inventories come back as one JSON string (`content`), as in 1.1",
};

function replyOf(doc, verb, inventory, queryReply) {
  if (verb === 'List') return queryReply(doc, inventory, true);
  const key = verb === 'Get' ? 'inventory' : 'content';
  const name = verb === 'Get' ? 'LegacyGetReply' : 'LegacySearchReply';
  doc.components.schemas[name] ??= {
    type: 'object',
    required: [key, 'success'],
    properties: {
      [key]: { type: 'string', description: verb === 'Get' ? 'The inventory, as a JSON string.' : 'The inventories (a JSON array), as a JSON string.' },
      success: { type: 'boolean', const: true },
    },
  };
  return name;
}

/**
 * Adds the operations of every `x-zstack-legacy-reads` table to `doc.paths`. `tables` = [{file, entries}];
 * `queryReply(doc, inventory, true)` is the conventions' query reply component.
 */
export function expandLegacyReads(doc, tables, queryReply) {
  const queries = new Map();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const op of Object.values(item)) if (op?.['x-zstack']?.query) queries.set(op.operationId, { path, op });
  }
  for (const { file, entries } of tables) {
    if (!Array.isArray(entries)) throw new Error(`${file}: x-zstack-legacy-reads must be a list`);
    for (const entry of entries) {
      const where = `${file}: x-zstack-legacy-reads ${entry?.query}`;
      const found = queries.get(entry?.query);
      if (!found) throw new Error(`${where}: no Query operation named ${entry?.query}`);
      for (const k of Object.keys(entry)) if (!['query', 'where', 'messages'].includes(k)) throw new Error(`${where}: unknown key ${k}`);
      const conditions = entry.where ?? [];
      if (!Array.isArray(conditions) || conditions.some((c) => typeof c !== 'string')) throw new Error(`${where}: where must be a list of conditions`);
      const { path, op: query } = found;
      const inventory = query['x-zstack'].query;
      const base = `/zstack/v1/legacy${path.slice('/zstack/v1'.length)}/actions`;
      for (const message of entry.messages ?? []) {
        const m = /^[a-z][\w.]*\.API(Get|List|Search)(\w+)Msg$/.exec(message);
        if (!m) throw new Error(`${where}: ${message} is not an API<Get|List|Search><Name>Msg class`);
        const [, verb, name] = m;
        const operationId = `${verb}${name}`;
        const action = lowerFirst(operationId);
        const key = `${base}#${action}`;
        if (doc.paths[key]) throw new Error(`${where}: ${message} is listed twice`);
        const permission = query['x-zstack-permission'];
        doc.paths[key] = {
          put: {
            operationId,
            'x-zstack-message': message,
            tags: query.tags,
            summary: `${name}: ${verb} (1.1 legacy read)`,
            description: `1.1's \`${message.split('.').pop()}\`: reads ${inventory}s ${DOING[verb]}. Answered by ${entry.query}'s query engine (same visibility: an account sees what it owns or was shared)${conditions.length ? `, always with \`${conditions.join('`, `')}\`` : ''}; prefer ${entry.query}.`,
            'x-zstack-permission': { category: permission.category, adminOnly: permission.adminOnly },
            'x-zstack': { kind: 'sync', legacy: { verb: verb.toLowerCase(), inventory, where: conditions } },
            requestBody: { content: { 'application/json': { schema: REQUEST[verb](), example: { [action]: EXAMPLE[verb]() } } } },
            responses: {
              200: {
                description: `The ${inventory}${verb === 'Get' ? '' : 's'}.`,
                content: { 'application/json': { schema: ref('schemas', replyOf(doc, verb, inventory, queryReply)) } },
              },
            },
          },
        };
      }
    }
  }
}

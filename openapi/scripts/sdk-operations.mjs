// Renders the SDK's operation table, parameter lists and method signatures from the bundled spec:
//   OPERATIONS        how to call each API (method, path, kind, body key, timeout, parameter placement, reply inventory)
//   PARAMS            every parameter of every API with its JSON type (the CLI coerces `k=v` with it, completes names)
//   INVENTORY_FIELDS  the fields of each inventory, one level of joins included (`vmNics.ip`), for query completion
//   GeneratedMethods  one typed method per operation; `start<Op>` (job handle, no wait) for asynchronous APIs;
//                     `queryAll<Inventory>` (async iterator paging with start/limit) for Query APIs
const METHODS = ['get', 'post', 'put', 'delete', 'patch'];

export const methodName = (operationId) => operationId[0].toLowerCase() + operationId.slice(1);
export const startMethodName = (operationId) => `start${operationId}`;
export const queryAllMethodName = (operationId) => `queryAll${operationId.replace(/^Query/, '')}`;

const refName = (ref) => ref.split('/').pop();

function resolveParam(doc, p) {
  if (!p.$ref) return p;
  return doc.components.parameters[refName(p.$ref)];
}

/** Follows `$ref`s and folds `allOf`/`anyOf`/`oneOf` into one schema (properties merged), enough to know types. */
function resolveSchema(doc, schema, seen = new Set()) {
  if (!schema) return {};
  if (schema.$ref) {
    const name = refName(schema.$ref);
    if (seen.has(name)) return {};
    const { $ref, ...rest } = schema;
    return { ...resolveSchema(doc, doc.components.schemas[name], new Set([...seen, name])), ...rest, $ref: undefined, refName: name };
  }
  let out = { ...schema };
  for (const key of ['allOf', 'anyOf', 'oneOf']) {
    if (!schema[key]) continue;
    for (const part of schema[key]) {
      const r = resolveSchema(doc, part, seen);
      out = { ...r, ...out, properties: { ...(r.properties ?? {}), ...(out.properties ?? {}) } };
      if (!out.type && r.type) out.type = r.type;
    }
    delete out[key];
  }
  return out;
}

function typeOf(doc, schema) {
  const s = resolveSchema(doc, schema);
  let type = Array.isArray(s.type) ? s.type.find((t) => t !== 'null') : s.type;
  if (!type && s.const !== undefined) type = typeof s.const === 'number' ? 'number' : typeof s.const;
  if (!type && s.enum) type = typeof s.enum[0] === 'number' ? 'number' : 'string';
  if (!type && s.properties) type = 'object';
  return type ?? 'string';
}

function paramInfo(doc, name, where, schema, required, description) {
  const s = resolveSchema(doc, schema);
  const info = { name, in: where, type: typeOf(doc, s) };
  if (info.type === 'array') info.items = typeOf(doc, s.items);
  if (required) info.required = true;
  const values = s.enum ?? (info.type === 'array' ? resolveSchema(doc, s.items).enum : undefined);
  if (values) info.enum = values;
  const text = (description ?? s.description ?? '').split('\n')[0].trim();
  if (text) info.description = text;
  return info;
}

export function listOperations(doc) {
  const ops = [];
  for (const [key, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const z = op['x-zstack'];
      const params = (op.parameters ?? []).map((p) => resolveParam(doc, p));
      const body = z.bodyKey ? resolveSchema(doc, op.requestBody?.content?.['application/json']?.schema?.properties?.[z.bodyKey]) : undefined;
      const inventory = z.query ?? (z.reply && z.reply !== 'empty' ? z.reply : undefined);
      const info = {
        operationId: op.operationId,
        summary: op.summary,
        method: method.toUpperCase(),
        path: key.split('#')[0],
        kind: z.kind,
        bodyKey: z.bodyKey ?? null,
        timeout: z.timeout,
        public: Boolean(z.public),
        pathParams: params.filter((p) => p.in === 'path').map((p) => p.name),
        queryParams: params.filter((p) => p.in === 'query').map((p) => p.name),
      };
      if (inventory) info.inventory = inventory;
      if (z.create) info.create = true;
      // Where the secrets are (x-zstack-secret marks, published by conventions.mjs): the hooks and curl hide them.
      if (op['x-zstack-secrets']) info.secrets = op['x-zstack-secrets'];
      ops.push({
        ...info,
        params: [
          ...params.filter((p) => p.in === 'path' || p.in === 'query').map((p) => paramInfo(doc, p.name, p.in, p.schema, p.required, p.description)),
          ...Object.entries(body?.properties ?? {}).map(([name, s]) => paramInfo(doc, name, 'body', s, (body.required ?? []).includes(name))),
        ],
        requiredBody: (body?.required ?? []).length > 0,
      });
    }
  }
  ops.sort((a, b) => a.operationId.localeCompare(b.operationId));
  // An API whose reply inventory has a `progress` field can report it while its job runs (AddImage): the SDK
  // queries the resource it is creating through the Query API of that inventory.
  const queryOf = new Map(ops.filter((o) => o.kind === 'query').map((o) => [o.inventory, o.operationId]));
  for (const o of ops) {
    if (o.kind !== 'async' || !o.create || !o.inventory) continue;
    const inv = resolveSchema(doc, doc.components.schemas[o.inventory]);
    if (inv.properties?.progress && queryOf.has(o.inventory)) o.progressQuery = queryOf.get(o.inventory);
  }
  return ops;
}

/**
 * The queryable field names of an inventory plus `join.field` for inventories nested one level down (`vmNics.ip`).
 * Properties marked `x-zstack-queryable: false` are in replies but not in conditions (the server refuses them).
 */
function inventoryFields(doc, name) {
  const inv = resolveSchema(doc, doc.components.schemas[name]);
  const queryable = (props) => Object.entries(props ?? {}).filter(([, schema]) => schema?.['x-zstack-queryable'] !== false);
  const out = [];
  for (const [field, schema] of queryable(inv.properties)) {
    const s = resolveSchema(doc, schema);
    const nested = s.type === 'array' ? resolveSchema(doc, s.items) : s;
    if (nested.refName && doc.components.schemas[nested.refName]?.['x-zstack-inventory']) {
      for (const [sub] of queryable(nested.properties)) out.push(`${field}.${sub}`);
    } else out.push(field);
  }
  return out;
}

const TABLE_KEYS = [
  'summary',
  'method',
  'path',
  'kind',
  'bodyKey',
  'timeout',
  'public',
  'pathParams',
  'queryParams',
  'inventory',
  'create',
  'progressQuery',
  'secrets',
];

export function renderSdkOperations(doc) {
  const ops = listOperations(doc).filter((o) => o.kind !== 'poll');
  // Method names must never collide (e.g. `start<Op>` against an API really named `Start…`).
  const names = new Map();
  const claim = (name, by) => {
    if (names.has(name)) throw new Error(`SDK method ${name} of ${by} collides with ${names.get(name)}`);
    names.set(name, by);
  };
  for (const o of ops) claim(methodName(o.operationId), o.operationId);
  for (const o of ops) {
    if (o.kind === 'async') claim(startMethodName(o.operationId), `${o.operationId} (start form)`);
    if (o.kind === 'query') claim(queryAllMethodName(o.operationId), `${o.operationId} (queryAll form)`);
  }

  const table = ops
    .map((o) => `  ${o.operationId}: ${JSON.stringify(Object.fromEntries(TABLE_KEYS.filter((k) => o[k] !== undefined).map((k) => [k, o[k]])))},`)
    .join('\n');
  const params = ops.map((o) => `  ${o.operationId}: ${JSON.stringify(o.params)},`).join('\n');
  const inventories = [...new Set(ops.map((o) => o.inventory).filter(Boolean))].sort();
  const fields = inventories.map((n) => `  ${n}: ${JSON.stringify(inventoryFields(doc, n))},`).join('\n');

  // Property names whose schema is the upstream Date (`Jan 30, 2016 3:01:03 PM`, UTC): the SDK's `dates: 'iso'`.
  const dateFields = new Set();
  const findDates = (node) => {
    if (!node || typeof node !== 'object') return;
    for (const [name, s] of Object.entries(node.properties ?? {})) if (s?.$ref === '#/components/schemas/Date') dateFields.add(name);
    for (const v of Object.values(node)) findDates(v);
  };
  findDates(doc.components.schemas);
  findDates(doc.paths);

  const doc1 = (o) => `${o.summary.replace(/\*\//g, '')} (\`${o.method} ${o.path}\`, ${o.kind}, default timeout ${o.timeout})`;
  const methods = ops
    .map((o) => {
      const opt = o.pathParams.length || o.requiredBody ? '' : '?';
      const id = o.operationId;
      if (o.kind === 'query') {
        return (
          `  /** ${doc1(o)}. With \`fields\` as a list, the inventories have only those fields. */\n` +
          `  ${methodName(id)}<F extends FieldOf<'${id}'>>(params: QueryParams<'${id}'> & { fields: readonly F[] }, options?: CallOptions): Promise<ReplyWithFields<'${id}', F>>;\n` +
          `  ${methodName(id)}(params?: QueryParams<'${id}'>, options?: CallOptions): Promise<ReplyOf<'${id}'>>;\n` +
          `  /** Every ${o.inventory} matching \`params\`, fetched page by page (\`start\`/\`limit\`); only the listed \`fields\`. */\n` +
          `  ${queryAllMethodName(id)}<F extends FieldOf<'${id}'>>(params: QueryParams<'${id}'> & { fields: readonly F[] }, options?: QueryAllOptions): AsyncIterableIterator<Pick<InventoryOf<'${id}'>, F>>;\n` +
          `  ${queryAllMethodName(id)}(params?: QueryParams<'${id}'>, options?: QueryAllOptions): AsyncIterableIterator<InventoryOf<'${id}'>>;`
        );
      }
      let out = `  /** ${doc1(o)} */\n  ${methodName(id)}(params${opt}: ParamsOf<'${id}'>, options?: CallOptions): Promise<ReplyOf<'${id}'>>;`;
      if (o.kind === 'async') {
        out +=
          `\n  /** Starts ${id} and returns its job without waiting; \`waitJob(handle)\` resumes it (from any process). */\n` +
          `  ${startMethodName(id)}(params${opt}: ParamsOf<'${id}'>, options?: CallOptions): Promise<JobHandle<'${id}'>>;`;
      }
      return out;
    })
    .join('\n');
  return `import type { CallOptions, FieldOf, InventoryOf, JobHandle, OperationInfo, ParamInfo, ParamsOf, QueryAllOptions, QueryParams, ReplyOf, ReplyWithFields } from '../types.js';

/** Every operation of the spec: how to call it. */
export const OPERATIONS = {
${table}
} as const satisfies Record<string, OperationInfo>;

export type OperationId = keyof typeof OPERATIONS;

/** Every parameter of every operation (path, query and body fields together, as in a ZStack message). */
export const PARAMS: { readonly [K in OperationId]: readonly ParamInfo[] } = {
${params}
};

/** The fields of each inventory, with one level of joins (\`vmNics.ip\`): query conditions, \`fields\`, completion. */
export const INVENTORY_FIELDS: Readonly<Record<string, readonly string[]>> = {
${fields}
};

/** Reply fields that carry upstream's date format (\`Jan 30, 2016 3:01:03 PM\`, UTC). */
export const DATE_FIELDS: ReadonlySet<string> = new Set(${JSON.stringify([...dateFields].sort())});

/** One typed method per operation, named from its operationId. */
export interface GeneratedMethods {
${methods}
}
`;
}

// ZStack's REST conventions, applied to every operation of the bundled spec so the domain files stay short and
// no operation can drift from them. Each operation carries an `x-zstack` block:
//   kind     async (default for non-GET) | sync | query | poll
//   bodyKey  the key wrapping the request fields: `params` for creates, the action name for PUT .../actions
//            (taken from a `#action` path suffix)
//   reply    an inventory schema name (→ {"inventory": X, "success": true}) or `empty` (→ {"success": true})
//   query    the inventory a Query API returns (→ standard query parameters and {"inventories": [X], "total"})
//   timeout  the API's default timeout (30m async, 5m sync), published as `x-zstack-timeout`
//   public   no session needed;  create  adds resourceUuid/tagUuids;  delete  adds deleteMode
//   byUuid   (query) also served at `<path>/{uuid}` (default true)
//   optionalPaths  further URL templates the operation is also served at (upstream's optionalPaths)
//   message, replyClass  (from `x-zstack-message` / `x-zstack-reply-class`, placed after `operationId`) the 1.1 message
//            class (the RPC body key) and the reply/event class its result is keyed by (default: Msg → Event|Reply)
// and an `x-zstack-permission` block (required on every operation; see README "Accounts, ownership, permissions"):
//   category   the action category; the operation's action is `<category>:<operationId>` (policy statements match it)
//   adminOnly  only SystemAdmin accounts (and their users) may call it
//   operate    message fields naming resources the caller must own (upstream's checkAccount + operationTarget)
//   use        message fields naming resources the caller must own or have been shared (upstream's checkAccount)
//   owns       (creating operations) inventory fields of the reply whose nested resources the creator owns too

import { parseDuration } from '../shared/duration.ts';

const DEFAULT_TIMEOUT = { async: '30m', sync: '5m', query: '5m', poll: '5m' };
const METHODS = ['get', 'post', 'put', 'delete', 'patch'];
const ref = (kind, name) => ({ $ref: `#/components/${kind}/${name}` });

function wrapBody(op, z) {
  const content = op.requestBody?.content?.['application/json'];
  const inner = content?.schema ?? { type: 'object', additionalProperties: false };
  inner.properties ??= {};
  inner.properties.systemTags ??= ref('schemas', 'Tags');
  inner.properties.userTags ??= ref('schemas', 'Tags');
  if (z.create) {
    inner.properties.resourceUuid ??= { ...ref('schemas', 'Uuid'), description: 'Uuid for the new resource (optional).' };
    inner.properties.tagUuids ??= { type: 'array', items: ref('schemas', 'Uuid'), maxItems: 100 };
  }
  const mustSend = z.bodyKey !== 'params' || (inner.required ?? []).length > 0;
  const example = content?.example ?? { [z.bodyKey]: {} };
  op.requestBody = {
    required: mustSend,
    content: {
      'application/json': {
        schema: {
          type: 'object',
          additionalProperties: false,
          required: mustSend ? [z.bodyKey] : [],
          properties: { [z.bodyKey]: inner, systemTags: ref('schemas', 'Tags'), userTags: ref('schemas', 'Tags') },
        },
        example,
      },
    },
  };
}

function replyComponent(doc, inventory, query) {
  if (!doc.components.schemas[inventory]) throw new Error(`unknown inventory schema ${inventory}`);
  const name = `${inventory}${query ? 'QueryReply' : 'Reply'}`;
  doc.components.schemas[name] ??= query
    ? {
        type: 'object',
        required: ['success'],
        properties: {
          inventories: { type: 'array', items: ref('schemas', inventory) },
          total: { type: 'integer', description: 'With `count` or `replyWithCount`.' },
          schema: ref('schemas', 'ClassSchema'),
          success: { type: 'boolean', const: true },
        },
      }
    : {
        type: 'object',
        required: ['inventory', 'success'],
        properties: { inventory: ref('schemas', inventory), schema: ref('schemas', 'ClassSchema'), success: { type: 'boolean', const: true } },
      };
  return name;
}

const json = (schemaRef, description) => ({ description, content: { 'application/json': { schema: schemaRef } } });

const PERMISSION_KEYS = new Set(['category', 'adminOnly', 'operate', 'use', 'owns', 'action']);

/** Checks and completes an operation's `x-zstack-permission` (adds `action`); an operation without one is an error. */
function permissionOf(op, where, z) {
  const p = op['x-zstack-permission'];
  if (!p || typeof p !== 'object') throw new Error(`${where}: x-zstack-permission missing (every operation declares its permission)`);
  for (const k of Object.keys(p)) if (!PERMISSION_KEYS.has(k)) throw new Error(`${where}: x-zstack-permission has an unknown key ${k}`);
  if (typeof p.category !== 'string' || !/^[a-zA-Z][a-zA-Z0-9]*$/.test(p.category)) throw new Error(`${where}: x-zstack-permission.category must be a word`);
  if (typeof p.adminOnly !== 'boolean') throw new Error(`${where}: x-zstack-permission.adminOnly must be true or false`);
  if (z.public && p.adminOnly) throw new Error(`${where}: a public operation cannot be adminOnly`);
  const fields = new Set([
    ...(op.parameters ?? []).map((x) => x.name),
    ...Object.keys(op.requestBody?.content?.['application/json']?.schema?.properties ?? {}),
  ]);
  for (const list of ['operate', 'use', 'owns']) {
    if (p[list] === undefined) continue;
    if (!Array.isArray(p[list]) || p[list].some((f) => typeof f !== 'string')) throw new Error(`${where}: x-zstack-permission.${list} must be a list of names`);
    if (list === 'owns') continue;
    for (const f of p[list]) if (!fields.has(f)) throw new Error(`${where}: x-zstack-permission.${list} names ${f}, which is no field of the request`);
  }
  p.action = `${p.category}:${op.operationId}`;
}

export function applyConventions(doc) {
  // Every inventory names its upstream Java class (the reply's `schema` map, upstream's SDKs type replies by it).
  for (const [name, schema] of Object.entries(doc.components.schemas)) {
    if (schema['x-zstack-inventory'] && !schema['x-zstack-class']) throw new Error(`components.schemas.${name}: x-zstack-class missing`);
  }
  const ids = new Set();
  const messages = new Set();
  for (const [path, item] of Object.entries(doc.paths)) {
    const action = path.includes('#') ? path.slice(path.indexOf('#') + 1) : undefined;
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const where = `${method.toUpperCase()} ${path}`;
      if (!op.operationId) throw new Error(`${where}: operationId missing`);
      if (ids.has(op.operationId)) throw new Error(`${where}: operationId ${op.operationId} used twice`);
      ids.add(op.operationId);
      if (!op.summary) throw new Error(`${where}: summary missing`);
      const z = (op['x-zstack'] ??= {});
      permissionOf(op, where, z);
      z.kind ??= z.query ? 'query' : method === 'get' ? 'sync' : 'async';
      if (action) {
        if (z.bodyKey && z.bodyKey !== action) throw new Error(`${where}: bodyKey ${z.bodyKey} != #${action}`);
        z.bodyKey = action;
      }
      if ((method === 'put' || method === 'post') && !z.bodyKey) throw new Error(`${where}: bodyKey missing`);
      if (z.kind === 'query' && z.byUuid === undefined) z.byUuid = true;
      z.timeout ??= DEFAULT_TIMEOUT[z.kind];
      if (parseDuration(String(z.timeout)) === undefined) throw new Error(`${op.operationId}: x-zstack timeout ${z.timeout} is not a duration`);
      op['x-zstack-timeout'] = z.timeout;
      const mode =
        z.kind === 'async'
          ? "Asynchronous: answers 202 and runs as a job; any failure (refusals included) is the job's, polled as 503 — unless `X-ZStack-Errors: direct` asks for refusals at once."
          : z.kind === 'poll'
            ? 'Synchronous.'
            : 'Synchronous: a failure answers 503 with its ErrorCode (with `X-ZStack-Errors: direct`, refusals get their own 4xx).';
      const prefer = z.kind === 'async' ? " With `Prefer: wait=<seconds>`, answers the job's result instead when it finishes within that time." : '';
      op.description = `${op.description ?? op.summary}\n\n${mode} **Default timeout:** ${z.timeout}.${prefer}`;
      if (z.public) op.security = [];
      op.parameters ??= [];
      if (z.bodyKey) wrapBody(op, z);
      op.responses ??= {};
      if (z.kind === 'query') {
        for (const p of ['q', 'limit', 'start', 'count', 'replyWithCount', 'sort', 'sortBy', 'sortDirection', 'fields', 'groupBy'])
          op.parameters.push(ref('parameters', p));
        op.responses['200'] = json(ref('schemas', replyComponent(doc, z.query, true)), 'The matching inventories.');
      } else if (z.reply === 'empty') {
        op.responses['200'] = json(ref('schemas', 'EmptyReply'), 'Done.');
      } else if (z.reply) {
        op.responses['200'] = json(ref('schemas', replyComponent(doc, z.reply, false)), `The ${z.reply}.`);
      }
      if (!op.responses['200']) throw new Error(`${where}: no 200 response (set x-zstack.reply or responses)`);
      // The 1.1 RPC protocol (POST /zstack/api) names every API by its message class; every JSON API needs one.
      const message = op['x-zstack-message'];
      const json200 = op.responses['200'].$ref || op.responses['200'].content?.['application/json'];
      if (message) {
        if (!/^[a-z][\w.]*\.API\w+Msg$/.test(message)) throw new Error(`${where}: x-zstack-message ${message} is not an API message class`);
        if (messages.has(message)) throw new Error(`${where}: x-zstack-message ${message} used twice`);
        messages.add(message);
        z.message = message;
        z.replyClass = op['x-zstack-reply-class'] ?? message.replace(/Msg$/, z.kind === 'async' ? 'Event' : 'Reply');
      } else if (z.kind !== 'poll' && json200) {
        throw new Error(`${where}: x-zstack-message missing (the API's message class for the 1.1 RPC protocol)`);
      }
      if (z.delete) {
        op.parameters.push({
          name: 'deleteMode',
          in: 'query',
          description: '`Permissive` (default) refuses when something depends on the resource; `Enforcing` deletes anyway.',
          schema: { type: 'string', enum: ['Permissive', 'Enforcing'] },
        });
      }
      if (z.kind !== 'poll') op.parameters.push(ref('parameters', 'XApiTimeout'), ref('parameters', 'XZStackErrors'));
      if (z.kind === 'async') {
        op.parameters.push(ref('parameters', 'XJobUuid'), ref('parameters', 'XWebHook'), ref('parameters', 'PreferWait'));
        op.responses['202'] = ref('responses', 'JobAccepted');
        // With `Prefer: wait=N` the call itself may answer the finished job's 200 (or 503, below).
        const ok = op.responses['200'];
        if (!ok.$ref) {
          ok.headers = { ...ok.headers, 'Preference-Applied': ref('headers', 'PreferenceApplied'), Location: ref('headers', 'JobLocation') };
        }
        op.responses['503'] ??= ref('responses', 'JobFailed');
      }
      if (z.kind !== 'poll') {
        op.responses['400'] ??= ref('responses', 'BadRequest');
        if (!z.public) op.responses['401'] ??= ref('responses', 'Unauthorized');
        if (!z.public) op.responses['403'] ??= ref('responses', 'Forbidden');
        if (/\{/.test(path)) op.responses['404'] ??= ref('responses', 'NotFound');
        op.responses['409'] ??= ref('responses', 'Conflict');
        op.responses['503'] ??= ref('responses', 'Failed');
      }
    }
  }
  boundIntegers(doc);
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) if (item[method]) publishSecrets(doc, item[method], `${method.toUpperCase()} ${path}`);
  }
  return doc;
}

/**
 * Integers the runtime and the database can both hold: every integer schema without a bound of its own gets
 * ±(2^53 − 1) (JSON numbers past it lose precision; PostgreSQL's bigint holds it).
 */
const SAFE_INTEGER = 9007199254740991;
function boundIntegers(node) {
  if (Array.isArray(node)) return node.forEach(boundIntegers);
  if (!node || typeof node !== 'object') return;
  const types = [].concat(node.type ?? []);
  if (types.includes('integer')) {
    if (node.maximum === undefined && node.exclusiveMaximum === undefined) node.maximum = SAFE_INTEGER;
    if (node.minimum === undefined && node.exclusiveMinimum === undefined) node.minimum = -SAFE_INTEGER;
  }
  for (const v of Object.values(node)) boundIntegers(v);
}

/**
 * Secrets are marked once, on the property (or parameter) schema: `x-zstack-secret: true`. Each operation then
 * publishes where its secrets are, `x-zstack-secrets: {request, params, reply}` (dotted paths into the body and the
 * 200 reply, `*` for any array item or map value; names of secret path/query parameters). The server redacts
 * stored jobs, webhooks and logs from it; the SDK's hooks and curl form too.
 */
function publishSecrets(doc, op, where) {
  const z = op['x-zstack'];
  const request = z.bodyKey ? secretPaths(doc, op.requestBody?.content?.['application/json']?.schema, '') : [];
  const reply = secretPaths(doc, resolveRef(doc, op.responses?.['200'])?.content?.['application/json']?.schema, '');
  const params = (op.parameters ?? [])
    .map((p) => resolveRef(doc, p))
    .filter((p) => p['x-zstack-secret'])
    .map((p) => p.name);
  if (request.length || reply.length || params.length) op['x-zstack-secrets'] = { request, params, reply };
  else delete op['x-zstack-secrets'];
  if (
    op.requestBody?.content?.['application/json']?.example &&
    request.length === 0 &&
    /password/i.test(JSON.stringify(op.requestBody.content['application/json'].schema))
  ) {
    throw new Error(`${where}: a password field without x-zstack-secret`);
  }
}

function resolveRef(doc, node) {
  let n = node;
  for (let i = 0; n && n.$ref && i < 10; i++) {
    const [, kind, name] = /^#\/components\/(\w+)\/(.+)$/.exec(n.$ref) ?? [];
    n = kind ? doc.components[kind]?.[name] : undefined;
  }
  return n;
}

function secretPaths(doc, schema, prefix, seen = new Set()) {
  if (!schema || typeof schema !== 'object') return [];
  if (schema['x-zstack-secret']) return [prefix];
  if (schema.$ref) {
    if (seen.has(schema.$ref)) return [];
    return secretPaths(doc, resolveRef(doc, schema), prefix, new Set([...seen, schema.$ref]));
  }
  const out = new Set();
  const at = (key) => (prefix ? `${prefix}.${key}` : key);
  for (const [key, sub] of Object.entries(schema.properties ?? {})) for (const p of secretPaths(doc, sub, at(key), seen)) out.add(p);
  if (schema.items) for (const p of secretPaths(doc, schema.items, at('*'), seen)) out.add(p);
  if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
    for (const p of secretPaths(doc, schema.additionalProperties, at('*'), seen)) out.add(p);
  }
  for (const k of ['allOf', 'anyOf', 'oneOf']) for (const sub of schema[k] ?? []) for (const p of secretPaths(doc, sub, prefix, seen)) out.add(p);
  for (const k of ['if', 'then', 'else']) for (const p of secretPaths(doc, schema[k], prefix, seen)) out.add(p);
  return [...out].sort();
}

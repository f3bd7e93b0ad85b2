// Code samples for every operation, generated from the spec: curl, the TypeScript SDK and zstack-cli, published as
// Redoc's `x-codeSamples` on each operation of openapi/dist/openapi.json (so /zstack/docs and `npm run docs` show
// them). Values come from the operation's request example; path parameters get a stable made-up uuid. The same
// renderer, fed real values, is run against a live server by test/docs/samples.test.ts, and every TypeScript sample
// is type-checked there against the SDK: a sample that stops working fails the tests.
import { createHash } from 'node:crypto';
import { listOperations, methodName } from './sdk-operations.mjs';

/** Where the samples point; the test swaps it for its server's URL. */
export const SAMPLE_ENDPOINT = 'http://localhost:8080';
const CLEAR_PASSWORD = 'password';
const HASHED_PASSWORD = createHash('sha512').update(CLEAR_PASSWORD).digest('hex');

// Path parameters that are not uuids and have no example in the spec: values the server accepts.
const PATH_FALLBACKS = { category: 'apiTimeout', name: 'AddImage', dns: '8.8.8.8' };

/** A stable 32-hex uuid for a path parameter: the same resource path always shows the same uuid. */
const madeUpUuid = (seed) => createHash('md5').update(seed).digest('hex');

const refName = (ref) => ref.split('/').pop();
const resolve = (doc, s) => (s?.$ref ? (doc.components.schemas[refName(s.$ref)] ?? {}) : (s ?? {}));

/** The operation's sample values: `{ path, query, body }` keyed by parameter name. */
export function exampleValues(doc, info) {
  const op = doc.paths[info.key][info.method.toLowerCase()];
  const path = {};
  for (const name of info.pathParams) {
    const p = (op.parameters ?? []).map((x) => (x.$ref ? doc.components.parameters[refName(x.$ref)] : x)).find((x) => x.name === name && x.in === 'path');
    const schema = resolve(doc, p?.schema);
    path[name] =
      p?.example ?? schema.example ?? (/uuid$/i.test(name) ? madeUpUuid(`${info.path.split(`{${name}}`)[0]}${name}`) : (PATH_FALLBACKS[name] ?? name));
  }
  const example = op.requestBody?.content?.['application/json']?.example;
  const body = info.bodyKey ? { ...(example?.[info.bodyKey] ?? {}) } : {};
  const query = {};
  // Required query parameters (e.g. the uuids a DELETE names) take their spec example, else one from their schema.
  for (const p of (op.parameters ?? []).map((x) => (x.$ref ? doc.components.parameters[refName(x.$ref)] : x))) {
    if (p.in === 'query' && p.required) query[p.name] = p.example ?? schemaExample(doc, p.schema, `${info.path}?${p.name}`);
  }
  if (info.kind === 'query') {
    const name = nameOfInventory(doc, info.inventory);
    if (name) query.q = [`name=${name}`];
    query.limit = 10;
  }
  return { path, query, body };
}

/** A value of `schema` for a sample: its own example, else a made-up uuid for uuids, else one of its kind. */
function schemaExample(doc, schema, seed) {
  const s = resolve(doc, schema);
  const given = s.example ?? s.examples?.[0] ?? s.enum?.[0] ?? s.default;
  if (given !== undefined) return given;
  if (s.type === 'array') return [schemaExample(doc, s.items, seed)];
  if (s.type === 'integer' || s.type === 'number') return s.minimum ?? 1;
  if (s.type === 'boolean') return true;
  const name = refName(schema?.$ref ?? '') || seed;
  return /uuid/i.test(name) || /uuid/i.test(seed) ? madeUpUuid(seed) : 'example';
}

/** The `name` a create operation's example gives this inventory (so QueryZone's sample finds CreateZone's zone). */
function nameOfInventory(doc, inventory) {
  const inv = resolve(doc, doc.components.schemas[inventory]);
  if (!inv.properties?.name) return undefined;
  for (const item of Object.values(doc.paths)) {
    for (const op of Object.values(item)) {
      const z = op['x-zstack'];
      if (z.kind !== 'async' || !z.create || z.reply !== inventory) continue;
      const name = op.requestBody?.content?.['application/json']?.example?.[z.bodyKey]?.name;
      if (typeof name === 'string') return name;
    }
  }
  return undefined;
}

const shellQuote = (s) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

function queryString(values) {
  const parts = [];
  for (const [k, v] of Object.entries(values)) {
    for (const item of Array.isArray(v) ? v : [v]) parts.push(`${k}=${encodeURIComponent(String(item)).replace(/%3D/g, '=').replace(/%2C/g, ',')}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

function curlSample(info, { path, query, body }) {
  const url = SAMPLE_ENDPOINT + info.path.replace(/\{(\w+)\}/g, (_, n) => encodeURIComponent(String(path[n]))) + queryString(query);
  const lines = [info.method === 'GET' ? `curl ${shellQuote(url)}` : `curl -X ${info.method} ${shellQuote(url)}`];
  if (!info.public) lines.push(`-H "Authorization: OAuth $SESSION"`);
  if (info.kind === 'async') lines.push(`-H 'Prefer: wait=10'`);
  if (info.bodyKey) {
    lines.push(`-H 'Content-Type: application/json'`);
    lines.push(`-d ${shellQuote(JSON.stringify({ [info.bodyKey]: body }))}`);
  }
  const head = info.kind === 'async' ? '# Asynchronous: 200 with the result when the job ends within 10 s, else 202 {"location"}: GET it until 200.\n' : '';
  const session = info.public ? '' : '# SESSION: the uuid LogInByAccount returns (inventory.uuid).\n';
  return session + head + lines.join(' \\\n  ');
}

/** A value as TypeScript source (object keys bare when they can be). */
function tsValue(v, indent = '') {
  if (v === HASHED_PASSWORD) return `hashPassword('${CLEAR_PASSWORD}')`;
  if (Array.isArray(v)) return `[${v.map((x) => tsValue(x, indent)).join(', ')}]`;
  if (v && typeof v === 'object') {
    const entries = Object.entries(v).map(([k, x]) => `${/^[A-Za-z_$][\w$]*$/.test(k) ? k : `'${k}'`}: ${tsValue(x, indent)}`);
    return entries.length ? `{ ${entries.join(', ')} }` : '{}';
  }
  return typeof v === 'string' ? `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'` : String(v);
}

function sdkSample(info, { path, query, body }) {
  const params = { ...path, ...query, ...body };
  const usesHash = JSON.stringify(params).includes(HASHED_PASSWORD);
  const call = `zs.${methodName(info.operationId)}(${Object.keys(params).length ? tsValue(params) : ''})`;
  let use;
  if (info.kind === 'query') use = `const { inventories } = await ${call};\nconsole.log(inventories);`;
  else if (info.replyShape === 'inventory') use = `const { inventory } = await ${call};\nconsole.log(inventory);`;
  else if (info.replyShape === 'empty') use = `await ${call};`;
  else use = `console.log(await ${call});`;
  return (
    `import { ZStackClient${usesHash ? ', hashPassword' : ''} } from '@zstack-ts/sdk';\n\n` +
    (info.public
      ? `const zs = new ZStackClient({ endpoint: '${SAMPLE_ENDPOINT}' });\n`
      : `const zs = new ZStackClient({ endpoint: '${SAMPLE_ENDPOINT}', accountName: 'admin', password: '${CLEAR_PASSWORD}' });\n`) +
    use
  );
}

function cliValue(v) {
  if (v === HASHED_PASSWORD) return CLEAR_PASSWORD;
  if (Array.isArray(v) && v.every((x) => typeof x !== 'object' && !String(x).includes(','))) return v.join(',');
  return typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
}

function cliSample(info, { path, query, body }) {
  const args = [info.operationId];
  for (const [k, v] of Object.entries({ ...path, ...body })) {
    // The CLI hashes LogInByAccount's clear password; other password fields are sent as typed.
    const value = v === HASHED_PASSWORD && info.operationId !== 'LogInByAccount' ? v : cliValue(v);
    args.push(shellQuote(`${k}=${value}`));
  }
  for (const [k, v] of Object.entries(query)) {
    if (k === 'q') for (const cond of v) args.push(shellQuote(cond));
    else args.push(shellQuote(`${k}=${cliValue(v)}`));
  }
  return `zstack-cli ${args.join(' ')}`;
}

/** The three samples of one operation for the given values, as Redoc's `x-codeSamples`. */
export function renderSamples(info, values) {
  const samples = [{ lang: 'Shell', label: 'curl', source: curlSample(info, values) }];
  if (info.kind !== 'poll') {
    samples.push({ lang: 'TypeScript', label: 'TypeScript SDK', source: sdkSample(info, values) });
    samples.push({ lang: 'Shell', label: 'zstack-cli', source: cliSample(info, values) });
  }
  return samples;
}

/** The operations as the renderer needs them (the SDK generator's view plus the reply's shape). */
export function sampleOperations(doc) {
  return listOperations(doc).map((o) => {
    const key = Object.keys(doc.paths).find((k) => k.split('#')[0] === o.path && doc.paths[k][o.method.toLowerCase()]?.operationId === o.operationId);
    const op = doc.paths[key][o.method.toLowerCase()];
    const ok = Object.keys(op.responses ?? {}).find((c) => c.startsWith('2'));
    const reply = resolve(doc, op.responses?.[ok]?.content?.['application/json']?.schema);
    const props = Object.keys(reply.properties ?? {});
    const replyShape = props.includes('inventory') ? 'inventory' : props.length && props.every((p) => p === 'success') ? 'empty' : 'other';
    return { ...o, key, replyShape };
  });
}

/** Adds `x-codeSamples` (curl, TypeScript SDK, zstack-cli) to every operation of the bundled spec. */
export function addCodeSamples(doc) {
  for (const info of sampleOperations(doc)) {
    doc.paths[info.key][info.method.toLowerCase()]['x-codeSamples'] = renderSamples(info, exampleValues(doc, info));
  }
  return doc;
}

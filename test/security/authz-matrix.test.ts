// The authorization matrix, enumerated from the spec (openapi/dist/openapi.json), not hand-listed: every operation ×
// {no session, admin, owner Normal account, other Normal account, user allowed by a policy, user denied by a policy}
// → the decision its `x-zstack-permission` implies. Denials are checked over HTTP (401 ID.1001 / 403 ID.1002: they
// happen before anything runs); allowed calls are checked by the server's permission decision itself (no side
// effects), and over HTTP for Query APIs (200). An operation without a declared permission fails here.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { createHash, randomUUID } from 'node:crypto';
import { startServer, http } from '../lib/harness.js';
import { ZStackClient } from '../../sdk/src/index.js';
import { accountResourceRefs } from '../../server/src/db/schema/index.js';
import type { SessionInfo } from '../../server/src/core/context.js';

const doc = JSON.parse(readFileSync(new URL('../../openapi/dist/openapi.json', import.meta.url), 'utf8'));
const sha512 = (s: string) => createHash('sha512').update(s).digest('hex');
const uuid = () => randomUUID().replace(/-/g, '');

interface Op {
  id: string;
  method: string;
  path: string;
  spec: any;
  perm: { category: string; action: string; adminOnly: boolean; operate?: string[]; use?: string[] };
  isPublic: boolean;
  kind: string;
}
const ops: Op[] = [];
for (const [key, item] of Object.entries<any>(doc.paths)) {
  for (const [method, spec] of Object.entries<any>(item)) {
    ops.push({
      id: spec.operationId,
      method: method.toUpperCase(),
      path: key.split('#')[0],
      spec,
      perm: spec['x-zstack-permission'],
      isPublic: Boolean(spec['x-zstack'].public),
      kind: spec['x-zstack'].kind,
    });
  }
}

type Principal = 'none' | 'admin' | 'owner' | 'other' | 'userAllowed' | 'userDenied';
const PRINCIPALS: Principal[] = ['none', 'admin', 'owner', 'other', 'userAllowed', 'userDenied'];

/** What the permission declared implies: 'allow', or the HTTP status of the refusal. */
function expected(op: Op, who: Principal): 'allow' | 401 | 403 {
  if (op.kind === 'poll' || op.isPublic) return 'allow';
  if (who === 'none') return 401;
  if (who === 'admin') return 'allow';
  if (who === 'userDenied') return 403;
  if (op.perm.adminOnly) return 403;
  if (who === 'other' && (op.perm.operate?.length || op.perm.use?.length)) return 403;
  return 'allow';
}

t.test('every operation declares its permission', async (t) => {
  t.ok(ops.length > 100, `${ops.length} operations`);
  for (const op of ops) {
    const p = op.perm;
    t.ok(p && typeof p.adminOnly === 'boolean' && p.action === `${p.category}:${op.id}`, `${op.id} declares x-zstack-permission`);
  }
  const table = JSON.parse(readFileSync(new URL('../../openapi/dist/permissions.json', import.meta.url), 'utf8'));
  t.same(Object.keys(table).sort(), ops.map((o) => o.id).sort(), 'the generated permission table lists every operation');
});

t.test('authorization matrix', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const admin = s.client;
  const account = async (name: string) => {
    const inv = (await admin.createAccount({ name, password: sha512('pw') })).inventory;
    const c = new ZStackClient({ endpoint: s.url, accountName: name, password: 'pw' });
    return { uuid: inv.uuid, client: c, sid: await c.login() };
  };
  const owner = await account('owner');
  const other = await account('other');
  const user = async (name: string, statements: Array<{ effect: 'Allow' | 'Deny'; actions: string[] }>) => {
    const u = (await owner.client.createUser({ name, password: sha512('pw') })).inventory;
    const p = (await owner.client.createPolicy({ name: `${name}-policy`, statements })).inventory;
    await owner.client.attachPolicyToUser({ userUuid: u.uuid, policyUuid: p.uuid });
    const login = await http(s.url, 'PUT', '/zstack/v1/accounts/users/login', {
      body: { logInByUser: { accountName: 'owner', userName: name, password: sha512('pw') } },
    });
    return login.json.inventory.uuid as string;
  };
  const allowedSid = await user('allowed', [{ effect: 'Allow', actions: ['*'] }]);
  // Allowed everything, and denied each operation's action by name: the Deny must win for every one of them.
  const deniedSid = await user('denied', [
    { effect: 'Allow', actions: ['*'] },
    { effect: 'Deny', actions: ops.map((o) => o.perm.action) },
  ]);
  const sids: Record<Principal, string | undefined> = {
    none: undefined,
    admin: await admin.login(),
    owner: owner.sid,
    other: other.sid,
    userAllowed: allowedSid,
    userDenied: deniedSid,
  };
  const sessions = {} as Record<Principal, SessionInfo | undefined>;
  for (const who of PRINCIPALS) sessions[who] = sids[who] ? await s.app.identity.authenticate(`OAuth ${sids[who]}`) : undefined;

  // One resource of the owner per field an operation checks (ownership is what the decision reads).
  const owned = new Map<string, string>();
  for (const op of ops) for (const f of [...(op.perm.operate ?? []), ...(op.perm.use ?? [])]) if (!owned.has(f)) owned.set(f, uuid());
  await s.app.db
    .insert(accountResourceRefs)
    .values([...owned.values()].map((u) => ({ resourceUuid: u, resourceType: 'TestVO', accountUuid: owner.uuid, ownerAccountUuid: owner.uuid })));

  const request = (op: Op) => {
    const checked = new Set([...(op.perm.operate ?? []), ...(op.perm.use ?? [])]);
    const msg: Record<string, unknown> = {};
    let url = op.path;
    const query = new URLSearchParams();
    for (const p of op.spec.parameters ?? []) {
      // Query parameters the check reads or the operation requires (e.g. the uuids a DELETE names) go in the URL.
      if (p.in === 'query' && (checked.has(p.name) || p.required)) {
        const value = owned.get(p.name) ?? uuid();
        msg[p.name] = p.schema?.type === 'array' ? [value] : value;
        query.append(p.name, value);
        continue;
      }
      if (p.in !== 'path') continue;
      const value = checked.has(p.name) ? owned.get(p.name)! : p.schema?.$ref?.endsWith('/Uuid') ? uuid() : p.schema?.format === 'ipv4' ? '8.8.8.8' : 'x';
      msg[p.name] = value;
      url = url.replace(`{${p.name}}`, value);
    }
    const example = op.spec.requestBody?.content?.['application/json']?.example;
    const body = example ? structuredClone(example) : undefined;
    const bodyKey = op.spec['x-zstack'].bodyKey;
    const inner = body && bodyKey ? (body[bodyKey] ??= {}) : undefined;
    for (const f of checked) {
      if (f in msg) continue;
      const schema = op.spec.requestBody?.content?.['application/json']?.schema?.properties?.[bodyKey]?.properties?.[f];
      const value = schema?.type === 'array' ? [owned.get(f)!] : owned.get(f)!;
      if (inner) inner[f] = value;
      msg[f] = value;
    }
    Object.assign(msg, inner ?? {}, Object.fromEntries([...checked].filter((f) => f in msg).map((f) => [f, msg[f]])));
    if ([...query].length) url += `?${query}`;
    return { url, body, msg };
  };

  let decisions = 0;
  for (const op of ops) {
    const specOp = s.app.operations.find((o) => o.operationId === op.id)!;
    for (const who of PRINCIPALS) {
      const want = expected(op, who);
      const { url, body, msg } = request(op);
      const name = `${op.id} × ${who}`;
      decisions++;
      if (want !== 'allow') {
        const res = await http(s.url, op.method, url, { body, headers: sids[who] ? { Authorization: `OAuth ${sids[who]}` } : {} });
        t.equal(res.status, want, `${name} → ${want}`, { body: res.text.slice(0, 300) });
        t.equal(res.json?.error?.code, want === 401 ? 'ID.1001' : 'ID.1002', `${name}: error code`);
        continue;
      }
      if (op.kind === 'poll' || op.isPublic) {
        // Needs no session: never refused for the lack of one.
        const res = await http(s.url, op.method, url, { body });
        t.not(res.json?.error?.code, 'ID.1001', `${name}: public`);
        t.not(res.status, 403, `${name}: public`);
        continue;
      }
      await t.resolves(s.app.permissions.authorize(specOp, sessions[who], { ...msg }), `${name} → allowed`);
      if (op.kind === 'query') {
        const res = await http(s.url, 'GET', url, { headers: { Authorization: `OAuth ${sids[who]}` } });
        t.equal(res.status, 200, `${name}: query answers`, { body: res.text.slice(0, 300) });
      }
    }
  }
  t.comment(`matrix: ${ops.length} operations × ${PRINCIPALS.length} principals = ${decisions} decisions`);
});

// The spec is the single source: it lints, generated files are current, every operation is served, and every
// operation that needs a session refuses to work without one (enumerated from the spec, not hand-listed).
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { startServer, http } from '../lib/harness.js';

const root = new URL('../..', import.meta.url).pathname;
// `npm test` runs `npm run spec:check` (these same two checks) before tap: running them again costs ~35 s of CPU.
const specCheckedByNpmTest = process.env.npm_lifecycle_event === 'test' ? 'npm test ran spec:check before tap' : false;

t.test('generated files are current', { skip: specCheckedByNpmTest }, async (t) => {
  const out = execFileSync(process.execPath, ['--import', 'tsx', 'openapi/scripts/generate.mjs', '--check'], { cwd: root, encoding: 'utf8' });
  t.match(out, /generated files are current/);
});

t.test('the bundled spec passes redocly lint', { skip: specCheckedByNpmTest }, async (t) => {
  // redocly exits non-zero on any error; its report goes to stderr.
  t.doesNotThrow(() => execFileSync('npx', ['redocly', 'lint', 'openapi/dist/openapi.json', '--config', 'openapi/redocly.yaml'], { cwd: root, stdio: 'pipe' }));
});

t.test('server against the spec', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());

  t.test('every operation has a handler', async (t) => {
    t.same(s.app.unservedOperations(), [], 'operations without a handler');
  });

  t.test('every non-public operation answers 401 ID.1001 without a session', async (t) => {
    const ops = s.app.operations.filter((o) => !o.x.public);
    t.ok(ops.length > 5);
    for (const op of ops) {
      const path = op.path.replace(/\{[^}]+\}/g, '0123456789abcdef0123456789abcdef');
      const body = op.x.bodyKey ? { [op.x.bodyKey]: {} } : undefined;
      for (const headers of [{} as Record<string, string>, { Authorization: 'OAuth 0123456789abcdef0123456789abcdef' }, { Authorization: 'Basic abc' }]) {
        const res = await http(s.url, op.method, path, { body, headers });
        t.equal(res.status, 401, `${op.operationId} ${JSON.stringify(headers)} → 401`);
        t.equal(res.json?.error?.code, 'ID.1001', `${op.operationId} → ID.1001`);
      }
    }
  });

  t.test('public operations work without a session', async (t) => {
    const v = await http(s.url, 'PUT', '/zstack/v1/management-nodes/actions', { body: { getVersion: {} } });
    t.equal(v.status, 200);
    t.same(v.json, { version: '1.1.0', success: true });
    const valid = await http(s.url, 'GET', '/zstack/v1/accounts/sessions/nope/valid');
    t.same(valid.json, { valid: false, success: true });
  });

  t.test('unknown paths answer a JSON 404, never plain text', async (t) => {
    const res = await http(s.url, 'GET', '/zstack/v1/nothing-here');
    t.equal(res.status, 404);
    t.equal(res.json.error.code, 'SYS.1003');
  });

  t.test('the spec is served', async (t) => {
    const res = await http(s.url, 'GET', '/zstack/openapi.json');
    t.equal(res.status, 200);
    t.equal(res.json.openapi, '3.1.0');
  });
});

// Secrets are marked once in the spec (`x-zstack-secret`) and everything derives from it: the operations' published
// secret paths, the server's stored jobs and webhooks, the SDK's hooks, errors and curl form.
import t from 'tap';
import { ZStackClient } from '../../sdk/src/index.js';
import { OPERATIONS } from '../../sdk/src/generated/operations.js';
import { loadSpec, listOperations } from '../../server/src/core/spec.js';
import { redactMessage, redactReply, REDACTED } from '../../server/src/core/secrets.js';
import { sha512 } from '../../server/src/identity/passwords.js';
import { startServer } from '../lib/harness.js';

const doc = loadSpec();
const operations = listOperations(doc);
const op = (id: string) => operations.find((o) => o.operationId === id)!;

t.test('the spec: every credential-looking field is marked, and each operation publishes where its secrets are', async (t) => {
  const unmarked: string[] = [];
  const walk = (node: unknown, where: string) => {
    if (!node || typeof node !== 'object') return;
    for (const [k, v] of Object.entries(node)) {
      if (k === 'properties' && v && typeof v === 'object') {
        for (const [name, schema] of Object.entries(v as Record<string, any>)) {
          if (/^(password|sshKey|privateKey|secret|token)$/i.test(name) && !schema['x-zstack-secret']) unmarked.push(`${where}.${name}`);
        }
      }
      walk(v, `${where}/${k}`);
    }
  };
  walk(doc, '#');
  t.same(unmarked, [], 'no password, key, secret or token property without x-zstack-secret');
  t.same(op('AddKVMHost').secrets.request, ['params.password', 'params.sshKey']);
  t.same(op('AddSftpBackupStorage').secrets.request, ['params.password']);
  t.same(op('LogInByAccount').secrets, { request: ['logInByAccount.password'], params: [], reply: ['inventory.uuid'] });
  t.same(op('LogOut').secrets.params, ['sessionUuid']);
  t.same(op('RequestConsoleAccess').secrets.reply, ['inventory.token', 'inventory.url']);
  t.same((OPERATIONS as Record<string, any>).AddKVMHost.secrets, op('AddKVMHost').secrets, "the SDK's table carries the same");
});

t.test('the server redacts stored messages and webhook replies from the spec', async (t) => {
  const msg = { name: 'h', managementIp: '10.0.0.1', username: 'root', password: 'hunter2', sshKey: 'KEY', clusterUuid: 'c' };
  t.same(redactMessage(op('AddKVMHost'), msg), { ...msg, password: REDACTED, sshKey: REDACTED });
  t.equal(msg.password, 'hunter2', 'the handler keeps its own copy intact');
  t.same(redactMessage(op('LogOut'), { sessionUuid: 'abc' }), { sessionUuid: REDACTED });
  t.same(redactMessage(op('CreateZone'), { name: 'z' }), { name: 'z' }, 'nothing to redact: the same');
  t.same(redactReply(op('RequestConsoleAccess'), { inventory: { token: 'tok', port: 1 }, success: true }), {
    inventory: { token: REDACTED, port: 1 },
    success: true,
  });
  t.same(redactMessage(op('UpdateAccount'), { uuid: 'u' }), { uuid: 'u' }, 'an absent secret stays absent');
});

t.test("the SDK's hooks and curl form never show a secret", async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const seen: unknown[] = [];
  const c = new ZStackClient({
    endpoint: s.url,
    accountName: 'admin',
    password: 'password',
    hooks: { onRequest: (e) => seen.push(e), onResponse: (e) => seen.push(e), onError: (e) => seen.push(e) },
  });
  const session = await c.login();
  const alicePw = sha512('alice-secret');
  await c.createAccount({ name: 'alice', password: alicePw });
  const alice = new ZStackClient({
    endpoint: s.url,
    accountName: 'alice',
    password: 'alice-secret',
    hooks: { onRequest: (e) => seen.push(e), onResponse: (e) => seen.push(e) },
  });
  const aliceSession = await alice.login();
  await c.validateSession({ sessionUuid: aliceSession });
  await c.logOut({ sessionUuid: aliceSession });
  const curl = c.toCurl('AddSftpBackupStorage', { name: 'bs', hostname: '10.0.0.9', username: 'root', password: 'ssh-hunter2', url: '/bs' });
  const everything = JSON.stringify(seen) + curl;
  t.ok(seen.length >= 10, `${seen.length} hook events`);
  for (const [what, secret] of [
    ['admin session', session],
    ['alice session', aliceSession],
    ['alice password digest', alicePw],
    ['ssh password', 'ssh-hunter2'],
    ['admin digest', sha512('password')],
  ]) {
    t.notOk(everything.includes(secret), `no ${what} in hooks or curl`);
  }
  t.match(curl, /"password":"\*\*\*"/);
  t.match(
    c.toCurl('AddSftpBackupStorage', { name: 'bs', hostname: 'h', username: 'root', password: 'ssh-hunter2', url: '/bs' }, { redact: false }),
    /ssh-hunter2/,
    'redact: false shows it',
  );
});

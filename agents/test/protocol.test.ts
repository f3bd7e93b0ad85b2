// Protocol conventions every agent shares: secret, JSON errors, spec-driven routes and validation.
import t from 'tap';
import { loadProtocol } from '../src/lib/spec.js';
import { call, SECRET, start } from './helpers.js';

t.test('secret enforcement', async (t) => {
  const agent = await start({ kind: 'simulator' });
  t.teardown(() => agent.close());

  const missing = await call(agent, '/host/connect', { hostUuid: 'h1' }, { secret: null });
  t.equal(missing.status, 401);
  t.same(missing.body.success, false);
  t.match(missing.body.error, /unauthorized/);

  const wrong = await call(agent, '/host/connect', { hostUuid: 'h1' }, { secret: `${SECRET}x` });
  t.equal(wrong.status, 401);

  const right = await call(agent, '/host/connect', { hostUuid: 'h1' });
  t.equal(right.status, 200);
  t.equal(right.body.success, true);

  for (const path of ['/host/echo', '/backupstorage/echo', '/virtualrouter/echo']) {
    const echo = await call(agent, path, undefined, { secret: null, raw: '' });
    t.equal(echo.status, 200, `${path} needs no secret`);
    t.equal(echo.body.success, true);
  }
  const controlWithoutSecret = await call(agent, '/simulator/vms', { hostUuid: 'h1' }, { secret: null });
  t.equal(controlWithoutSecret.status, 401, 'the control API needs the secret too');
});

t.test('bad requests are JSON, never stack traces', async (t) => {
  const agent = await start({ kind: 'simulator' });
  t.teardown(() => agent.close());

  const badJson = await call(agent, '/host/connect', undefined, { raw: '{"hostUuid": ' });
  t.equal(badJson.status, 400);
  t.equal(badJson.body.success, false);
  t.match(badJson.body.error, /invalid request/);

  const missingField = await call(agent, '/vm/start', { vmInstanceUuid: 'vm1' }, { target: 'h1' });
  t.equal(missingField.status, 400);
  t.match(missingField.body.error, /must have required property/);

  const wrongType = await call(agent, '/vm/stop', { uuid: 42 }, { target: 'h1' });
  t.equal(wrongType.status, 400);
  t.match(wrongType.body.error, /uuid must be string/);

  const unknown = await call(agent, '/vm/levitate', {});
  t.equal(unknown.status, 404);
  t.same(unknown.body, { success: false, error: 'unknown path: POST /vm/levitate' });

  const badTimeout = await call(agent, '/host/ping', {}, { target: 'h1', timeoutMs: -1 as number });
  t.equal(badTimeout.status, 400);
  t.match(badTimeout.body.error, /X-Zstack-Timeout-Ms/);

  const noTarget = await call(agent, '/host/capacity', {});
  t.equal(noTarget.status, 400, 'the simulator needs to know which host');
  t.match(noTarget.body.error, /X-Zstack-Target-Uuid/);

  const emptyBody = await call(agent, '/host/ping', undefined, { target: 'h1', raw: '' });
  t.equal(emptyBody.status, 200, 'an empty JSON body means no fields');

  for (const res of [badJson, missingField, wrongType, unknown, badTimeout, noTarget]) {
    t.notMatch(JSON.stringify(res.body), /\n\s+at /, 'no stack trace');
  }
});

t.test('every operation of the spec is served by some agent kind, and nothing else is', async (t) => {
  const { operations } = loadProtocol();
  const served = new Map<string, string>();
  for (const kind of ['simulator', 'console-proxy'] as const) {
    const agent = await start({ kind });
    for (const op of operations.values()) {
      const res = await call(agent, op.path, {}, { target: 'x' });
      if (res.status !== 404) served.set(op.path, kind);
    }
    const unknown = await call(agent, '/not/in/spec', {});
    t.equal(unknown.status, 404);
    await agent.close();
  }
  const missing = [...operations.values()].filter((op) => !served.has(op.path)).map((op) => op.path);
  t.same(missing, [], 'all spec paths are implemented');
  t.equal(served.get('/console/connect'), 'console-proxy');
  t.equal(served.get('/host/connect'), 'simulator');
});

t.test('agent kinds and backends', async (t) => {
  await t.rejects(start({ kind: 'console-proxy', backend: 'simulator' }), /supports backends real/);
  await t.rejects(start({ kind: 'kvm', secret: '' }), /secret is required/);

  const kvm = await start({ kind: 'kvm' });
  t.equal(kvm.backend, 'simulator', 'kvm defaults to the simulator backend');
  t.ok(kvm.simulator?.hosts);
  t.equal((await call(kvm, '/backupstorage/echo', {})).status, 404, 'a kvm agent serves only kvm paths');
  t.equal((await call(kvm, '/simulator/hosts/config', { hostUuid: 'h' })).status, 200, 'with its simulator control');
  t.equal((await call(kvm, '/simulator/backupstorage/config', { backupStorageUuid: 'b' })).status, 404);
  await kvm.close();

  const bs = await start({ kind: 'backup-storage' });
  t.equal(bs.backend, 'real');
  t.equal(bs.simulator, undefined);
  t.equal((await call(bs, '/simulator/reset', {})).status, 404, 'no control API on a real agent');
  await bs.close();

  const console = await start({ kind: 'console-proxy', consoleProxy: { port: 0 } });
  t.match((await call(console, '/console/ping', {})).body, { success: true, scheme: 'ws', tokens: 0 });
  t.same((await call(console, '/console/connect', { managementNodeUuid: 'mn1' })).body, { success: true });
  t.match((await call(console, '/console/ping', {})).body, { success: true, managementNodeUuid: 'mn1' });
  t.same((await call(console, '/console/echo', {}, { secret: null })).body, { success: true });
  await console.close();
});

t.test('the agent records commands and lists them through /agent/records', async (t) => {
  const agent = await start({ kind: 'virtual-router' });
  t.teardown(() => agent.close());
  await call(agent, '/virtualrouter/init', { uuid: 'vr1' });
  await call(agent, '/virtualrouter/ping', {});
  const all = await call(agent, '/agent/records', {});
  t.same(
    all.body.records.map((r: { path: string }) => r.path),
    ['/virtualrouter/init', '/virtualrouter/ping'],
  );
  const one = await call(agent, '/agent/records', { targetUuid: 'vr1', clear: true });
  t.same(
    one.body.records.map((r: { path: string }) => r.path),
    ['/virtualrouter/init'],
  );
  const after = await call(agent, '/agent/records', { targetUuid: 'vr1' });
  t.same(after.body.records, []);
});

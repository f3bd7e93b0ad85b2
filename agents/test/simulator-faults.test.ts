// Fault knobs of the simulator: deadline-aborted delays, dropped connections, simulated failures, records.
import t from 'tap';
import { call, start, startCmd } from './helpers.js';

t.test('a delayed command is aborted at the caller deadline and recorded as aborted', async (t) => {
  const agent = await start({ kind: 'simulator' });
  t.teardown(() => agent.close());
  await call(agent, '/host/connect', { hostUuid: 'h1' });
  await call(agent, '/simulator/hosts/config', { hostUuid: 'h1', commandDelays: { '/vm/start': 5000 } });

  const began = Date.now();
  const res = await call(agent, '/vm/start', startCmd('vm1'), { target: 'h1', timeoutMs: 300 });
  const took = Date.now() - began;
  t.equal(res.status, 200);
  t.equal(res.body.success, false);
  t.match(res.body.error, /deadline exceeded/);
  t.ok(took >= 280 && took < 2000, `answered at the deadline, not after the delay (${took} ms)`);

  const vms = await call(agent, '/simulator/vms', { hostUuid: 'h1' });
  t.same(vms.body.vms, [], 'the aborted start did not create the VM');

  const records = (await call(agent, '/simulator/hosts/records', { hostUuid: 'h1' })).body.records;
  const aborted = records.find((r: { path: string }) => r.path === '/vm/start');
  t.equal(aborted.outcome, 'aborted');
  t.match(aborted.error, /deadline exceeded/);
  t.ok(aborted.durationMs >= 280);
  t.same(aborted.body.vmInstanceUuid, 'vm1', 'the record keeps the body');

  // Without a deadline the delay simply runs.
  await call(agent, '/simulator/hosts/config', { hostUuid: 'h1', commandDelays: { '/vm/start': 50 } });
  const slow = await call(agent, '/vm/start', startCmd('vm1'), { target: 'h1' });
  t.equal(slow.body.success, true);
});

t.test('a deadline of 0 aborts at once; "*" delays every path', async (t) => {
  const agent = await start({ kind: 'simulator' });
  t.teardown(() => agent.close());
  const zero = await call(agent, '/host/connect', { hostUuid: 'h1' }, { timeoutMs: 0 });
  t.match(zero.body.error, /deadline exceeded/);
  await call(agent, '/simulator/hosts/config', { hostUuid: 'h1', commandDelays: { '*': 5000 } });
  const ping = await call(agent, '/host/ping', {}, { target: 'h1', timeoutMs: 100 });
  t.match(ping.body.error, /deadline exceeded/);
});

t.test('a caller that goes away aborts the command', async (t) => {
  const agent = await start({ kind: 'simulator' });
  t.teardown(() => agent.close());
  await call(agent, '/simulator/hosts/config', { hostUuid: 'h1', commandDelays: { '/vm/start': 5000 } });
  const controller = new AbortController();
  const pending = fetch(`${agent.url}/vm/start`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer test-secret', 'x-zstack-target-uuid': 'h1' },
    body: JSON.stringify(startCmd('vm1')),
    signal: controller.signal,
  });
  setTimeout(() => controller.abort(), 100);
  await t.rejects(pending);
  await new Promise((r) => setTimeout(r, 100));
  const records = (await call(agent, '/simulator/hosts/records', { hostUuid: 'h1' })).body.records;
  t.equal(records.length, 1);
  t.equal(records[0].outcome, 'aborted');
  t.match(records[0].error, /caller closed the connection/);
});

t.test('connected=false drops the connection without a reply, quickly', async (t) => {
  const agent = await start({ kind: 'simulator' });
  t.teardown(() => agent.close());
  await call(agent, '/host/connect', { hostUuid: 'h1' });
  await call(agent, '/host/connect', { hostUuid: 'h2' });
  const cfg = await call(agent, '/simulator/hosts/config', { hostUuid: 'h1', connected: false });
  t.same(cfg.body.config, { connected: false, commandDelays: {}, failCommands: [] });

  const began = Date.now();
  await t.rejects(call(agent, '/host/ping', {}, { target: 'h1', timeoutMs: 5000 }), 'the caller sees a connection error');
  t.ok(Date.now() - began < 1000, 'and sees it at once');
  await t.rejects(call(agent, '/host/echo', {}, { target: 'h1', secret: null }), 'echo of a disconnected host is dropped too');

  const other = await call(agent, '/host/ping', {}, { target: 'h2' });
  t.same(other.body, { success: true, hostUuid: 'h2' }, 'other hosts of the same process still answer');

  const records = (await call(agent, '/simulator/hosts/records', { hostUuid: 'h1' })).body.records;
  t.same(
    records.map((r: { path: string; outcome: string }) => [r.path, r.outcome]),
    [
      ['/host/connect', 'ok'],
      ['/host/ping', 'dropped'],
      ['/host/echo', 'dropped'],
    ],
  );

  await call(agent, '/simulator/hosts/config', { hostUuid: 'h1', connected: true });
  const back = await call(agent, '/host/ping', {}, { target: 'h1' });
  t.same(back.body, { success: true, hostUuid: 'h1' }, 'reconnected');
});

t.test('failCommands answer success:false and are recorded as failed; records can be cleared', async (t) => {
  const agent = await start({ kind: 'simulator' });
  t.teardown(() => agent.close());
  await call(agent, '/host/connect', { hostUuid: 'h1' });
  await call(agent, '/simulator/hosts/config', { hostUuid: 'h1', failCommands: ['/vm/start'] });
  const res = await call(agent, '/vm/start', startCmd('vm1'), { target: 'h1' });
  t.same(res.body, { success: false, error: 'simulated failure of /vm/start' });
  const vms = await call(agent, '/simulator/vms', { hostUuid: 'h1' });
  t.same(vms.body.vms, [], 'a simulated failure does not run the command');

  const partial = await call(agent, '/simulator/hosts/config', { hostUuid: 'h1', commandDelays: { '/vm/stop': 10 } });
  t.same(partial.body.config.failCommands, ['/vm/start'], 'omitted knobs keep their value');

  const read = await call(agent, '/simulator/hosts/records', { hostUuid: 'h1', clear: true });
  t.same(
    read.body.records.map((r: { outcome: string }) => r.outcome),
    ['ok', 'failed'],
  );
  const again = await call(agent, '/simulator/hosts/records', { hostUuid: 'h1' });
  t.same(again.body.records, [], 'cleared');

  await call(agent, '/simulator/hosts/config', { hostUuid: 'h1', failCommands: [] });
  t.equal((await call(agent, '/vm/start', startCmd('vm1'), { target: 'h1' })).body.success, true);
});

t.test('knobs for backup storages and virtual routers; reset forgets everything', async (t) => {
  const agent = await start({ kind: 'simulator' });
  t.teardown(() => agent.close());
  await call(agent, '/simulator/backupstorage/config', { backupStorageUuid: 'bs1', failCommands: ['/backupstorage/ping'] });
  const ping = await call(agent, '/backupstorage/ping', {}, { target: 'bs1' });
  t.equal(ping.body.error, 'simulated failure of /backupstorage/ping');
  t.equal(typeof ping.body.totalCapacity, 'number', 'failures still carry capacities');
  t.equal((await call(agent, '/simulator/backupstorage/records', { backupStorageUuid: 'bs1' })).body.records[0].outcome, 'failed');

  await call(agent, '/simulator/virtualrouter/config', { virtualRouterUuid: 'vr1', connected: false });
  await t.rejects(call(agent, '/virtualrouter/ping', {}, { target: 'vr1' }));
  t.equal((await call(agent, '/simulator/virtualrouter/records', { virtualRouterUuid: 'vr1' })).body.records[0].outcome, 'dropped');

  await call(agent, '/simulator/reset', {});
  t.same((await call(agent, '/virtualrouter/ping', {}, { target: 'vr1' })).body, { success: true });
  t.same((await call(agent, '/simulator/virtualrouter/records', { virtualRouterUuid: 'vr1' })).body.records.length, 1);
  t.equal((await call(agent, '/backupstorage/ping', {}, { target: 'bs1' })).body.success, true);
});

// The other collectors of release notes §4: a cold stop of a VM on an unreachable host, and an image file on an
// unreachable backup storage — both finish later, never lost.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServer, AGENT_SECRET, type TestServer } from '../lib/harness.js';
import { buildWorld } from '../lib/world.js';

async function sim(s: TestServer, path: string, body: object) {
  const res = await fetch(`${s.sim.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${AGENT_SECRET}` },
    body: JSON.stringify(body),
  });
  return (await res.json()) as { records: Array<{ path: string; outcome: string; body: Record<string, unknown> }> };
}

async function waitFor(what: () => Promise<boolean>, ms = 15_000) {
  const until = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await sleep(50);
  }
}

t.test('a cold stop on an unreachable host succeeds; the host-side stop runs on reconnect', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const zs = s.client;
  const w = await buildWorld(zs, { hosts: 1, virtualRouter: false });
  const hostUuid = w.hostUuids[0];
  const vm = (await zs.createVmInstance({ name: 'v', instanceOfferingUuid: w.instanceOfferingUuid, imageUuid: w.imageUuid, l3NetworkUuids: [w.l3NetworkUuid] }))
    .inventory;
  await zs.updateSimulatorHost({ uuid: hostUuid, connected: false });
  const graceful = await zs.stopVmInstance({ uuid: vm.uuid }).catch((e) => e);
  t.equal(graceful.code, 'HOST.1010', 'a graceful stop needs the host');
  const stopped = await zs.stopVmInstance({ uuid: vm.uuid, type: 'cold' });
  t.equal(stopped.inventory.state, 'Stopped');
  const jobs = async () => (await zs.queryGCJob({ q: ['runnerClass=StopVmOnHost'] })).inventories!;
  t.equal((await jobs())[0].status, 'Idle');
  const [host] = (await zs.queryHost({ q: [`uuid=${hostUuid}`] })).inventories!;
  t.equal(host.availableCpuCapacity, host.totalCpuCapacity, 'capacity returned');
  await zs.updateSimulatorHost({ uuid: hostUuid, connected: true });
  await zs.reconnectHost({ uuid: hostUuid });
  await waitFor(async () => (await jobs())[0].status === 'Done');
  t.equal((await jobs())[0].result, 'Succeeded');
  const { records } = await sim(s, '/simulator/hosts/records', { hostUuid });
  t.ok(
    records.some((r) => r.path === '/vm/stop' && r.outcome === 'ok' && r.body.uuid === vm.uuid),
    'stopped on the host',
  );
});

t.test('an image file on an unreachable backup storage is deleted once it answers', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const zs = s.client;
  const w = await buildWorld(zs, { hosts: 1, virtualRouter: false });
  await zs.updateGlobalConfig({ category: 'image', name: 'deletionPolicy', value: 'Direct' });
  await sim(s, '/simulator/backupstorage/config', { backupStorageUuid: w.backupStorageUuid, connected: false });
  await zs.deleteImage({ uuid: w.imageUuid });
  const jobs = async () => (await zs.queryGCJob({ q: ['runnerClass=DeleteImageBits'] })).inventories!;
  t.equal((await jobs()).length, 1);
  t.equal((await jobs())[0].status, 'Idle');
  await zs.triggerGCJob({ uuid: (await jobs())[0].uuid });
  t.equal((await jobs())[0].status, 'Idle', 'still unreachable: the job waits for its next turn');
  t.ok((await jobs())[0].lastError, 'the failure is recorded on the job');
  await sim(s, '/simulator/backupstorage/config', { backupStorageUuid: w.backupStorageUuid, connected: true });
  await zs.triggerGCJob({ uuid: (await jobs())[0].uuid });
  t.equal((await jobs())[0].status, 'Done');
  const { records } = await sim(s, '/simulator/backupstorage/records', { backupStorageUuid: w.backupStorageUuid });
  t.ok(
    records.some((r) => r.path === '/backupstorage/delete' && r.outcome === 'ok'),
    'the file was deleted',
  );
});

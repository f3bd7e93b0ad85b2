// /vm/batchdestroy: the garbage collector's one command per reconnected host — each VM as by /vm/destroy, one result
// per VM in order, absent VMs succeed, bad input refused.
import t from 'tap';
import { call, start, startCmd } from './helpers.js';
import { kvmPart } from '../src/kvm/handlers.js';
import type { KvmBackend } from '../src/kvm/backend.js';

t.test('destroys every named VM and answers one result per VM', async (t) => {
  const agent = await start({ kind: 'simulator' });
  t.teardown(() => agent.close());
  const h = { target: 'h1' };
  await call(agent, '/host/connect', { hostUuid: 'h1' });
  for (const vm of ['vm1', 'vm2', 'vm3']) await call(agent, '/vm/start', startCmd(vm), h);

  const reply = await call(agent, '/vm/batchdestroy', { uuids: ['vm1', 'ghost', 'vm3'] }, h);
  t.equal(reply.status, 200);
  t.same(reply.body, {
    success: true,
    results: [
      { uuid: 'vm1', success: true },
      { uuid: 'ghost', success: true },
      { uuid: 'vm3', success: true },
    ],
  });
  t.same((await call(agent, '/vm/vmsync', {}, h)).body.states, { vm2: 'Running' }, 'only the unnamed VM is left');
  const cap = (await call(agent, '/host/capacity', {}, h)).body;
  t.equal(cap.usedCpu, 2 * 2000, 'capacity of the destroyed VMs returned');

  const records = (await call(agent, '/simulator/hosts/records', { hostUuid: 'h1' })).body.records;
  const batch = records.filter((r: { path: string }) => r.path === '/vm/batchdestroy');
  t.equal(batch.length, 1, 'recorded as one command');
  t.same(batch[0].body.uuids, ['vm1', 'ghost', 'vm3']);
});

t.test('a VM that cannot be destroyed fails alone; bad input is refused', async (t) => {
  const agent = await start({ kind: 'simulator' });
  t.teardown(() => agent.close());
  await call(agent, '/host/connect', { hostUuid: 'h1' });
  // A backend whose destroy fails for one VM (libvirt refusing, say): that VM alone fails.
  const backend = {
    async destroyVm(ctx: { body: { uuid: string } }) {
      if (ctx.body.uuid === 'stuck') throw new Error('virsh destroy stuck: domain is locked');
      return {};
    },
  } as unknown as KvmBackend;
  const handler = kvmPart(backend).handlers.KvmVmBatchDestroy!;
  const ctx = { operationId: 'KvmVmBatchDestroy', path: '/vm/batchdestroy', targetKind: 'host', target: 'h1', signal: new AbortController().signal } as const;
  t.same(await handler({ ...ctx, body: { uuids: ['a', 'stuck', 'b'] } }), {
    results: [
      { uuid: 'a', success: true },
      { uuid: 'stuck', success: false, error: 'virsh destroy stuck: domain is locked' },
      { uuid: 'b', success: true },
    ],
  });
  const aborted = new AbortController();
  aborted.abort(new Error('deadline exceeded'));
  await t.rejects(handler({ ...ctx, signal: aborted.signal, body: { uuids: ['a'] } }), /deadline exceeded/, 'the deadline stops the batch');

  const empty = await call(agent, '/vm/batchdestroy', { uuids: [] }, { target: 'h1' });
  t.equal(empty.status, 400);
  t.match(empty.body, { success: false, error: /uuids/ });
  const missing = await call(agent, '/vm/batchdestroy', {}, { target: 'h1' });
  t.equal(missing.status, 400);
  t.match(missing.body.error, /uuids/);
});

t.test('failCommands fails the whole command', async (t) => {
  const agent = await start({ kind: 'simulator' });
  t.teardown(() => agent.close());
  await call(agent, '/host/connect', { hostUuid: 'h1' });
  await call(agent, '/vm/start', startCmd('vm1'), { target: 'h1' });
  await call(agent, '/simulator/hosts/config', { hostUuid: 'h1', failCommands: ['/vm/batchdestroy'] });
  const reply = await call(agent, '/vm/batchdestroy', { uuids: ['vm1'] }, { target: 'h1' });
  t.equal(reply.body.success, false);
  t.same((await call(agent, '/vm/vmsync', {}, { target: 'h1' })).body.states, { vm1: 'Running' }, 'nothing destroyed');
});

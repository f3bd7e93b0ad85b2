// Reconciliation rules, one difference at a time (server/src/vm/reconcile.ts, README "Reconciliation"): the database
// is put in the state a crash or an outside change leaves, one round runs, and the invariant checker must pass.
import t from 'tap';
import { sql } from 'drizzle-orm';
import { checkInvariants } from '../../server/src/core/invariants.js';
import { rows } from '../../server/src/db/index.js';
import { agentVmReports, Reconciler } from '../../server/src/vm/reconcile.js';
import { AGENT_SECRET, startServer, type TestServer } from '../lib/harness.js';
import { buildWorld, type World } from '../lib/world.js';

const s: TestServer = await startServer();
t.teardown(() => s.close());
const { app, client: zs } = s;
const w: World = await buildWorld(zs, { hosts: 2, virtualRouter: false });
// A reconciler of its own over the server's VM service (the server's runs on its own schedule as well).
const reconciler = new Reconciler(app.services.vms.app, app.services.vms);
const db = app.db;

const check = () => checkInvariants(db, { agents: (uuids) => agentVmReports(app.contextOf('vm'), uuids) });
const newVm = async (name: string) =>
  (await zs.createVmInstance({ name, instanceOfferingUuid: w.instanceOfferingUuid, imageUuid: w.imageUuid, l3NetworkUuids: [w.l3NetworkUuid] })).inventory;
const simulator = async (path: string, body: object) => {
  const res = await fetch(`${s.sim.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${AGENT_SECRET}` },
    body: JSON.stringify(body),
  });
  return res.json() as Promise<{ vms?: Array<{ uuid: string; state: string }> }>;
};
const onHost = async (hostUuid: string) =>
  ((await simulator('/simulator/vms', { hostUuid })).vms ?? []).filter((v) => v.state !== 'Stopped').map((v) => v.uuid);
const vmRow = async (uuid: string) => (await rows<Record<string, unknown>>(db, sql`SELECT state, host_uuid FROM vm_instances WHERE uuid = ${uuid}`))[0];
/** As a crash leaves it: the row changed long ago. */
const age = (uuid: string) => db.execute(sql`UPDATE vm_instances SET last_op_date = now() - interval '1 hour' WHERE uuid = ${uuid}`);
async function until(what: () => Promise<boolean>, ms = 20_000) {
  const end = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

t.test('a healthy world passes the checker, and a round changes nothing', async (t) => {
  await newVm('healthy');
  t.same((await check()).violations, []);
  await reconciler.reconcileAll();
  t.same((await check()).violations, []);
});

t.test('a VM that vanished from its host is Stopped, its capacity returned', async (t) => {
  const vm = await newVm('vanished');
  await simulator('/simulator/vms/update', { hostUuid: vm.hostUuid, vmUuid: vm.uuid, state: 'Absent' });
  await age(vm.uuid);
  const before = await check();
  t.equal(before.figures.missingOnHost, 1, 'the checker sees it');
  await reconciler.reconcileAll();
  t.match(await vmRow(vm.uuid), { state: 'Stopped', host_uuid: null });
  t.same((await check()).violations, []);
});

t.test('a VM running that the database does not know is destroyed on its host through the GC', async (t) => {
  const vm = await newVm('unknown');
  const hostUuid = vm.hostUuid!;
  await db.transaction(async (tx) => {
    await tx.execute(sql`DELETE FROM used_ips WHERE vm_nic_uuid IN (SELECT uuid FROM vm_nics WHERE vm_instance_uuid = ${vm.uuid})`);
    await tx.execute(sql`DELETE FROM vm_nics WHERE vm_instance_uuid = ${vm.uuid}`);
    await tx.execute(sql`DELETE FROM volumes WHERE vm_instance_uuid = ${vm.uuid}`);
    await tx.execute(sql`DELETE FROM vm_instances WHERE uuid = ${vm.uuid}`);
  });
  t.equal((await check()).figures.unknownRunning, 1);
  await reconciler.reconcileAll();
  await until(async () => !(await onHost(hostUuid)).includes(vm.uuid));
  t.pass('gone from the host');
  await reconciler.reconcileAll();
  // The rows were deleted behind the server's back: the storage they held comes back with the start-time recount.
  await reconciler.recomputeAtBoot();
  t.same((await check()).violations, []);
});

t.test('transitional VMs left by a crash are settled to what the host says', async (t) => {
  const running = await newVm('was-stopping');
  const gone = await newVm('was-rebooting');
  await simulator('/simulator/vms/update', { hostUuid: gone.hostUuid, vmUuid: gone.uuid, state: 'Absent' });
  await db.execute(sql`UPDATE vm_instances SET state = 'Stopping' WHERE uuid = ${running.uuid}`);
  await db.execute(sql`UPDATE vm_instances SET state = 'Rebooting' WHERE uuid = ${gone.uuid}`);
  await age(running.uuid);
  await age(gone.uuid);
  t.equal((await check()).figures.transitionalVms, 2);
  await reconciler.reconcileAll();
  t.match(await vmRow(running.uuid), { state: 'Running', host_uuid: running.hostUuid }, 'still runs: Running');
  t.match(await vmRow(gone.uuid), { state: 'Stopped', host_uuid: null }, 'runs nowhere: Stopped');
  t.same((await check()).violations, []);
});

t.test('a creation cut short is adopted where it runs, or rolled back', async (t) => {
  const adopted = await newVm('adopt-me');
  const rolled = await newVm('roll-me-back');
  await simulator('/simulator/vms/update', { hostUuid: rolled.hostUuid, vmUuid: rolled.uuid, state: 'Absent' });
  // As the reservation leaves them: Starting, volumes not yet Ready.
  for (const uuid of [adopted.uuid, rolled.uuid]) {
    await db.execute(sql`UPDATE vm_instances SET state = 'Starting' WHERE uuid = ${uuid}`);
    await db.execute(sql`UPDATE volumes SET status = 'NotInstantiated' WHERE vm_instance_uuid = ${uuid}`);
    await age(uuid);
  }
  await reconciler.reconcileAll();
  t.match(await vmRow(adopted.uuid), { state: 'Running', host_uuid: adopted.hostUuid }, 'found on its host: Running');
  const [root] = await rows<{ status: string }>(db, sql`SELECT status FROM volumes WHERE vm_instance_uuid = ${adopted.uuid} AND type = 'Root'`);
  t.equal(root.status, 'Ready');
  t.equal(await vmRow(rolled.uuid), undefined, 'found nowhere: rolled back (row, NIC, address and capacity gone)');
  t.same((await check()).violations, []);
});

t.test('a destroy cut short is finished; an expunge too', async (t) => {
  const destroying = await newVm('was-destroying');
  await db.execute(sql`UPDATE vm_instances SET state = 'Destroying' WHERE uuid = ${destroying.uuid}`);
  await age(destroying.uuid);
  await reconciler.reconcileAll();
  t.match(await vmRow(destroying.uuid), { state: 'Destroyed', host_uuid: null });
  t.notOk((await onHost(destroying.hostUuid!)).includes(destroying.uuid), 'destroyed on the host');
  await db.execute(sql`UPDATE vm_instances SET state = 'Expunging' WHERE uuid = ${destroying.uuid}`);
  await age(destroying.uuid);
  await reconciler.reconcileAll();
  t.equal(await vmRow(destroying.uuid), undefined, 'expunged');
  t.same((await check()).violations, []);
});

t.test('leaked counters, orphan addresses and VMs on deleted hosts are repaired', async (t) => {
  const vm = await newVm('on-a-ghost-host');
  await db.execute(sql`UPDATE hosts SET available_cpu_capacity = 0, reserved_vm_count = 99 WHERE uuid = ${w.hostUuids[0]}`);
  await db.execute(sql`UPDATE primary_storage SET available_capacity = available_capacity - 12345`);
  const [range] = await rows<{ uuid: string }>(db, sql`SELECT uuid FROM ip_ranges LIMIT 1`);
  await db.execute(sql`INSERT INTO used_ips (uuid, ip_range_uuid, l3_network_uuid, ip, ip_in_long, netmask, gateway, used_for, vm_nic_uuid)
    VALUES ('orphanip0000000000000000000000000', ${range.uuid}, ${w.l3NetworkUuid}, '192.168.201.250', 3232287226, '255.255.252.0', '192.168.200.1', 'UserVm', 'nonexistentnic00000000000000000000')`);
  const bad = await check();
  t.ok(bad.figures.leakedCpu > 0 && bad.figures.leakedStorage === 12345, 'the checker measures the leaks');
  // The VM's host record points at a host that no longer exists.
  await db.execute(sql`UPDATE vm_instances SET host_uuid = 'deletedhost000000000000000000000' WHERE uuid = ${vm.uuid}`);
  await reconciler.reconcileAll();
  await reconciler.recomputeAtBoot(); // the storage counters (only when nothing can be half-way)
  t.match(await vmRow(vm.uuid), { state: 'Stopped', host_uuid: null });
  await simulator('/simulator/vms/update', { hostUuid: vm.hostUuid, vmUuid: vm.uuid, state: 'Absent' });
  await reconciler.reconcileAll();
  t.same((await check()).violations, []);
  t.same(await rows(db, sql`SELECT uuid FROM used_ips WHERE uuid = 'orphanip0000000000000000000000000'`), [], 'the orphan address is freed');
});

t.test('a host reconnecting is reconciled at once', async (t) => {
  const vm = await newVm('reconnect');
  await simulator('/simulator/vms/update', { hostUuid: vm.hostUuid, vmUuid: vm.uuid, state: 'Absent' });
  await age(vm.uuid);
  await zs.reconnectHost({ uuid: vm.hostUuid! });
  t.match(await vmRow(vm.uuid), { state: 'Stopped' });
  t.same((await check()).violations, []);
});

// Races that must keep the invariants (issue 16): each answers what the API answers without the race, and the
// invariant checker passes afterwards (within one reconciliation round where the rule is a repair).
import t from 'tap';
import { sql } from 'drizzle-orm';
import { checkInvariants } from '../../server/src/core/invariants.js';
import { rows } from '../../server/src/db/index.js';
import { retryTransactions } from '../../server/src/db/retry.js';
import { toApiError } from '../../server/src/core/errors.js';
import { agentVmReports } from '../../server/src/vm/reconcile.js';
import { startServer, type TestServer } from '../lib/harness.js';
import { buildWorld, type World } from '../lib/world.js';
import { until } from '../lib/wait.js';

const s: TestServer = await startServer();
t.teardown(() => s.close());
const { app, client: zs } = s;
const w: World = await buildWorld(zs, {
  hosts: 3,
  hostCpu: 32,
  hostMemory: 32 * 2 ** 30,
  virtualRouter: false,
  startIp: '192.168.201.1',
  endIp: '192.168.203.250',
});
await zs.updateGlobalConfig({ category: 'vm', name: 'reconcile.interval', value: '1' });
const check = () => checkInvariants(app.db, { agents: (uuids) => agentVmReports(app.contextOf('vm'), uuids) });
/** The checker passes (repairs take at most a reconciliation round or two). */
async function invariantsHold(ms = 30_000) {
  const end = Date.now() + ms;
  for (;;) {
    const r = await check();
    if (r.ok || Date.now() > end) return r.violations;
    await new Promise((res) => setTimeout(res, 200));
  }
}
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: { code?: string }) => e.code ?? String(e),
  );
const create = (name: string, extra: Record<string, unknown> = {}) =>
  zs.createVmInstance({ name, instanceOfferingUuid: w.instanceOfferingUuid, imageUuid: w.imageUuid, l3NetworkUuids: [w.l3NetworkUuid], ...extra });

t.test('10 concurrent CreateVirtualRouterOffering isDefault=true leave one default', async (t) => {
  const results = await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      codeOf(
        zs.createVirtualRouterOffering({
          name: `vro-${i}`,
          cpuNum: 1,
          memorySize: 256 * 2 ** 20,
          zoneUuid: w.zoneUuid,
          managementNetworkUuid: w.l3NetworkUuid,
          imageUuid: w.imageUuid,
          isDefault: true,
        }),
      ),
    ),
  );
  t.same(results, Array(10).fill('ok'), 'every creation succeeds');
  const defaults = await rows(app.db, sql`SELECT uuid FROM instance_offerings WHERE is_default AND type = 'VirtualRouter' AND zone_uuid = ${w.zoneUuid}`);
  t.equal(defaults.length, 1, 'one default in the zone');
});

t.test('concurrent CreateAccount with one name: one account, the others the argument error', async (t) => {
  const results = await Promise.all(Array.from({ length: 8 }, () => codeOf(zs.createAccount({ name: 'twin', password: 'password' }))));
  t.equal(results.filter((r) => r === 'ok').length, 1);
  t.same(
    results.filter((r) => r !== 'ok'),
    Array(7).fill('SYS.1007'),
  );
});

t.test('DeleteHost while VMs are created on it: none stays on the deleted host', async (t) => {
  const hostUuid = w.hostUuids[0];
  const creations = Array.from({ length: 30 }, (_, i) => codeOf(create(`on-doomed-${i}`, { hostUuid })));
  await new Promise((r) => setTimeout(r, 30));
  const deleted = await codeOf(zs.deleteHost({ uuid: hostUuid }));
  const results = await Promise.all(creations);
  t.equal(deleted, 'ok');
  t.ok(
    results.every((r) => ['ok', 'SYS.1003', 'SYS.1007', 'HOST_ALLOCATION.1001', 'HOST.1010', 'SYS.1006'].includes(r)),
    `answers: ${[...new Set(results)]}`,
  );
  t.notOk(results.includes('SYS.1000'));
  const left = await rows(app.db, sql`SELECT uuid, state FROM vm_instances WHERE host_uuid = ${hostUuid}`);
  t.same(left, [], 'no VM names the deleted host');
  t.same(await invariantsHold(), []);
});

t.test('DeleteL3Network while VMs are created on it: no NIC stays on the deleted L3', async (t) => {
  const l3 = (await zs.createL3Network({ name: 'doomed-l3', l2NetworkUuid: w.l2NetworkUuid })).inventory;
  await zs.addIpRange({ l3NetworkUuid: l3.uuid, name: 'r', startIp: '10.9.0.2', endIp: '10.9.3.250', netmask: '255.255.252.0', gateway: '10.9.0.1' });
  const creations = Array.from({ length: 40 }, (_, i) =>
    codeOf(zs.createVmInstance({ name: `on-doomed-l3-${i}`, instanceOfferingUuid: w.instanceOfferingUuid, imageUuid: w.imageUuid, l3NetworkUuids: [l3.uuid] })),
  );
  await new Promise((r) => setTimeout(r, 30));
  const deleted = await codeOf(zs.deleteL3Network({ uuid: l3.uuid }));
  const results = await Promise.all(creations);
  t.equal(deleted, 'ok');
  t.notOk(results.includes('SYS.1000'), `answers: ${[...new Set(results)]}`);
  t.same(await invariantsHold(), [], 'no NIC on the deleted L3, every address with its NIC');
  t.same(await rows(app.db, sql`SELECT uuid FROM vm_nics WHERE l3_network_uuid = ${l3.uuid}`), []);
});

t.test("a creation waiting on an L3's fence does not land on it once the fence made it Disabled", async (t) => {
  const l3 = (await zs.createL3Network({ name: 'fenced-l3', l2NetworkUuid: w.l2NetworkUuid })).inventory;
  await zs.addIpRange({ l3NetworkUuid: l3.uuid, name: 'r', startIp: '10.8.0.2', endIp: '10.8.0.250', netmask: '255.255.255.0', gateway: '10.8.0.1' });
  // What a deletion's fence does (vm/allocation/fences.ts), held open while a creation comes in.
  const fence = await s.app.database.pool!.connect();
  try {
    await fence.query('BEGIN');
    await fence.query('SELECT uuid FROM l3_networks WHERE uuid = $1 FOR UPDATE', [l3.uuid]);
    await fence.query("UPDATE l3_networks SET state = 'Disabled' WHERE uuid = $1", [l3.uuid]);
    const creation = codeOf(
      zs.createVmInstance({ name: 'behind-fence', instanceOfferingUuid: w.instanceOfferingUuid, imageUuid: w.imageUuid, l3NetworkUuids: [l3.uuid] }),
    );
    // The creation (its checks read the committed Enabled state) comes to wait on the L3's row; then the fence commits.
    await until('the creation waits on the fenced L3 row', async () => {
      const { rows: waiting } = await fence.query(
        "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database() AND pid <> pg_backend_pid()",
      );
      return waiting.length > 0;
    });
    await fence.query('COMMIT');
    const code = await creation;
    t.not(code, 'ok', `the creation is refused (${code})`);
    t.not(code, 'SYS.1000');
  } finally {
    fence.release();
  }
  t.same(await rows(app.db, sql`SELECT uuid FROM vm_nics WHERE l3_network_uuid = ${l3.uuid}`), [], 'no NIC on the Disabled L3');
  t.same(await rows(app.db, sql`SELECT uuid FROM used_ips WHERE l3_network_uuid = ${l3.uuid}`), [], 'no address taken on it');
});

t.test('DeleteL3Network racing AttachNetworkServiceToL3Network: the attach answers SYS.1003 or succeeds', async (t) => {
  const providers = (await zs.queryNetworkServiceProvider({})).inventories!;
  const flat = providers.find((p) => p.type === 'Flat')!;
  for (let i = 0; i < 5; i++) {
    const l3 = (await zs.createL3Network({ name: `race-${i}`, l2NetworkUuid: w.l2NetworkUuid })).inventory;
    const [attach, del] = await Promise.all([
      codeOf(zs.attachNetworkServiceToL3Network({ l3NetworkUuid: l3.uuid, networkServices: { [flat.uuid]: ['DHCP'] } })),
      codeOf(zs.deleteL3Network({ uuid: l3.uuid })),
    ]);
    t.equal(del, 'ok');
    t.ok(attach === 'ok' || attach === 'SYS.1003', `attach answered ${attach}`);
  }
  t.same(
    await rows(
      app.db,
      sql`SELECT l3_network_uuid FROM network_service_l3_refs r WHERE NOT EXISTS (SELECT 1 FROM l3_networks l WHERE l.uuid = r.l3_network_uuid)`,
    ),
    [],
  );
});

t.test('deadlocks are retried; after the retries a clear error, never SYS.1000', async (t) => {
  const [a, b] = w.hostUuids.slice(1);
  // Two transactions locking two rows in opposite orders: PostgreSQL aborts one, which is run again and succeeds.
  let attempts = 0;
  const both = (first: string, second: string) =>
    app.db.transaction(async (tx) => {
      attempts++;
      await tx.execute(sql`UPDATE hosts SET description = 'x' WHERE uuid = ${first}`);
      await new Promise((r) => setTimeout(r, 100));
      await tx.execute(sql`UPDATE hosts SET description = 'y' WHERE uuid = ${second}`);
    });
  await Promise.all([both(a, b), both(b, a)]);
  t.ok(attempts >= 3, `one of them ran again (${attempts} attempts)`);
  t.equal(retryTransactions(app.db), app.db, 'patched once');
  const e = toApiError(Object.assign(new Error('deadlock detected'), { code: '40P01', severity: 'ERROR' }));
  t.match(e.error, { code: 'SYS.1006', details: /deadlock/ });
  t.notMatch(e.error.details!, /UPDATE|SELECT/);
  t.equal(
    toApiError(new Error('x', { cause: { code: '23505', severity: 'ERROR', message: 'duplicate', detail: 'Key (name)=(twin) already exists.' } })).error.code,
    'SYS.1007',
  );
});

t.test('a refused deletion puts the fenced state back', async (t) => {
  // Attached to a cluster: Permissive deletion is refused after the fence made it Disabled.
  const e = await zs.deletePrimaryStorage({ uuid: w.primaryStorageUuid }).catch((x) => x);
  t.equal(e.code, 'SYS.1004');
  const [ps] = await rows<{ state: string }>(app.db, sql`SELECT state FROM primary_storage WHERE uuid = ${w.primaryStorageUuid}`);
  t.equal(ps.state, 'Enabled', 'Enabled again');
  t.equal((await create('after-refused-delete')).inventory.state, 'Running', 'and placements go on');
});

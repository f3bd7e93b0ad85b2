// The crash suite: the management server (its own process, real PostgreSQL, a simulator agent that outlives it) is
// killed with SIGKILL at several moments of 200 concurrent CreateVmInstance (early, middle, late) and of 100
// concurrent DestroyVmInstance, 40 MigrateVm, 40 AttachDataVolumeToVm and the DetachDataVolumeFromVm of what those
// attached, then started again; the invariant checker (server/src/core/invariants.ts) must pass
// within a bounded wait: no VM left transitional, host and storage capacity equal to what the VMs and volumes hold,
// every address with its NIC, and the simulator running exactly the VMs the database places on each host. The figures
// before the restart (what a crash leaves) and the time to converge are printed as comments.
import t from 'tap';
import { ZStackClient } from '../../sdk/src/index.js';
import { startAgent } from '../../agents/src/index.js';
import { AGENT_SECRET, createDatabase } from '../lib/harness.js';
import { buildWorld } from '../lib/world.js';
import { Checker, freePort, startServerProcess, type ServerProcess } from './lib.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CONVERGE_LIMIT_MS = 90_000;

const database = await createDatabase();
const sim = await startAgent({ kind: 'simulator', port: 0, secret: AGENT_SECRET, storageRoot: mkdtempSync(join(tmpdir(), 'zstack-crash-sim-')) });
const port = await freePort();
const dataDir = mkdtempSync(join(tmpdir(), 'zstack-crash-'));
const checker = new Checker(database.url, sim.url);
let server: ServerProcess | undefined;
t.teardown(async () => {
  await server?.stop().catch(() => undefined);
  await checker.close();
  await sim.close();
  await database.drop();
});

const start = async () => (server = await startServerProcess({ databaseUrl: database.url, simulatorUrl: sim.url, port, dataDir }));
const client = (url: string, retry = true) =>
  new ZStackClient({ endpoint: url, accountName: 'admin', password: 'password', pollIntervalMs: 50, ...(retry ? {} : { retry: false }) });

await start();
let zs = client(server!.url);
const world = await buildWorld(zs, {
  hosts: 10,
  hostCpu: 16,
  hostMemory: 32 * 2 ** 30,
  virtualRouter: false,
  startIp: '192.168.201.1',
  endIp: '192.168.203.250',
});
await zs.updateGlobalConfig({ category: 'vm', name: 'reconcile.interval', value: '1' });
await zs.updateGlobalConfig({ category: 'gc', name: 'scanInterval', value: '1' });

const VMS = 'SELECT COUNT(*)::int AS n FROM vm_instances';

/** Kills the server once `condition` (a count query) reaches `n`, while `storm` runs; then restarts and converges. */
async function crashRound(name: string, prepare: () => Promise<{ storm: (zs: ZStackClient) => Array<Promise<unknown>>; condition: string; n: number }>) {
  await t.test(name, async (t) => {
    const { storm, condition, n } = await prepare();
    const stormClient = client(server!.url, false);
    const calls = storm(stormClient).map((p) =>
      p.then(
        () => 'ok',
        () => 'failed',
      ),
    );
    const reached = await checker.waitCount(condition, n);
    await server!.kill9();
    const outcomes = await Promise.all(calls);
    const before = await checker.check();
    t.comment(
      `${name}: killed at ${reached} (${outcomes.filter((o) => o === 'ok').length} calls answered ok); left by the crash: ` +
        `${before.figures.transitionalVms} transitional VMs, ${before.figures.leakedCpu} vCPU and ${before.figures.leakedMemory} bytes of memory ` +
        `and ${before.figures.leakedStorage} bytes of storage counted wrongly, ${before.figures.unknownRunning} VMs running unknown to the database, ` +
        `${before.figures.missingOnHost} placed but not running`,
    );
    await start();
    const { report, ms } = await checker.converge(CONVERGE_LIMIT_MS);
    t.comment(`${name}: after the restart, invariants ${report.ok ? 'hold' : 'still broken'} after ${ms} ms (${report.figures.vms} VMs)`);
    t.same(report.violations, [], 'every invariant holds after the restart');
    zs = client(server!.url);
    // The server works normally afterwards: one more VM can be created and destroyed.
    const vm = (
      await zs.createVmInstance({
        name: `after-${name}`,
        instanceOfferingUuid: world.instanceOfferingUuid,
        imageUuid: world.imageUuid,
        l3NetworkUuids: [world.l3NetworkUuid],
      })
    ).inventory;
    t.equal(vm.state, 'Running');
    await zs.destroyVmInstance({ uuid: vm.uuid });
  });
}

const creations = (count: number, tag: string) => (zs: ZStackClient) =>
  Array.from({ length: count }, (_, i) =>
    zs.createVmInstance({
      name: `${tag}-${i}`,
      instanceOfferingUuid: world.instanceOfferingUuid,
      imageUuid: world.imageUuid,
      l3NetworkUuids: [world.l3NetworkUuid],
    }),
  );

const creationRound = (tag: string, killAfter: number) => async () => ({
  storm: creations(200, tag),
  condition: VMS,
  n: (await checker.count(VMS)) + killAfter,
});
await crashRound('kill -9 early in 200 creations', creationRound('early', 20));
await crashRound('kill -9 midway through 200 creations', creationRound('mid', 100));
await crashRound('kill -9 late in 200 creations', creationRound('late', 185));
await crashRound('kill -9 during 100 destroys', async () => {
  // Enough VMs to destroy: the creation rounds roll most of theirs back.
  const have = await checker.count(`SELECT COUNT(*)::int AS n FROM vm_instances WHERE state = 'Running'`);
  const more = Array.from({ length: Math.max(0, 100 - have) }, (_, i) => i);
  for (let i = 0; i < more.length; i += 20) await Promise.all(more.slice(i, i + 20).map((k) => creations(1, `to-destroy-${k}`)(zs)[0]));
  const running = (await checker.pool.query<{ uuid: string }>(`SELECT uuid FROM vm_instances WHERE state = 'Running' LIMIT 100`)).rows.map((r) => r.uuid);
  const destroyed = `SELECT COUNT(*)::int AS n FROM vm_instances WHERE state IN ('Destroying', 'Destroyed')`;
  return { storm: (zs: ZStackClient) => running.map((uuid) => zs.destroyVmInstance({ uuid })), condition: destroyed, n: (await checker.count(destroyed)) + 30 };
});

/** `count` Running VMs (created in batches of 20 where the earlier rounds left fewer). */
async function runningVms(count: number, tag: string): Promise<Array<{ uuid: string; host_uuid: string }>> {
  const have = await checker.count(`SELECT COUNT(*)::int AS n FROM vm_instances WHERE state = 'Running'`);
  const more = Array.from({ length: Math.max(0, count - have) }, (_, i) => i);
  for (let i = 0; i < more.length; i += 20) await Promise.all(more.slice(i, i + 20).map((k) => creations(1, `${tag}-${k}`)(zs)[0]));
  return (await checker.pool.query(`SELECT uuid, host_uuid FROM vm_instances WHERE state = 'Running' ORDER BY uuid LIMIT ${count}`)).rows;
}

/** Every simulated host answers `path` after `ms` (so the kill lands while commands are in flight); {} clears. */
async function delayOnHosts(delays: Record<string, number>) {
  for (const uuid of world.hostUuids) await zs.updateSimulatorHost({ uuid, commandDelays: delays });
}

await crashRound('kill -9 during 40 live migrations', async () => {
  const vms = await runningVms(40, 'to-migrate');
  await delayOnHosts({ '/vm/migrate': 300 });
  const origins = vms.map((v) => `('${v.uuid}', '${v.host_uuid}')`).join(', ');
  // Started (Migrating) or done (on another host).
  const moved = `SELECT COUNT(*)::int AS n FROM vm_instances v JOIN (VALUES ${origins}) AS o(uuid, host) ON o.uuid = v.uuid
                  WHERE v.state = 'Migrating' OR v.host_uuid IS DISTINCT FROM o.host`;
  return { storm: (zs: ZStackClient) => vms.map((v) => zs.migrateVm({ vmInstanceUuid: v.uuid })), condition: moved, n: 15 };
});

await crashRound('kill -9 during 40 data volume attachments', async () => {
  await delayOnHosts({});
  const vms = await runningVms(40, 'to-attach');
  const offering = (await zs.createDiskOffering({ name: 'crash-data', diskSize: 2 ** 30 })).inventory;
  const volumes: string[] = [];
  for (let i = 0; i < vms.length; i += 20) {
    const batch = vms.slice(i, i + 20).map((_, k) => zs.createDataVolume({ name: `crash-data-${i + k}`, diskOfferingUuid: offering.uuid }));
    for (const v of await Promise.all(batch)) volumes.push(v.inventory.uuid);
  }
  await delayOnHosts({ '/vm/attachdatavolume': 300 });
  const attached = `SELECT COUNT(*)::int AS n FROM volumes WHERE name LIKE 'crash-data-%' AND vm_instance_uuid IS NOT NULL`;
  return {
    storm: (zs: ZStackClient) => volumes.map((volumeUuid, i) => zs.attachDataVolumeToVm({ volumeUuid, vmInstanceUuid: vms[i].uuid })),
    condition: attached,
    n: 15,
  };
});
await crashRound('kill -9 during data volume detachments', async () => {
  await delayOnHosts({});
  const attachedRows = await checker.pool.query<{ uuid: string }>(
    `SELECT v.uuid FROM volumes v JOIN vm_instances m ON m.uuid = v.vm_instance_uuid
      WHERE v.name LIKE 'crash-data-%' AND v.status = 'Ready' AND m.state = 'Running'`,
  );
  const volumes = attachedRows.rows.map((r) => r.uuid);
  if (volumes.length < 3) throw new Error(`the attachment round left ${volumes.length} volumes attached: nothing to detach`);
  await delayOnHosts({ '/vm/detachdatavolume': 300 });
  const detached = `SELECT COUNT(*)::int AS n FROM volumes WHERE name LIKE 'crash-data-%' AND vm_instance_uuid IS NULL`;
  return {
    storm: (zs: ZStackClient) => volumes.map((uuid) => zs.detachDataVolumeFromVm({ uuid })),
    condition: detached,
    n: (await checker.count(detached)) + Math.floor(volumes.length / 3),
  };
});
await t.test('npm run check:invariants: the operator script agrees', async (t) => {
  await delayOnHosts({});
  const { execFile } = await import('node:child_process');
  const run = (env: Record<string, string>) =>
    new Promise<{ code: number; out: string }>((res) =>
      execFile(
        process.execPath,
        ['--import', 'tsx', 'server/scripts/check-invariants.ts'],
        { cwd: join(import.meta.dirname, '../..'), env: { ...process.env, ...env } },
        (e, stdout, stderr) => res({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
      ),
    );
  const ok = await run({ DATABASE_URL: database.url, ZSTACK_SIMULATOR_URL: sim.url, ZSTACK_AGENT_SECRET: AGENT_SECRET });
  t.equal(ok.code, 0, ok.out);
  t.match(ok.out, /all invariants hold/);
  // With the server stopped (it would repair this within a reconciliation round).
  await server!.stop();
  await checker.pool.query(`UPDATE hosts SET available_cpu_capacity = 0`);
  const bad = await run({ DATABASE_URL: database.url });
  t.equal(bad.code, 1);
  t.match(bad.out, /VIOLATION host capacity differs/);
  t.equal((await run({ DATABASE_URL: '' })).code, 2, 'no database named: usage error');
});

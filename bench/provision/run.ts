// Provisioning throughput: N VMs on M simulated hosts through the SDK at concurrency C, on real PostgreSQL; then a
// check in the database that no IP, MAC or capacity was double-booked.
//
//   npx tsx bench/provision/run.ts [--vms 1000] [--hosts 100] [--concurrency 64]
//   (or BENCH_VMS / BENCH_HOSTS / BENCH_CONCURRENCY; BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof";
//   BENCH_SETUP_SQL="…" runs on the bench database once the world is built, for what-if experiments; the bench
//   database is ANALYZEd once the world is built unless BENCH_ANALYZE=0)
//
// The server runs as its own process (server/src/main.ts with DATABASE_URL on a fresh database; it spawns its
// simulator agent), the SDK clients run here. World: Flat DHCP, one /16 range, hosts added 16 at a time.
// Prints progress on stderr and one JSON line on stdout.
import pg from 'pg';
import {
  DATABASE_TRANSPORT,
  arg,
  buildBenchWorld,
  cpuCalibrationMs,
  client,
  cpuSeconds,
  createDatabase,
  load,
  pgBackendCpuSeconds,
  pgClusterCpuSeconds,
  pool,
  rssMb,
  sampleActivity,
  startServerProcess,
  stats,
} from './lib.js';

const VMS = arg('vms', 'BENCH_VMS', 1000);
const HOSTS = arg('hosts', 'BENCH_HOSTS', 100);
const CONCURRENCY = arg('concurrency', 'BENCH_CONCURRENCY', 64);

const loadBefore = load();
const calibrationBefore = cpuCalibrationMs();
const database = await createDatabase('zsbench_prov');
const server = await startServerProcess(database.url).catch(async (e) => {
  await database.drop();
  throw e;
});
const result: Record<string, unknown> = { bench: 'provision', vms: VMS, hosts: HOSTS, concurrency: CONCURRENCY, database: DATABASE_TRANSPORT, loadBefore };
try {
  const zs = client(server.url);
  const t0 = Date.now();
  const w = await buildBenchWorld(zs, { hosts: HOSTS });
  result.worldSetupS = (Date.now() - t0) / 1000;
  result.hostsAddedPerS = Math.round((HOSTS / ((Date.now() - t0) / 1000)) * 10) / 10;
  console.error(`world ready: ${HOSTS} hosts in ${result.worldSetupS} s`);
  if (process.env.BENCH_ANALYZE !== '0') {
    // Statistics as autovacuum leaves them on a server that has run a while (it analyzes a table after enough of it
    // changed, checking once a minute): without them the host pick of a fresh database sorts every host instead of
    // walking the reserved_vm_count index until autovacuum's first pass. BENCH_ANALYZE=0 skips this.
    const c = new pg.Client({ connectionString: database.url });
    await c.connect();
    await c.query('ANALYZE');
    await c.end();
    result.analyzedBeforeRun = true;
  }
  if (process.env.BENCH_SETUP_SQL) {
    // What-if experiments (e.g. a constraint dropped, an index added): run on the bench database before the VMs.
    const c = new pg.Client({ connectionString: database.url });
    await c.connect();
    await c.query(process.env.BENCH_SETUP_SQL);
    await c.end();
    result.setupSql = process.env.BENCH_SETUP_SQL;
  }

  const cpu0 = {
    server: cpuSeconds(server.pid),
    sim: cpuSeconds(server.simulatorPid!),
    bench: process.cpuUsage(),
    pg: await pgBackendCpuSeconds(database.name),
    pgCluster: pgClusterCpuSeconds(),
  };
  const ends: number[] = [];
  const latencies: number[] = [];
  const errors = new Map<string, number>();
  const stopSampling = sampleActivity(database.name);
  const started = Date.now();
  const progress = setInterval(() => {
    const s = (Date.now() - started) / 1000;
    console.error(
      `${s.toFixed(0)} s: ${ends.length}/${VMS} created (${(ends.length / s).toFixed(1)}/s), ${[...errors.values()].reduce((a, b) => a + b, 0)} errors, load ${load().join(' ')}`,
    );
  }, 10_000);
  await pool(VMS, CONCURRENCY, async (i) => {
    const t = Date.now();
    try {
      await zs.createVmInstance({ name: `vm-${i}`, instanceOfferingUuid: w.instanceOfferingUuid, imageUuid: w.imageUuid, l3NetworkUuids: [w.l3NetworkUuid] });
      const now = Date.now();
      ends.push(now - started);
      latencies.push(now - t);
    } catch (e) {
      const code = (e as { code?: string }).code ?? (e as Error).message;
      errors.set(code, (errors.get(code) ?? 0) + 1);
      if ((errors.get(code) ?? 0) <= 3) console.error(`vm-${i} failed:`, (e as Error).message);
    }
  });
  clearInterval(progress);
  result.pgBackendsMean = await stopSampling();
  const elapsed = (Date.now() - started) / 1000;
  const bench = process.cpuUsage(cpu0.bench);
  const cpu = {
    serverS: Math.round((cpuSeconds(server.pid) - cpu0.server) * 10) / 10,
    simulatorS: Math.round((cpuSeconds(server.simulatorPid!) - cpu0.sim) * 10) / 10,
    postgresS: Math.round(((await pgBackendCpuSeconds(database.name)) - cpu0.pg) * 10) / 10,
    // The whole cluster, exited backends and background workers included (postgresS misses a backend that exits).
    postgresClusterS: Math.round((pgClusterCpuSeconds() - cpu0.pgCluster) * 10) / 10,
    benchClientS: Math.round(((bench.user + bench.system) / 1e6) * 10) / 10,
  };
  // Sustained: the rate between the 10th and the 90th percentile completion (ramp-up and tail left out).
  ends.sort((a, b) => a - b);
  const lo = ends[Math.floor(ends.length * 0.1)];
  const hi = ends[Math.floor(ends.length * 0.9)];
  Object.assign(result, {
    created: ends.length,
    failed: Object.fromEntries(errors),
    elapsedS: elapsed,
    vmsPerSOverall: Math.round((ends.length / elapsed) * 10) / 10,
    vmsPerSSustained: Math.round(((Math.floor(ends.length * 0.9) - Math.floor(ends.length * 0.1)) / ((hi - lo) / 1000)) * 10) / 10,
    latencyMs: stats(latencies),
    cpuSecondsDuringRun: cpu,
    // CPU per created VM: what the machine's load does not change much (unlike VMs/s).
    cpuMsPerVm: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k.replace(/S$/, ''), Math.round(((v * 1000) / Math.max(1, ends.length)) * 10) / 10])),
    serverRssMb: rssMb(server.pid),
    simulatorRssMb: rssMb(server.simulatorPid!),
    loadAfter: load(),
    cpuCalibrationMs: [calibrationBefore, cpuCalibrationMs()],
  });

  // ---- the double-booking check, straight from the database
  const db = new pg.Client({ connectionString: database.url });
  await db.connect();
  const one = async (text: string, params: unknown[] = []) => (await db.query(text, params)).rows[0];
  const nics = await one(
    `SELECT count(*)::int AS nics, count(DISTINCT ip)::int AS distinct_ips, count(DISTINCT mac)::int AS distinct_macs,
            count(DISTINCT used_ip_uuid)::int AS distinct_used_ips FROM vm_nics WHERE l3_network_uuid = $1`,
    [w.l3NetworkUuid],
  );
  const usedIps = await one(`SELECT count(*)::int AS n, count(DISTINCT ip_in_long)::int AS distinct_n FROM used_ips WHERE l3_network_uuid = $1`, [
    w.l3NetworkUuid,
  ]);
  const orphanIps = await one(
    `SELECT count(*)::int AS n FROM used_ips u WHERE u.l3_network_uuid = $1 AND NOT EXISTS (SELECT 1 FROM vm_nics n WHERE n.used_ip_uuid = u.uuid)`,
    [w.l3NetworkUuid],
  );
  const vms = await one(`SELECT count(*) FILTER (WHERE state = 'Running')::int AS running, count(*)::int AS total FROM vm_instances WHERE type = 'UserVm'`);
  // Per host: what the host row says is taken must equal what its Running VMs hold.
  const hostMismatch = await db.query(`
    SELECT h.uuid, h.total_cpu_capacity - h.available_cpu_capacity AS cpu_taken, coalesce(v.cpu, 0) AS cpu_vms,
           h.total_memory_capacity - h.available_memory_capacity AS mem_taken, coalesce(v.mem, 0) AS mem_vms,
           h.available_cpu_capacity, h.available_memory_capacity
      FROM hosts h
      LEFT JOIN (SELECT host_uuid, sum(cpu_num)::bigint AS cpu, sum(memory_size)::bigint AS mem FROM vm_instances
                  WHERE host_uuid IS NOT NULL GROUP BY host_uuid) v ON v.host_uuid = h.uuid
     WHERE h.total_cpu_capacity - h.available_cpu_capacity <> coalesce(v.cpu, 0)
        OR h.total_memory_capacity - h.available_memory_capacity <> coalesce(v.mem, 0)
        OR h.available_cpu_capacity < 0 OR h.available_memory_capacity < 0`);
  const hostSpread = await one(`
    SELECT min(n)::int AS min, max(n)::int AS max FROM (
      SELECT h.uuid, count(v.uuid) AS n FROM hosts h LEFT JOIN vm_instances v ON v.host_uuid = h.uuid GROUP BY h.uuid) x`);
  const ps = await one(
    `SELECT p.total_capacity - p.available_capacity AS taken, (SELECT coalesce(sum(size), 0)::bigint FROM volumes WHERE primary_storage_uuid = p.uuid) AS volumes
       FROM primary_storage p WHERE p.uuid = $1`,
    [w.primaryStorageUuid],
  );
  await db.end();
  const check = {
    nics: nics.nics,
    distinctIps: nics.distinct_ips,
    distinctMacs: nics.distinct_macs,
    usedIps: usedIps.n,
    distinctUsedIps: usedIps.distinct_n,
    usedIpsWithoutNic: orphanIps.n,
    runningVms: vms.running,
    vmRows: vms.total,
    hostsWithCapacityMismatch: hostMismatch.rowCount,
    vmsPerHostMinMax: [hostSpread.min, hostSpread.max],
    primaryStorageTakenBytes: Number(ps.taken),
    primaryStorageVolumeBytes: Number(ps.volumes),
  };
  const ok =
    check.nics === check.distinctIps &&
    check.nics === check.distinctMacs &&
    check.nics === check.usedIps &&
    check.usedIps === check.distinctUsedIps &&
    check.usedIpsWithoutNic === 0 &&
    check.runningVms === ends.length &&
    check.vmRows === ends.length &&
    check.nics === ends.length &&
    check.hostsWithCapacityMismatch === 0 &&
    check.primaryStorageTakenBytes === check.primaryStorageVolumeBytes;
  result.check = { ok, ...check };
  if (hostMismatch.rowCount) console.error('capacity mismatches (first 5):', hostMismatch.rows.slice(0, 5));
} finally {
  await server.stop();
  await database.drop();
}
console.log(JSON.stringify(result));

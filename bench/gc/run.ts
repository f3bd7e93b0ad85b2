// Garbage collector catch-up: K running VMs on H simulated hosts; all hosts disconnected (UpdateSimulatorHost
// connected=false); every VM destroyed through DestroyVmInstance (the API succeeds, each leaves a DestroyVmOnHost GC
// job); then all hosts reconnected (connected=true, then ReconnectHost on each, all at once): the time until every
// job is Done, the server's CPU per job, and a check that each job Succeeded once and the simulator destroyed every
// VM exactly once (by /vm/destroy or inside a /vm/batchdestroy).
//
//   npx tsx bench/gc/run.ts [--jobs 1000] [--hosts 50] [--concurrency 64] [--seed-api 0|1]
//
// VMs are seeded (bench/gc/seed.ts: one per host through CreateVmInstance, the rest cloned in SQL and started on the
// simulator) unless --seed-api 1 creates every VM through the API (≈6-11 min for 10,000 here).
// The server and the simulator agent run as their own processes (the simulator spawned here with a known secret, so
// its command records can be read). Prints phase timings on stderr and one JSON line.
import pg from 'pg';
import { seedVms } from './seed.js';
import {
  DATABASE_TRANSPORT,
  arg,
  buildBenchWorld,
  client,
  cpuSeconds,
  createDatabase,
  load,
  pgBackendCpuSeconds,
  pool,
  rssMb,
  sampleActivity,
  simulatorEnv,
  startServerProcess,
  startSimulatorProcess,
  stats,
} from '../provision/lib.js';

const JOBS = arg('jobs', 'BENCH_JOBS', 1000);
const HOSTS = arg('hosts', 'BENCH_HOSTS', 50);
const CONCURRENCY = arg('concurrency', 'BENCH_CONCURRENCY', 64);
const SEED_API = arg('seed-api', 'BENCH_SEED_API', 0) === 1;

const loadBefore = load();
const database = await createDatabase('zsbench_gc');
const sim = await startSimulatorProcess();
const server = await startServerProcess(database.url, simulatorEnv(sim)).catch(async (e) => {
  await sim.stop();
  await database.drop();
  throw e;
});
const db = new pg.Client({ connectionString: database.url });
const result: Record<string, unknown> = {
  bench: 'gc',
  jobs: JOBS,
  hosts: HOSTS,
  concurrency: CONCURRENCY,
  seed: SEED_API ? 'api' : 'clone',
  database: DATABASE_TRANSPORT,
  loadBefore,
};
const phase = (name: string, t0: number) => {
  const s = Math.round((Date.now() - t0) / 100) / 10;
  console.error(`${name}: ${s} s (load ${load().join(' ')})`);
  return s;
};
try {
  await db.connect();
  const zs = client(server.url);
  let t = Date.now();
  const w = await buildBenchWorld(zs, { hosts: HOSTS, hostCpu: Math.max(8, Math.ceil((JOBS / HOSTS) * 2)) });
  result.worldS = phase('world', t);

  // Capacity per host is ample, so LeastVmPreferred spreads the VMs over all hosts.
  t = Date.now();
  let vms: string[] = [];
  if (SEED_API) {
    await pool(JOBS, CONCURRENCY, async (i) => {
      const vm = await zs.createVmInstance({
        name: `vm-${i}`,
        instanceOfferingUuid: w.instanceOfferingUuid,
        imageUuid: w.imageUuid,
        l3NetworkUuids: [w.l3NetworkUuid],
      });
      vms.push(vm.inventory.uuid);
    });
  } else {
    const seeded = await seedVms(zs, db, sim, w, JOBS);
    vms = seeded.vms;
    result.seedS = { templates: seeded.templatesS, clone: seeded.cloneS, simulator: seeded.simulatorS };
  }
  if (vms.length !== JOBS) throw new Error(`expected ${JOBS} running VMs, have ${vms.length}`);
  result.createVmsS = phase(`${JOBS} VMs created`, t);

  t = Date.now();
  await pool(HOSTS, 16, async (i) => void (await zs.updateSimulatorHost({ uuid: w.hostUuids[i], connected: false })));
  result.disconnectS = phase('hosts disconnected in the simulator', t);

  t = Date.now();
  await pool(JOBS, CONCURRENCY, async (i) => void (await zs.destroyVmInstance({ uuid: vms[i] })));
  const destroyS = phase(`${JOBS} VMs destroyed`, t);
  result.destroyS = destroyS;
  result.destroysPerS = Math.round((JOBS / destroyS) * 10) / 10;
  const count = async (where: string) =>
    (await db.query(`SELECT count(*)::int AS n FROM gc_jobs WHERE runner = 'DestroyVmOnHost' AND ${where}`)).rows[0].n as number;
  result.idleJobsBeforeReconnect = await count(`status = 'Idle'`);
  const disconnected = (await db.query(`SELECT count(*)::int AS n FROM hosts WHERE status = 'Disconnected'`)).rows[0].n;
  result.hostsDisconnectedBeforeReconnect = disconnected;
  if (result.idleJobsBeforeReconnect !== JOBS) console.error(`expected ${JOBS} Idle jobs, found ${result.idleJobsBeforeReconnect}`);

  // ---- reconnect everything and time the catch-up
  await pool(HOSTS, 16, async (i) => void (await zs.updateSimulatorHost({ uuid: w.hostUuids[i], connected: true })));
  const cpu0 = { server: cpuSeconds(server.pid), sim: cpuSeconds(sim.pid), pg: await pgBackendCpuSeconds(database.name) };
  const stopSampling = sampleActivity(database.name, 50);
  const t0 = Date.now();
  const reconnectMs: number[] = [];
  const reconnects = pool(HOSTS, HOSTS, async (i) => {
    await zs.reconnectHost({ uuid: w.hostUuids[i] });
    reconnectMs.push(Date.now() - t0);
  }).then(() => Date.now() - t0);
  const timeline: Array<[number, number]> = [];
  let done = 0;
  while (done < JOBS && Date.now() - t0 < 600_000) {
    done = await count(`status = 'Done'`);
    timeline.push([Date.now() - t0, done]);
    if (done < JOBS) await new Promise((r) => setTimeout(r, 50));
  }
  const allDoneMs = Date.now() - t0;
  result.reconnectHostCallsMs = await reconnects;
  result.reconnectHostDoneMs = stats(reconnectMs);
  result.pgBackendsMean = await stopSampling();
  result.allJobsDoneMs = allDoneMs;
  result.jobsPerS = Math.round((JOBS / (allDoneMs / 1000)) * 10) / 10;
  // When the first job finished, and when half of them had.
  result.firstDoneMs = timeline.find(([, n]) => n > 0)?.[0];
  result.halfDoneMs = timeline.find(([, n]) => n >= JOBS / 2)?.[0];
  const cpu = {
    server: cpuSeconds(server.pid) - cpu0.server,
    simulator: cpuSeconds(sim.pid) - cpu0.sim,
    postgres: (await pgBackendCpuSeconds(database.name)) - cpu0.pg,
  };
  result.cpuSecondsDuringCatchUp = Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, Math.round(v * 10) / 10]));
  // Includes the ReconnectHost calls themselves (H of them), which run in the same window.
  result.cpuMsPerJob = Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, Math.round((v * 1000 * 100) / JOBS) / 100]));
  console.error(`all ${done}/${JOBS} jobs Done after ${allDoneMs} ms (ReconnectHost calls took ${result.reconnectHostCallsMs} ms)`);

  // ---- check: every job Succeeded once, and the simulator destroyed every VM exactly once
  const outcomes = (
    await db.query(`SELECT status, result, count(*)::int AS n, max(attempts)::int AS max_attempts FROM gc_jobs WHERE runner = 'DestroyVmOnHost' GROUP BY 1, 2`)
  ).rows;
  const destroyed = new Map<string, number>();
  for (const hostUuid of w.hostUuids) {
    const res = await fetch(`${sim.url}/simulator/hosts/records`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${sim.secret}` },
      body: JSON.stringify({ hostUuid }),
    });
    const { records } = (await res.json()) as { records: Array<{ path: string; outcome: string; body: { uuid?: string; uuids?: string[] } }> };
    for (const r of records) {
      if (r.outcome !== 'ok') continue;
      const uuids = r.path === '/vm/destroy' ? [r.body.uuid!] : r.path === '/vm/batchdestroy' ? r.body.uuids! : [];
      for (const u of uuids) destroyed.set(u, (destroyed.get(u) ?? 0) + 1);
    }
    result.agentCommands =
      ((result.agentCommands as number | undefined) ?? 0) + records.filter((r) => r.path === '/vm/destroy' || r.path === '/vm/batchdestroy').length;
  }
  const exactlyOnce = vms.filter((v) => destroyed.get(v) === 1).length;
  result.check = {
    outcomes,
    vmsDestroyedOnHostExactlyOnce: exactlyOnce,
    ok: exactlyOnce === JOBS && outcomes.length === 1 && outcomes[0].status === 'Done' && outcomes[0].result === 'Succeeded' && outcomes[0].n === JOBS,
  };
  result.serverRssMb = rssMb(server.pid);
  result.loadAfter = load();
} finally {
  await db.end().catch(() => undefined);
  await server.stop();
  await sim.stop();
  await database.drop();
}
console.log(JSON.stringify(result));

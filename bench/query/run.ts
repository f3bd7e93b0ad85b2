// Query throughput: QueryVmInstance with a condition and limit=100 over N VMs, at C concurrent connections
// (autocannon), side by side with a bare fastify route answering the same bytes; the ratio, p99 latencies, and the
// server's RSS with N VMs loaded.
//
//   npx tsx bench/query/run.ts [--vms 100000] [--connections 64] [--duration 15] [--rounds 2]
//   BENCH_NO_CACHE=1 …    the server with its reply cache and row cache off (every page computed);
//   BENCH_NO_CACHE=reply … the reply cache alone off
//   BENCH_TRY_INDEX=1 …   then adds indexes for the default sort on the bench database and measures again
//   BENCH_KEEP_DB=1 …     keeps the database afterwards (for EXPLAIN with psql)
//   BENCH_ONLY=varied …   the varied workload alone
//   BENCH_SERVER_FROM=src … the server from its sources through tsx instead of as `npm start` runs it (dist/)
//   BENCH_SERVER_ROOT=<checkout> …  the server of another checkout (the previous commit): a before/after pair of runs
//                         (not two servers on one database: a second node starting reconciles the inserted VMs;
//                         the bench's own server has its periodic reconciliation set to once a day)
//
// Workloads: the two conditions (identical requests: the reply cache answers) and a varied one (a different `q` on
// every request: `state=Running` plus `name!=vm-<random>`, every request computes its page).
//
// The VMs are inserted straight into the database (vm_instances + one vm_nics + one used_ips + one root volume each,
// referencing a real zone, cluster, hosts, image, offering, L3, IP range and primary storage built through the SDK),
// 90 % Running, 10 % Stopped. Each condition is measured `rounds` times, ours and the bare route alternating, after a
// 3 s warm-up of each; the medians are reported. Prints one JSON line.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import pg from 'pg';
import {
  DATABASE_TRANSPORT,
  arg,
  buildBenchWorld,
  client,
  cpuSeconds,
  createDatabase,
  load,
  pgBackendCpuSeconds,
  rssMb,
  startServerProcess,
} from '../provision/lib.js';

const VMS = arg('vms', 'BENCH_VMS', 100_000);
const CONNECTIONS = arg('connections', 'BENCH_CONNECTIONS', 64);
const DURATION = arg('duration', 'BENCH_DURATION', 15);
const ROUNDS = arg('rounds', 'BENCH_ROUNDS', 2);
const HOSTS = 10;

const loadBefore = load();
const database = await createDatabase('zsbench_query');
// BENCH_NO_CACHE=1: the server without its reply and row caches, to measure the computing path; =reply: the reply
// cache alone off.
const CACHE = !process.env.BENCH_NO_CACHE;
const ROW_CACHE = CACHE || process.env.BENCH_NO_CACHE === 'reply';
const cacheEnv = { ...(CACHE ? {} : { ZSTACK_QUERY_CACHE_MB: '0' }), ...(ROW_CACHE ? {} : { ZSTACK_ROW_CACHE_MB: '0' }) };
// BENCH_SERVER_ROOT=<checkout>: the server of another checkout (the previous commit: a before/after pair of runs).
const server = await startServerProcess(database.url, cacheEnv, process.env.BENCH_SERVER_ROOT || undefined).catch(async (e) => {
  await database.drop();
  throw e;
});
const tmp = mkdtempSync(join(tmpdir(), 'zstack-bench-query-'));
let bare: { url: string; pid: number; stop(): Promise<void> } | undefined;
const result: Record<string, unknown> = {
  bench: 'query',
  replyCache: CACHE,
  rowCache: ROW_CACHE,
  vms: VMS,
  connections: CONNECTIONS,
  durationS: DURATION,
  rounds: ROUNDS,
  database: DATABASE_TRANSPORT,
  loadBefore,
};
try {
  const zs = client(server.url);
  const w = await buildBenchWorld(zs, { hosts: HOSTS, cidr: '10.0.0.0/14' });
  // The VMs below are rows only: no simulated host runs them, and the server's reconciliation would stop them
  // while the bench runs (each such write drops cached replies). One round a day keeps it out of the measurement.
  await zs.updateGlobalConfig({ category: 'vm', name: 'reconcile.interval', value: '86400' });
  const db = new pg.Client({ connectionString: database.url });
  await db.connect();
  const t0 = Date.now();
  await insertVms(db, w);
  result.loadSeconds = (Date.now() - t0) / 1000;
  await db.end();
  // The server has not seen the rows yet; let it settle before reading its RSS.
  await new Promise((r) => setTimeout(r, 2000));
  result.serverRssMbLoadedIdle = rssMb(server.pid);

  await zs.login();
  const headers = { authorization: `OAuth ${zs.sessionUuid}` };
  result.serverRoot = process.env.BENCH_SERVER_ROOT;
  const conditions = [`state=Running`, `hostUuid=${w.hostUuids[3]}`];
  // The varied workload: a different `q` on every request (a UI, a CLI, another tenant): the reply cache never
  // answers, every request computes its page (100 Running VMs, as the first condition).
  const VARIED = 'state=Running&name!=vm-<random>';
  // BENCH_ONLY=varied: the varied workload alone (a quicker pair when only the computing path changed).
  const workloads = process.env.BENCH_ONLY === 'varied' ? [VARIED] : [...conditions, VARIED];
  const perCondition: Record<string, unknown>[] = [];
  const plans = await explain(database.url, conditions);
  for (const q of workloads) {
    const varied = q === VARIED;
    const path = varied
      ? `/zstack/v1/vm-instances?q=${encodeURIComponent('state=Running')}&limit=100`
      : `/zstack/v1/vm-instances?q=${encodeURIComponent(q)}&limit=100`;
    const pathOf = varied ? () => `${path}&q=${encodeURIComponent(`name!=vm-${Math.floor(Math.random() * 1e9)}`)}` : () => path;
    // The reply's bytes, which the bare route will serve; and a check that it is what it should be.
    const res = await fetch(server.url + pathOf(), { headers });
    const bytes = Buffer.from(await res.arrayBuffer());
    const reply = JSON.parse(bytes.toString()) as { inventories: Array<{ vmNics: unknown[]; allVolumes: unknown[]; state: string }> };
    if (res.status !== 200 || reply.inventories.length !== 100 || reply.inventories.some((i) => i.vmNics.length !== 1 || i.allVolumes.length !== 1)) {
      throw new Error(`unexpected reply to ${path}: HTTP ${res.status}, ${bytes.subarray(0, 300).toString()}`);
    }
    const file = join(tmp, 'reply.json');
    writeFileSync(file, bytes);
    bare = await startBare(file);

    const ours: Run[] = [];
    const theirs: Run[] = [];
    const measure = async (target: { url: string; pid: number }, into: Run[]) => {
      const cpu0 = { s: cpuSeconds(target.pid), pg: await pgBackendCpuSeconds(database.name) };
      const o = await cannon(target.url, pathOf, headers, DURATION);
      o.serverCpuMsPerRequest = round2(((cpuSeconds(target.pid) - cpu0.s) * 1000) / o.requests);
      o.postgresCpuMsPerRequest = round2((((await pgBackendCpuSeconds(database.name)) - cpu0.pg) * 1000) / o.requests);
      into.push(o);
      return o;
    };
    await cannon(server.url, pathOf, headers, 3);
    await cannon(bare.url, () => path, {}, 3);
    for (let r = 0; r < ROUNDS; r++) {
      const o = await measure(server, ours);
      const b0 = cpuSeconds(bare.pid);
      const x = await cannon(bare.url, () => path, {}, DURATION);
      x.serverCpuMsPerRequest = round2(((cpuSeconds(bare.pid) - b0) * 1000) / x.requests);
      theirs.push(x);
      console.error(`${q} round ${r + 1}: ours ${o.rps} req/s p99 ${o.p99} ms; bare ${x.rps} req/s p99 ${x.p99} ms; load ${load().join(' ')}`);
    }
    await bare.stop();
    bare = undefined;
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
    const summary = (runs: Run[]) => ({
      rps: med(runs.map((x) => x.rps)),
      p50: med(runs.map((x) => x.p50)),
      p99: med(runs.map((x) => x.p99)),
      serverCpuMsPerRequest: med(runs.map((x) => x.serverCpuMsPerRequest!)),
      postgresCpuMsPerRequest: med(runs.map((x) => x.postgresCpuMsPerRequest ?? 0)),
      errors: runs.reduce((s, x) => s + x.errors, 0),
    });
    const ratio = (a: Run[], b: Run[]) => Math.round((med(a.map((x) => x.rps)) / med(b.map((x) => x.rps))) * 10000) / 10000;
    perCondition.push({
      q,
      replyBytes: bytes.length,
      ours: summary(ours),
      bare: summary(theirs),
      ratio: ratio(ours, theirs),
      postgresPlanMs: plans[q],
      runs: { ours, bare: theirs },
    });
  }
  result.conditions = perCondition;

  // BENCH_TRY_INDEX=1: the proposed fix on the database side only — an index matching the query engine's default
  // order (createDate, uuid) — then the plans and one round per condition again (our route only).
  if (process.env.BENCH_TRY_INDEX) {
    const c = new pg.Client({ connectionString: database.url });
    await c.connect();
    await c.query('CREATE INDEX bench_vm_create_date_uuid_idx ON vm_instances (create_date, uuid)');
    await c.query('CREATE INDEX bench_vm_host_create_date_uuid_idx ON vm_instances (host_uuid, create_date, uuid)');
    await c.query('ANALYZE vm_instances');
    await c.end();
    const plansAfter = await explain(database.url, conditions);
    const withIndex: Record<string, unknown>[] = [];
    for (const q of conditions) {
      const path = `/zstack/v1/vm-instances?q=${encodeURIComponent(q)}&limit=100`;
      await cannon(server.url, () => path, headers, 3);
      const cpu0 = { s: cpuSeconds(server.pid), pg: await pgBackendCpuSeconds(database.name) };
      const o = await cannon(server.url, () => path, headers, DURATION);
      o.serverCpuMsPerRequest = round2(((cpuSeconds(server.pid) - cpu0.s) * 1000) / o.requests);
      o.postgresCpuMsPerRequest = round2((((await pgBackendCpuSeconds(database.name)) - cpu0.pg) * 1000) / o.requests);
      console.error(`${q} with the index: ${o.rps} req/s p99 ${o.p99} ms; load ${load().join(' ')}`);
      withIndex.push({ q, postgresPlanMs: plansAfter[q], ours: o });
    }
    result.withDefaultSortIndex = withIndex;
  }
  result.serverRssMbAfter = rssMb(server.pid);
  result.loadAfter = load();
} finally {
  await bare?.stop();
  await server.stop();
  // BENCH_KEEP_DB=1: the database stays for a look with psql (its name on stderr).
  if (process.env.BENCH_KEEP_DB) console.error(`kept database ${database.name}`);
  else await database.drop();
  rmSync(tmp, { recursive: true, force: true });
}
console.log(JSON.stringify(result));

interface Run {
  rps: number;
  requests: number;
  p50: number;
  p99: number;
  max: number;
  errors: number;
  serverCpuMsPerRequest?: number;
  postgresCpuMsPerRequest?: number;
}

function round2(x: number) {
  return Math.round(x * 100) / 100;
}

/** `pathOf` is called for every request (the varied workload gives each its own `q`). */
async function cannon(url: string, pathOf: () => string, headers: Record<string, string>, duration: number): Promise<Run> {
  const r = await autocannon({
    url,
    connections: CONNECTIONS,
    duration,
    headers,
    timeout: 30,
    requests: [{ setupRequest: (req: Record<string, unknown>) => ({ ...req, path: pathOf() }) }],
  } as never);
  return {
    rps: round2(r.requests.total / r.duration),
    requests: r.requests.total,
    p50: r.latency.p50,
    p99: r.latency.p99,
    max: r.latency.max,
    errors: r.errors + r.timeouts + r.non2xx,
  };
}

/**
 * EXPLAIN ANALYZE of the statements one QueryVmInstance runs (the page of VMs as the query engine writes it — default
 * order createDate, uuid — then the NICs and volumes of those 100): execution times in ms; plans on stderr with BENCH_PLANS=1.
 */
async function explain(url: string, conditions: string[]): Promise<Record<string, Record<string, number>>> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  const out: Record<string, Record<string, number>> = {};
  const run = async (label: string, text: string, params: unknown[]) => {
    const { rows } = await db.query(`EXPLAIN (ANALYZE, BUFFERS) ${text}`, params);
    const lines = rows.map((r) => r['QUERY PLAN'] as string);
    if (process.env.BENCH_PLANS) console.error(`-- ${label}\n${lines.map((l) => l.slice(0, 160)).join('\n')}`);
    return Number(/Execution Time: ([\d.]+)/.exec(lines.join('\n'))?.[1]);
  };
  for (const q of conditions) {
    const [field, value] = q.split('=');
    const column = field === 'state' ? 'state' : 'host_uuid';
    const page = `SELECT * FROM vm_instances t0 WHERE t0.${column} = $1 ORDER BY t0.create_date ASC, t0.uuid ASC LIMIT 100`;
    const uuids = (await db.query(page, [value])).rows.map((r) => r.uuid as string);
    const list = uuids.map((_, i) => `$${i + 1}`).join(', ');
    out[q] = {
      vms: await run(`${q}: page`, page, [value]),
      nics: await run(`${q}: nics`, `SELECT * FROM vm_nics WHERE vm_instance_uuid IN (${list}) ORDER BY device_id ASC`, uuids),
      volumes: await run(`${q}: volumes`, `SELECT * FROM volumes WHERE vm_instance_uuid IN (${list}) ORDER BY device_id ASC`, uuids),
    };
  }
  await db.end();
  return out;
}

async function startBare(file: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('./bare-server.ts', import.meta.url).pathname, file], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = /"listening":"([^"]+)"/.exec(line);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`bare server exited with ${code}`)));
  });
  return {
    url,
    pid: child.pid!,
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** N VMs with one NIC (and its used IP) and one root volume each, in four INSERT … SELECT generate_series. */
async function insertVms(db: pg.Client, w: Awaited<ReturnType<typeof buildBenchWorld>>) {
  const [range] = (await db.query(`SELECT uuid, start_int, netmask, gateway FROM ip_ranges WHERE l3_network_uuid = $1`, [w.l3NetworkUuid])).rows;
  const [image] = (await db.query(`SELECT size FROM images WHERE uuid = $1`, [w.imageUuid])).rows;
  const [ps] = (await db.query(`SELECT url FROM primary_storage WHERE uuid = $1`, [w.primaryStorageUuid])).rows;
  const n = VMS;
  await db.query('BEGIN');
  await db.query(
    `INSERT INTO vm_instances (uuid, name, zone_uuid, cluster_uuid, host_uuid, last_host_uuid, image_uuid, instance_offering_uuid,
        root_volume_uuid, platform, architecture, default_l3_network_uuid, type, hypervisor_type, memory_size, cpu_num,
        allocator_strategy, state, create_date, last_op_date)
     SELECT md5('vm' || i), 'vm-' || i, $1, $2, CASE WHEN i % 10 = 0 THEN NULL ELSE ($3::text[])[1 + i % $4] END,
            ($3::text[])[1 + i % $4], $5, $6, md5('root' || i), 'Linux', 'x86_64', $7, 'UserVm', 'Simulator', 134217728, 1,
            'LeastVmPreferredHostAllocatorStrategy', CASE WHEN i % 10 = 0 THEN 'Stopped' ELSE 'Running' END,
            now() - make_interval(secs => $8 - i), now() - make_interval(secs => $8 - i)
       FROM generate_series(1, $8::int) i`,
    [w.zoneUuid, w.clusterUuid, w.hostUuids, w.hostUuids.length, w.imageUuid, w.instanceOfferingUuid, w.l3NetworkUuid, n],
  );
  const ipOf = `((n >> 24) & 255)::text || '.' || ((n >> 16) & 255)::text || '.' || ((n >> 8) & 255)::text || '.' || (n & 255)::text`;
  await db.query(
    `INSERT INTO used_ips (uuid, ip_range_uuid, l3_network_uuid, ip, ip_in_long, netmask, gateway, used_for, vm_nic_uuid, create_date, last_op_date)
     SELECT md5('ip' || i), $1, $2, ${ipOf}, n, $3, $4, 'UserVm', md5('nic' || i), now() - make_interval(secs => $6 - i), now() - make_interval(secs => $6 - i)
       FROM (SELECT i, ($5::bigint + i - 1) AS n FROM generate_series(1, $6::int) i) x`,
    [range.uuid, w.l3NetworkUuid, range.netmask, range.gateway, range.start_int, n],
  );
  await db.query(
    `INSERT INTO vm_nics (uuid, vm_instance_uuid, l3_network_uuid, used_ip_uuid, ip, mac, netmask, gateway, device_id, internal_name,
        hypervisor_type, create_date, last_op_date)
     SELECT md5('nic' || i), md5('vm' || i), $1, md5('ip' || i), ${ipOf},
            'fa:' || substr(h, 1, 2) || ':' || substr(h, 3, 2) || ':' || substr(h, 5, 2) || ':' || substr(h, 7, 2) || ':00',
            $2, $3, 0, 'vnic' || i || '.0', 'Simulator', now() - make_interval(secs => $5 - i), now() - make_interval(secs => $5 - i)
       FROM (SELECT i, ($4::bigint + i - 1) AS n, lpad(to_hex(i), 8, '0') AS h FROM generate_series(1, $5::int) i) x`,
    [w.l3NetworkUuid, range.netmask, range.gateway, range.start_int, n],
  );
  await db.query(
    `INSERT INTO volumes (uuid, name, description, primary_storage_uuid, vm_instance_uuid, root_image_uuid, install_path, type, format,
        size, actual_size, device_id, status, create_date, last_op_date)
     SELECT md5('root' || i), 'ROOT-for-vm-' || i, 'Root volume for VM[uuid:' || md5('vm' || i) || ']', $1, md5('vm' || i), $2,
            $3 || '/rootVolumes/acct-36c27e8ff05c4780bf6d2fa65700f22e/vol-' || md5('root' || i) || '/' || md5('root' || i) || '.qcow2',
            'Root', 'qcow2', $4, $4, 0, 'Ready', now() - make_interval(secs => $5 - i), now() - make_interval(secs => $5 - i)
       FROM generate_series(1, $5::int) i`,
    [w.primaryStorageUuid, w.imageUuid, String(ps.url).replace(/\/$/, ''), image.size, n],
  );
  await db.query('COMMIT');
  await db.query('ANALYZE vm_instances, vm_nics, volumes, used_ips');
}

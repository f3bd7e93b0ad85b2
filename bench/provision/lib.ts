// Shared by the bench/provision, bench/query, bench/timeouts and bench/gc scripts: a fresh PostgreSQL database per
// run, the management server as its own process (`server/src/main.ts`, which spawns its simulator agent as a
// further process, exactly like `npm start` with DATABASE_URL), RSS and CPU readings from /proc, percentiles,
// and the benchmark world (Flat DHCP, a large IP range, simulated hosts added in parallel).
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { ZStackClient } from '../../sdk/src/index.js';

/**
 * The benches' PostgreSQL: TEST_DATABASE_URL, else the local server over its Unix socket when there is one (as a
 * management node with a local database connects; TCP on 127.0.0.1 costs ≈ 1.5 ms more CPU per created VM, see
 * bench/README), else 127.0.0.1:5432.
 */
export const ADMIN_URL =
  process.env.TEST_DATABASE_URL ??
  (existsSync('/var/run/postgresql/.s.PGSQL.5432') ? 'postgres://postgres@localhost/test?host=/var/run/postgresql' : 'postgres://postgres@127.0.0.1:5432/test');
/** How the benches reach PostgreSQL (reported with every result). */
export const DATABASE_TRANSPORT = new URL(ADMIN_URL).searchParams.get('host')?.startsWith('/') ? 'unix socket' : 'tcp';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A fresh database on the PostgreSQL server; `drop()` removes it (FORCE: the server may still hold connections). */
export async function createDatabase(prefix = 'zsbench'): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  const name = `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    async drop() {
      const c = new pg.Client({ connectionString: ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export interface ServerProcess {
  url: string;
  pid: number;
  /** The simulator agent process the server spawned (once something needed it). */
  readonly simulatorPid?: number;
  child: ChildProcess;
  /** The tail of the server's stderr (error reports). */
  readonly stderr: string;
  stop(): Promise<void>;
}

/**
 * The server's command line in checkout `root`. By default as `npm start` runs it: the build in dist/ (rebuilt
 * first when a source changed) under the node flags of package.json's `start` script, read from there.
 * `BENCH_SERVER_FROM=src`: the sources through tsx, as the tests run them (CPU profiles then name source files);
 * `=dist`: the build under node's default flags.
 */
function serverCommand(root: string, extra: string[]): string[] {
  if (process.env.BENCH_SERVER_FROM === 'src') return [...extra, '--import', 'tsx', 'server/src/main.ts'];
  // =dist: the build without the start script's node flags (what those flags cost).
  if (process.env.BENCH_SERVER_FROM === 'dist') return [...extra, 'scripts/start.mjs'];
  const start = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
  const words = start.split(/\s+/).filter((w) => w !== 'exec');
  if (words[0] !== 'node') throw new Error(`package.json's start script is not "[exec] node …": ${start}`);
  return [...words.slice(1, -1), ...extra, ...words.slice(-1)];
}

/**
 * The server on the given database, in its own process (so the load generator in this process does not share the
 * server's event loop), run as serverCommand says. Extra node flags (e.g. `--cpu-prof`) from
 * `BENCH_SERVER_NODE_ARGS`. `root`: another checkout to run the server from (an A/B run against the previous commit).
 */
export async function startServerProcess(databaseUrl: string, env: Record<string, string> = {}, root = ROOT): Promise<ServerProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), 'zstack-bench-'));
  const extra = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, serverCommand(root, extra), {
    cwd: root,
    env: { ...process.env, DATABASE_URL: databaseUrl, ZSTACK_PORT: '0', ZSTACK_DATA_DIR: dataDir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (process.env.BENCH_VERBOSE) process.stderr.write(d);
    if (stderr.length > 100_000) stderr = stderr.slice(-50_000);
  });
  const url = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => reject(new Error(`the server did not start within 60 s: ${stderr.slice(-2000)}`)), 60_000);
    // BENCH_SERVER_STDOUT=<file>: the server's stdout appended there (e.g. with BENCH_SERVER_NODE_ARGS=--trace-gc).
    const copy = process.env.BENCH_SERVER_STDOUT;
    lines.on('line', (line) => {
      if (copy) appendFileSync(copy, line + '\n');
      const m = /listening on (http:\/\/\S+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once('exit', (code) => reject(new Error(`the server exited with code ${code}: ${stderr.slice(-2000)}`)));
  });
  // The simulator agent is the child running agents/bin/zstack-agent.mjs (tsx also runs an esbuild child). It starts
  // when first needed (the first simulated host or storage): looked up when asked.
  const simulatorPid = () =>
    childrenOf(child.pid!).find((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('zstack-agent');
      } catch {
        return false;
      }
    });
  return {
    url,
    pid: child.pid!,
    get simulatorPid() {
      return simulatorPid();
    },
    child,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
    // Last lines of the server's stderr, for error reports.
    get stderr() {
      return stderr;
    },
  };
}

/**
 * The simulator agent as its own process with a known secret (so a benchmark can read its command records); pass
 * `simulatorEnv(sim)` to startServerProcess so the server uses it instead of spawning its own.
 */
export async function startSimulatorProcess(): Promise<{ url: string; pid: number; secret: string; stop(): Promise<void> }> {
  const secret = 'bench-' + Math.random().toString(36).slice(2);
  const storageRoot = mkdtempSync(join(tmpdir(), 'zstack-bench-sim-'));
  const bin = join(ROOT, 'agents/bin/zstack-agent.mjs');
  const child = spawn(process.execPath, [bin, 'simulator', '--port', '0', '--storage-root', storageRoot], {
    env: { ...process.env, ZSTACK_AGENT_SECRET: secret },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = /"listening":"([^"]+)"/.exec(line);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`the simulator exited with code ${code}`)));
  });
  return {
    url,
    pid: child.pid!,
    secret,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(storageRoot, { recursive: true, force: true });
    },
  };
}

export const simulatorEnv = (sim: { url: string; secret: string }) => ({ ZSTACK_SIMULATOR_URL: sim.url, ZSTACK_AGENT_SECRET: sim.secret });

export function childrenOf(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** Resident set size of a process in MB. */
export function rssMb(pid: number): number {
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024);
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (100/s)
}

/**
 * CPU seconds used by the whole PostgreSQL cluster: every live `postgres` process (backends of every database, the
 * WAL writer, autovacuum, the checkpointer) plus what the postmaster has reaped from exited ones (its cutime/cstime).
 * Unlike pgBackendCpuSeconds it keeps the CPU of a backend that exits during the run (a pool connection closed for
 * idleness and opened again). Assumes nothing else uses the cluster meanwhile.
 */
export function pgClusterCpuSeconds(): number {
  let s = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'postgres') continue;
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      s += (Number(fields[11]) + Number(fields[12])) / 100;
      const parentComm = readFileSync(`/proc/${fields[1]}/comm`, 'utf8').trim();
      if (parentComm !== 'postgres') s += (Number(fields[13]) + Number(fields[14])) / 100; // the postmaster: reaped children
    } catch {
      // gone meanwhile
    }
  }
  return s;
}

/** CPU seconds used by the PostgreSQL backends serving one database (their /proc/<pid>/stat). */
export async function pgBackendCpuSeconds(dbName: string): Promise<number> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  const { rows } = await c.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [dbName]);
  await c.end();
  let s = 0;
  for (const r of rows) {
    try {
      s += cpuSeconds(r.pid);
    } catch {
      // gone meanwhile
    }
  }
  return s;
}

/**
 * Samples pg_stat_activity of one database every `everyMs`: how many backends are active, idle in transaction,
 * or waiting (and on what). Tells where requests wait when neither the server nor PostgreSQL is CPU-bound.
 */
export function sampleActivity(dbName: string, everyMs = 100) {
  const counts = new Map<string, number>();
  let samples = 0;
  let stopped = false;
  const c = new pg.Client({ connectionString: ADMIN_URL });
  const loop = (async () => {
    await c.connect();
    while (!stopped) {
      const { rows } = await c.query<{ state: string; wait: string | null; n: number }>(
        `SELECT state, wait_event_type || ':' || wait_event AS wait, count(*)::int AS n FROM pg_stat_activity
          WHERE datname = $1 AND pid <> pg_backend_pid() GROUP BY 1, 2`,
        [dbName],
      );
      samples++;
      for (const r of rows) {
        const key = `${r.state}${r.wait && r.state !== 'idle' ? ` (${r.wait})` : ''}`;
        counts.set(key, (counts.get(key) ?? 0) + r.n);
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
    await c.end();
  })();
  return async () => {
    stopped = true;
    await loop;
    // Mean number of backends in each state over the samples.
    return Object.fromEntries([...counts.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, Math.round((v / Math.max(1, samples)) * 100) / 100]));
  };
}

export const load = () => loadavg().map((x) => Math.round(x * 100) / 100);

/**
 * CPU ms this process needs for a fixed loop (best of 3): how fast this machine's cores are right now. The same
 * cloud machine was seen 25 % slower or faster from one hour to the next; CPU ms per operation should be read
 * against this number when runs from different times are compared.
 */
export function cpuCalibrationMs(): number {
  let best = Infinity;
  for (let r = 0; r < 3; r++) {
    const c0 = process.cpuUsage();
    let x = 0;
    for (let i = 0; i < 1e8; i++) x += i % 7;
    const c = process.cpuUsage(c0);
    if (x < 0) throw new Error('unreachable');
    best = Math.min(best, (c.user + c.system) / 1000);
  }
  return Math.round(best);
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export function stats(values: number[]) {
  const s = [...values].sort((a, b) => a - b);
  const r = (x: number) => Math.round(x * 10) / 10;
  return { n: s.length, min: r(s[0]), p50: r(percentile(s, 50)), p90: r(percentile(s, 90)), p99: r(percentile(s, 99)), max: r(s[s.length - 1]) };
}

/** Runs `fn(i)` for i in [0, n) with at most `limit` in flight. */
export async function pool(n: number, limit: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
}

export function client(url: string, opts: { pollIntervalMs?: number; maxPollIntervalMs?: number } = {}): ZStackClient {
  return new ZStackClient({
    endpoint: url,
    accountName: 'admin',
    password: 'password',
    pollIntervalMs: opts.pollIntervalMs ?? 20,
    maxPollIntervalMs: opts.maxPollIntervalMs ?? 200,
  });
}

export interface BenchWorld {
  zoneUuid: string;
  clusterUuid: string;
  hostUuids: string[];
  primaryStorageUuid: string;
  imageUuid: string;
  instanceOfferingUuid: string;
  l3NetworkUuid: string;
}

/**
 * The benchmark world: one zone and cluster, `hosts` simulated hosts (added `parallel` at a time), simulated primary
 * storage large enough for everything, the tryout image on simulated backup storage, a 1 vCPU / 128 MB offering,
 * one L3 with a range from a CIDR (a /16 by default: 65,533 addresses) and Flat DHCP (no virtual router).
 */
export async function buildBenchWorld(
  zs: ZStackClient,
  opts: { hosts: number; hostCpu?: number; hostMemory?: number; cidr?: string; parallel?: number },
): Promise<BenchWorld> {
  const zone = (await zs.createZone({ name: 'bench-zone' })).inventory;
  const cluster = (await zs.createCluster({ zoneUuid: zone.uuid, name: 'bench-cluster', hypervisorType: 'Simulator' })).inventory;
  const ps = (
    await zs.addSimulatorPrimaryStorage({
      name: 'bench-ps',
      zoneUuid: zone.uuid,
      url: '/zstack_ps',
      totalCapacity: 2 ** 50,
      availableCapacity: 2 ** 50,
    })
  ).inventory;
  await zs.attachPrimaryStorageToCluster({ clusterUuid: cluster.uuid, primaryStorageUuid: ps.uuid });
  const bs = (await zs.addSimulatorBackupStorage({ name: 'bench-bs', url: '/zstack_bs', totalCapacity: 2 ** 40, availableCapacity: 2 ** 40 })).inventory;
  await zs.attachBackupStorageToZone({ zoneUuid: zone.uuid, backupStorageUuid: bs.uuid });
  const image = (
    await zs.addImage({
      name: 'bench-image',
      url: 'http://download.zstack.org/templates/zstack-image-1.2.qcow2',
      format: 'qcow2',
      mediaType: 'RootVolumeTemplate',
      platform: 'Linux',
      backupStorageUuids: [bs.uuid],
    })
  ).inventory;
  const offering = (await zs.createInstanceOffering({ name: 'bench-1c128m', cpuNum: 1, memorySize: 128 * 2 ** 20 })).inventory;
  const l2 = (await zs.createL2NoVlanNetwork({ name: 'bench-l2', zoneUuid: zone.uuid, physicalInterface: 'eth0' })).inventory;
  await zs.attachL2NetworkToCluster({ l2NetworkUuid: l2.uuid, clusterUuid: cluster.uuid });
  const l3 = (await zs.createL3Network({ name: 'bench-l3', l2NetworkUuid: l2.uuid })).inventory;
  await zs.addIpRangeByNetworkCidr({ l3NetworkUuid: l3.uuid, name: 'bench-range', networkCidr: opts.cidr ?? '10.0.0.0/16' });
  await zs.attachNetworkServiceToL3Network({ l3NetworkUuid: l3.uuid, networkServices: { Flat: ['DHCP'] } });

  const hostUuids: string[] = new Array(opts.hosts);
  await pool(opts.hosts, opts.parallel ?? 16, async (i) => {
    const host = await zs.addSimulatorHost({
      name: `bench-host-${i}`,
      managementIp: `172.${16 + Math.floor(i / 65536)}.${Math.floor(i / 256) % 256}.${i % 256}`,
      clusterUuid: cluster.uuid,
      cpuCapacity: opts.hostCpu ?? 64,
      memoryCapacity: opts.hostMemory ?? 256 * 2 ** 30,
    });
    hostUuids[i] = host.inventory.uuid;
  });
  return {
    zoneUuid: zone.uuid,
    clusterUuid: cluster.uuid,
    hostUuids,
    primaryStorageUuid: ps.uuid,
    imageUuid: image.uuid,
    instanceOfferingUuid: offering.uuid,
    l3NetworkUuid: l3.uuid,
  };
}

/** Integer from `--name value` / `--name=value` or the environment variable, else the default. */
export function arg(name: string, envName: string, fallback: number): number {
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === `--${name}`) return Number(argv[i + 1]);
    if (argv[i].startsWith(`--${name}=`)) return Number(argv[i].slice(name.length + 3));
  }
  return process.env[envName] !== undefined ? Number(process.env[envName]) : fallback;
}

// Timeout precision: K concurrent API calls with `X-API-Timeout: 1` against simulated hosts whose agent command is
// delayed (UpdateSimulatorHost commandDelays). Two scenarios, one after the other on the same server:
//   create — K × CreateVmInstance, `/vm/start` delayed (the scenario: allocation, volumes, then the slow start);
//   reboot — K × RebootVmInstance on K running VMs, `/vm/reboot` delayed (a cheap API: lock, state, one agent call),
//            which isolates the timeout machinery from the cost of the create path.
// For each call, failure time − deadline:
//   - client: arrival of the job's X-Web-Hook POST here − (the moment this process sent the request + the timeout);
//   - server: the job row's end (api_jobs.last_op_date, written when the failure is recorded) − its `deadline` column
//     (the request's start on the server + the timeout);
// and the parts of the client's lateness: startDelay = the server's start of the request (deadline − timeout) − send
// time (queueing before the router took the time), hookDelay = web-hook arrival − the row's end.
// After the agent's delayed replies would have arrived: a check that nothing stayed reserved (create) and that every
// VM is Running again (reboot) — late replies change nothing.
//
//   npx tsx bench/timeouts/run.ts [--apis 100] [--hosts 4] [--delay 10000] [--timeout 1]   (BENCH_COLD=1: no warm-up call)
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import type { ZStackClient } from '../../sdk/src/index.js';
import {
  DATABASE_TRANSPORT,
  arg,
  buildBenchWorld,
  client,
  cpuSeconds,
  createDatabase,
  load,
  pool,
  sampleActivity,
  startServerProcess,
  stats,
} from '../provision/lib.js';

const APIS = arg('apis', 'BENCH_APIS', 100);
const HOSTS = arg('hosts', 'BENCH_HOSTS', 4);
const DELAY_MS = arg('delay', 'BENCH_DELAY_MS', 10_000);
const TIMEOUT_S = arg('timeout', 'BENCH_TIMEOUT_S', 1);

const loadBefore = load();
const database = await createDatabase('zsbench_to');
const server = await startServerProcess(database.url).catch(async (e) => {
  await database.drop();
  throw e;
});
const hooks = new Map<string, { at: number; success: string }>();
const hookServer = createServer((req, res) => {
  const at = Date.now();
  req.resume();
  req.on('end', () => {
    hooks.set(String(req.headers['x-job-uuid']), { at, success: String(req.headers['x-job-success']) });
    res.end();
  });
});
await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', r));
const hookUrl = `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/hook`;
const db = new pg.Client({ connectionString: database.url });
const result: Record<string, unknown> = {
  bench: 'timeouts',
  apis: APIS,
  hosts: HOSTS,
  delayMs: DELAY_MS,
  timeoutS: TIMEOUT_S,
  database: DATABASE_TRANSPORT,
  loadBefore,
};
try {
  await db.connect();
  const zs = client(server.url);
  const w = await buildBenchWorld(zs, { hosts: HOSTS });
  const vmParams = (name: string) => ({ name, instanceOfferingUuid: w.instanceOfferingUuid, imageUuid: w.imageUuid, l3NetworkUuids: [w.l3NetworkUuid] });
  const delay = async (path: string, ms: number) => {
    for (const uuid of w.hostUuids) await zs.updateSimulatorHost({ uuid, commandDelays: { [path]: ms } });
  };
  await zs.login();

  // ---- create
  await delay('/vm/start', DELAY_MS);
  // Each operation's request validator is compiled on its first use (core/validation.ts): one call that fails its
  // checks first, so the 100 calls measure a running server rather than that one-time compile (BENCH_COLD=1 skips it).
  const warm = (call: () => Promise<unknown>) => (process.env.BENCH_COLD ? undefined : call().catch(() => undefined));
  await warm(() => zs.start('CreateVmInstance', { ...vmParams('warm-up'), imageUuid: '0'.repeat(32) }));
  const create = await scenario(zs, (i, o) => zs.start('CreateVmInstance', vmParams(`slow-${i}`), o));
  const left = (
    await db.query(`
      SELECT (SELECT count(*) FROM vm_instances WHERE type = 'UserVm')::int AS vms,
             (SELECT count(*) FROM vm_nics)::int AS nics,
             (SELECT count(*) FROM used_ips)::int AS used_ips,
             (SELECT count(*) FROM volumes)::int AS volumes,
             (SELECT count(*) FROM hosts WHERE available_cpu_capacity <> total_cpu_capacity OR available_memory_capacity <> total_memory_capacity)::int AS hosts_holding,
             (SELECT coalesce(sum(total_cpu_capacity - available_cpu_capacity), 0) FROM hosts)::int AS cpu_held,
             (SELECT count(*) FROM primary_storage WHERE available_capacity <> total_capacity)::int AS ps_holding`)
  ).rows[0];
  create.afterLateReplies = { ...left, ok: Object.values(left).every((v) => v === 0) };
  result.create = create;

  // ---- reboot: K running VMs (no delay while creating them), then K concurrent reboots against a slow /vm/reboot
  await delay('/vm/start', 0);
  const vms: string[] = [];
  await pool(APIS, 16, async (i) => void vms.push((await zs.createVmInstance(vmParams(`vm-${i}`))).inventory.uuid));
  await delay('/vm/reboot', DELAY_MS);
  await warm(() => zs.start('RebootVmInstance', { uuid: '0'.repeat(32) }));
  const reboot = await scenario(zs, (i, o) => zs.start('RebootVmInstance', { uuid: vms[i] }, o));
  const states = (await db.query(`SELECT state, count(*)::int AS n FROM vm_instances WHERE uuid = ANY($1) GROUP BY state`, [vms])).rows;
  reboot.afterLateReplies = { states: Object.fromEntries(states.map((r) => [r.state, r.n])), ok: states.length === 1 && states[0].state === 'Running' };
  result.reboot = reboot;
  result.loadAfter = load();
} finally {
  hookServer.close();
  await db.end().catch(() => undefined);
  await server.stop();
  await database.drop();
}
console.log(JSON.stringify(result));

/** K calls at once, each with its own job uuid and web hook; a call refused before its job existed answers 503 itself. */
async function scenario(zs: ZStackClient, call: (i: number, options: Parameters<ZStackClient['start']>[2]) => Promise<unknown>) {
  const sent = new Map<string, number>();
  const acceptMs: number[] = [];
  const sdkErrors: string[] = [];
  // Calls refused before a job existed (the checks ran past the deadline): the synchronous 503's arrival here.
  const syncFailures = new Map<string, { at: number; code: string }>();
  const cpu0 = cpuSeconds(server.pid);
  const stopSampling = sampleActivity(database.name, 50);
  const t0 = Date.now();
  await Promise.all(
    Array.from({ length: APIS }, async (_, i) => {
      const jobUuid = randomUUID().replace(/-/g, '');
      const at = Date.now();
      sent.set(jobUuid, at);
      try {
        // The header rather than the SDK's timeoutMs: the SDK would stop waiting for the 202 itself after
        // timeout + 1 s, and the server's own (late) answer would go unseen.
        await call(i, { headers: { 'X-Web-Hook': hookUrl, 'X-API-Timeout': String(TIMEOUT_S) }, jobUuid, retry: false });
        acceptMs.push(Date.now() - at);
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code) syncFailures.set(jobUuid, { at: Date.now(), code });
        else sdkErrors.push((e as Error).message);
      }
    }),
  );
  const until = Date.now() + TIMEOUT_S * 1000 + 60_000;
  while ([...sent.keys()].some((j) => !hooks.has(j) && !syncFailures.has(j)) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  const out: Record<string, unknown> = { serverCpuS: Math.round((cpuSeconds(server.pid) - cpu0) * 100) / 100, pgBackendsMean: await stopSampling() };

  const { rows } = await db.query<{
    uuid: string;
    status: string;
    error: { code?: string; details?: string } | null;
    late_ms: number;
    ended: number;
    started: number;
  }>(
    `SELECT uuid, status, error, extract(epoch FROM (last_op_date - deadline)) * 1000 AS late_ms, extract(epoch FROM last_op_date) * 1000 AS ended,
            extract(epoch FROM deadline) * 1000 - timeout_ms AS started
       FROM api_jobs WHERE uuid = ANY($1)`,
    [[...sent.keys()]],
  );
  const codes: Record<string, number> = {};
  const steps: Record<string, number> = {};
  const samples: Record<string, string> = {};
  for (const r of rows) {
    const code = r.error?.code ?? r.status;
    codes[code] = (codes[code] ?? 0) + 1;
    samples[code] ??= (r.error?.details ?? '').slice(0, 300);
    const step = /in step\[([^\]]+)\]/.exec(r.error?.details ?? '')?.[1]?.replace(/\[uuid:\w+[^\]]*\]/g, '') ?? '(none)';
    steps[step] = (steps[step] ?? 0) + 1;
  }
  const ends = rows.map((r) => Number(r.ended)).sort((a, b) => a - b);
  // Every call's deadline as its caller sees it: the send time + the timeout.
  // When the caller learns of the failure: the web hook, or the synchronous 503 of a call that got no job.
  const learnt = (j: string) => hooks.get(j)?.at ?? syncFailures.get(j)?.at;
  const clientLate = [...sent].filter(([j]) => learnt(j) !== undefined).map(([j, at]) => learnt(j)! - (at + TIMEOUT_S * 1000));
  for (const f of syncFailures.values()) codes[`sync ${f.code}`] = (codes[`sync ${f.code}`] ?? 0) + 1;
  Object.assign(out, {
    calls: sent.size,
    jobsFound: rows.length,
    acceptMs: stats(acceptMs),
    sdkErrors: sdkErrors.length,
    syncFailures: syncFailures.size,
    hooksReceived: [...sent.keys()].filter((j) => hooks.has(j)).length,
    outcomes: codes,
    outcomeSamples: samples,
    interruptedSteps: steps,
    clientLateMs: stats(clientLate),
    serverLateMs: stats(rows.map((r) => Number(r.late_ms))),
    startDelayMs: stats(rows.map((r) => Number(r.started) - sent.get(r.uuid)!)),
    hookDelayMs: stats(rows.filter((r) => hooks.has(r.uuid)).map((r) => hooks.get(r.uuid)!.at - Number(r.ended))),
    noJob: sent.size - rows.length,
    firstToLastFailureMs: ends.length ? Math.round(ends[ends.length - 1] - ends[0]) : undefined,
  });
  // A late reply (the agent's delayed command ends DELAY_MS after it started) must change nothing: look after it.
  await new Promise((r) => setTimeout(r, Math.max(0, t0 + DELAY_MS + 2000 - Date.now())));
  return out;
}

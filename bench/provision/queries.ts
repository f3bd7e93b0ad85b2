// Where a CreateVmInstance's work goes: SQL statements and agent calls per VM. Runs the server in this process
// (like the test harness) with pg's Client.prototype.query wrapped, builds the bench world, creates a few VMs one
// at a time (warm-up) and then --vms VMs one at a time, and reports per VM: statements by kind (and the time
// PostgreSQL took to answer them, seen from the client), transactions, agent calls by path, and wall time.
//
//   npx tsx bench/provision/queries.ts [--vms 50] [--hosts 100] [--concurrency 1]
//   node --expose-gc --import tsx bench/provision/queries.ts …   (adds the heap still held per VM after a full GC;
//   BENCH_HEAP_SNAPSHOT=/tmp/x.heapsnapshot writes a snapshot after the run; BENCH_DUMP=1 prints one statement of each kind)
//   BENCH_EXPLAIN=1 also runs one example of each statement kind under EXPLAIN ANALYZE (in a rolled-back
//   transaction) and reports PostgreSQL's planning and execution time for it; BENCH_EXPLAIN=plans prints the plans too)
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';
import pg from 'pg';
import { App } from '../../server/src/app.js';
import { startAgent } from '../../agents/src/index.js';
import { arg, buildBenchWorld, client, createDatabase, load } from './lib.js';

const VMS = arg('vms', 'BENCH_VMS', 50);
const HOSTS = arg('hosts', 'BENCH_HOSTS', 100);
// 1: one VM at a time (what one creation costs); 64: as the provision bench runs them (shared statements: lock
// batches, change publication and sync steps serve several calls at once).
const CONCURRENCY = arg('concurrency', 'BENCH_CONCURRENCY', 1);

interface Stat {
  n: number;
  ms: number;
}
let recording = false;
const statements = new Map<string, Stat>();
const examples = new Map<string, { text: string; values?: unknown[] }>();
const record = (key: string, ms: number, example?: { text: string; values?: unknown[] }) => {
  if (!recording) return;
  if (example && !examples.has(key)) examples.set(key, example);
  const s = statements.get(key) ?? statements.set(key, { n: 0, ms: 0 }).get(key)!;
  s.n++;
  s.ms += ms;
};
/**
 * An example's values with new uuids for the rows it inserted and a new MAC (the same new value for the same old
 * one), so that an INSERT the bench ran already runs again under EXPLAIN ANALYZE instead of conflicting with itself.
 */
const renamed = new Map<string, string>();
const isMac = (v: unknown) => typeof v === 'string' && /^fa(:[0-9a-f]{2}){5}$/.test(v);
function fresh(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  const made = isMac(v)
    ? `fa:${randomUUID()
        .slice(0, 8)
        .replace(/(..)(?!$)/g, '$1:')}`
    : randomUUID().replace(/-/g, '');
  return renamed.get(v) ?? renamed.set(v, made).get(v);
}
/** The uuids among `values` that are keys of rows a creation inserts. */
async function insertedUuids(c: pg.Client, values: unknown[]): Promise<Set<unknown>> {
  const uuids = values.filter((v) => typeof v === 'string' && /^[0-9a-f]{32}$/.test(v));
  const { rows } = await c.query(
    `SELECT uuid FROM (SELECT uuid FROM vm_instances UNION ALL SELECT uuid FROM volumes UNION ALL SELECT uuid FROM vm_nics
       UNION ALL SELECT uuid FROM used_ips UNION ALL SELECT uuid FROM api_jobs) t WHERE uuid = ANY($1)`,
    [uuids],
  );
  return new Set(rows.map((r) => r.uuid));
}
/** A statement's kind: the verb and the table(s), parameters and column lists dropped. */
function kindOf(text: string): string {
  const t = text.replace(/\s+/g, ' ').trim();
  const verb = t.split(' ')[0].toUpperCase();
  if (verb === 'SELECT' && /pg_(try_)?advisory/.test(t)) return `SELECT ${/pg_\w+/.exec(t)![0]}`;
  const tables = [...t.matchAll(/(?:from|into|update|join) "?(\w+)"?/gi)].map((m) => m[1]);
  if (tables.length === 0) return t.slice(0, 60);
  return `${verb} ${[...new Set(tables)].join(',')}${/ for update/i.test(t) ? ' FOR UPDATE' : ''}`;
}
const original = pg.Client.prototype.query as (...a: unknown[]) => unknown;
(pg.Client.prototype as { query: unknown }).query = function (this: pg.Client, ...args: unknown[]) {
  const text = typeof args[0] === 'string' ? args[0] : ((args[0] as { text?: string })?.text ?? '');
  const values = Array.isArray(args[1]) ? (args[1] as unknown[]) : (args[0] as { values?: unknown[] })?.values;
  const example = { text, values };
  const t0 = performance.now();
  // Callback form (pg.Pool#query uses it) or promise form (drizzle inside transactions, the lock connection).
  const last = args.length - 1;
  if (typeof args[last] === 'function') {
    const cb = args[last] as (e: unknown, r: unknown) => void;
    args[last] = (e: unknown, r: unknown) => {
      record(kindOf(text) + (e ? ' (error)' : ''), performance.now() - t0, example);
      cb(e, r);
    };
    return original.apply(this, args);
  }
  const out = original.apply(this, args);
  if (out && typeof (out as Promise<unknown>).then === 'function') {
    (out as Promise<unknown>).then(
      () => record(kindOf(text), performance.now() - t0, example),
      () => record(kindOf(text) + ' (error)', performance.now() - t0),
    );
  }
  return out;
};

const database = await createDatabase('zsbench_q');
const dataDir = mkdtempSync(join(tmpdir(), 'zstack-bench-'));
const sim = await startAgent({ kind: 'simulator', port: 0, secret: 'bench', storageRoot: join(dataDir, 'sim') });
const app = await App.create({ databaseUrl: database.url, dataDir, port: 0, simulatorUrl: sim.url, agentSecret: 'bench' });
try {
  const url = await app.listen();
  const zs = client(url, { pollIntervalMs: 5, maxPollIntervalMs: 5 });
  const w = await buildBenchWorld(zs, { hosts: HOSTS });
  const create = (name: string) =>
    zs.createVmInstance({ name, instanceOfferingUuid: w.instanceOfferingUuid, imageUuid: w.imageUuid, l3NetworkUuids: [w.l3NetworkUuid] });
  for (let i = 0; i < 5; i++) await create(`warm-${i}`);
  const agentBefore = new Map(app.agents.stats);
  const gc = (globalThis as { gc?: () => void }).gc;
  const heapAfterGc = async () => {
    for (let i = 0; i < 3; i++) {
      gc!();
      await new Promise((r) => setTimeout(r, 50));
    }
    return process.memoryUsage().heapUsed;
  };
  const heap0 = gc ? await heapAfterGc() : 0;
  recording = true;
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let i = next++; i < VMS; i = next++) await create(`vm-${i}`);
    }),
  );
  const wall = performance.now() - t0;
  recording = false;
  if (process.env.BENCH_PLAN_STATS) {
    // How PostgreSQL's plan cache treated each prepared statement: generic plans (planned once) or custom plans
    // (planned on every execution), summed over the pool's connections.
    const pool = (app as unknown as { database: { pool: pg.Pool } }).database.pool;
    const clients = await Promise.all(Array.from({ length: pool.idleCount }, () => pool.connect()));
    const stats = new Map<string, { generic: number; custom: number }>();
    for (const c of clients) {
      const { rows } = await c.query<{ s: string; g: string; c: string }>(
        'SELECT statement AS s, generic_plans AS g, custom_plans AS c FROM pg_prepared_statements',
      );
      for (const r of rows) {
        const k = kindOf(r.s);
        const e = stats.get(k) ?? stats.set(k, { generic: 0, custom: 0 }).get(k)!;
        e.generic += Number(r.g);
        e.custom += Number(r.c);
      }
      c.release();
    }
    console.error('plan cache (generic / custom plans per statement kind):');
    for (const [k, v] of [...stats].sort((a, b) => b[1].custom - a[1].custom))
      console.error(`  ${String(v.generic).padStart(7)} ${String(v.custom).padStart(7)}  ${k.slice(0, 120)}`);
  }
  const heapKbPerVm = gc ? Math.round(((await heapAfterGc()) - heap0) / 1024 / VMS) : undefined;
  const explained: Record<string, { planningMs: number; executionMs: number }> = {};
  if (process.env.BENCH_EXPLAIN) {
    const c = new pg.Client({ connectionString: database.url });
    await c.connect();
    // BENCH_PLAN_CACHE_MODE=force_generic_plan: the plans PostgreSQL would cache for a prepared statement.
    if (process.env.BENCH_PLAN_CACHE_MODE) await c.query(`SET plan_cache_mode = ${process.env.BENCH_PLAN_CACHE_MODE}`);
    // BENCH_ANALYZE=1: the plans with fresh statistics (as autovacuum leaves them on a server that has run a while).
    if (process.env.BENCH_ANALYZE) await c.query('ANALYZE');
    for (const [kind, recorded] of examples) {
      if (!/^\s*(select|insert|update|delete|with)\b/i.test(recorded.text) || /^\s*select (pg_\w*advisory|nextval)/i.test(recorded.text)) continue;
      const inserted = await insertedUuids(c, recorded.values ?? []);
      // New keys on every run (each run below inserts them; only the last is kept, then rolled back).
      const ex = {
        text: recorded.text,
        get values() {
          renamed.clear();
          return recorded.values?.map((v) => (inserted.has(v) || isMac(v) ? fresh(v) : v));
        },
      };
      await c.query('BEGIN');
      try {
        // Twice: the first run on this new connection also fills its catalog caches.
        await c.query(`EXPLAIN (ANALYZE, SUMMARY, FORMAT JSON) ${ex.text}`, ex.values);
        const r = await c.query(`EXPLAIN (ANALYZE, SUMMARY, FORMAT JSON) ${ex.text}`, ex.values);
        const plan = (r.rows[0] as Record<string, [{ 'Planning Time': number; 'Execution Time': number }]>)['QUERY PLAN'][0];
        explained[kind] = { planningMs: plan['Planning Time'], executionMs: plan['Execution Time'] };
        if (process.env.BENCH_EXPLAIN === 'plans') {
          const text = await c.query(`EXPLAIN (ANALYZE, BUFFERS) ${ex.text}`, ex.values);
          console.error(`${kind}:\n${text.rows.map((row) => Object.values(row)[0]).join('\n')}\n`);
        }
      } catch (e) {
        // The example may not run again (a key it inserted exists now): planning alone, without running it.
        if (process.env.BENCH_EXPLAIN === 'plans') console.error(`${kind}: cannot run again (${(e as Error).message})`);
        await c.query('ROLLBACK');
        await c.query('BEGIN');
        try {
          await c.query(`EXPLAIN (SUMMARY, FORMAT JSON) ${ex.text}`, ex.values);
          const r = await c.query(`EXPLAIN (SUMMARY, FORMAT JSON) ${ex.text}`, ex.values);
          const plan = (r.rows[0] as Record<string, [{ 'Planning Time': number }]>)['QUERY PLAN'][0];
          explained[kind] = { planningMs: plan['Planning Time'], executionMs: NaN };
        } catch {
          console.error(`EXPLAIN ${kind}: ${(e as Error).message}`);
        }
      } finally {
        await c.query('ROLLBACK');
      }
    }
    await c.end();
    console.error('EXPLAIN ANALYZE (one example each, ms):');
    for (const [k, v] of Object.entries(explained))
      console.error(`  plan ${v.planningMs.toFixed(2).padStart(6)}  exec ${v.executionMs.toFixed(2).padStart(6)}  ${k}`);
  }
  // BENCH_DUMP=1: one example statement of each kind on stderr (what the kinds above stand for).
  if (process.env.BENCH_DUMP) for (const [kind, ex] of examples) console.error(`--- ${kind}\n${ex.text.replace(/\s+/g, ' ').slice(0, 1500)}`);
  if (process.env.BENCH_HEAP_SNAPSHOT) writeHeapSnapshot(process.env.BENCH_HEAP_SNAPSHOT);
  const per = (x: number) => Math.round((x / VMS) * 100) / 100;
  const rows = [...statements].sort((a, b) => b[1].n - a[1].n);
  const total = rows.reduce((s, [, v]) => s + v.n, 0);
  const totalMs = rows.reduce((s, [, v]) => s + v.ms, 0);
  const agentCalls = Object.fromEntries([...app.agents.stats].map(([k, v]) => [k, per(v - (agentBefore.get(k) ?? 0))]).filter(([, v]) => (v as number) > 0));
  console.error(`per VM (${VMS} VMs on ${HOSTS} hosts, ${CONCURRENCY} at a time; SDK polling every 5 ms):`);
  for (const [k, v] of rows) console.error(`  ${String(per(v.n)).padStart(6)} × ${k.padEnd(70)} ${per(v.ms).toFixed(2).padStart(7)} ms`);
  console.log(
    JSON.stringify({
      bench: 'provision-queries',
      vms: VMS,
      hosts: HOSTS,
      concurrency: CONCURRENCY,
      wallMsPerVm: Math.round((wall / VMS) * 10) / 10,
      heapKbRetainedPerVm: heapKbPerVm,
      statementsPerVm: per(total),
      statementMsPerVm: per(totalMs),
      pollStatementsPerVm: per(statements.get('SELECT api_jobs')?.n ?? 0),
      agentCallsPerVm: agentCalls,
      byKind: Object.fromEntries(rows.map(([k, v]) => [k, per(v.n)])),
      explained: process.env.BENCH_EXPLAIN ? explained : undefined,
      load: load(),
    }),
  );
} finally {
  await app.close();
  await sim.close();
  await database.drop();
  rmSync(dataDir, { recursive: true, force: true });
}

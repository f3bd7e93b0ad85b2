#!/usr/bin/env node
// `npm start` as a user runs it: time until the first request is answered on a fresh data directory (first start,
// which creates the database) and on the same directory again (restart), and the idle RSS of the whole process tree
// (npm, the server, its agents, the embedded database's processes), summed over every process, 10 s (--idle-ms) and
// 30 s after ready (also PSS, which counts shared pages such as PostgreSQL's shared buffers once per tree).
// CPU seconds used by the tree until ready are given too: unlike the wall time they hardly depend on the load.
// `--db external`: on the PostgreSQL of DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test), in a fresh
// database created for the run (first start: migrations; restart: none). The build (dist/, scripts/build-server.mjs) is
// brought up to date before the first start, so no rebuild is timed. `npm start` keeps npm as its parent (see
// bench/README.md): byProcessMb gives it apart, and idleTreeRssWithoutNpmMb is the tree of `node scripts/start.mjs`.
// usage: node bench/startup/run.mjs [--db embedded|pglite|external|both] [--idle-ms 10000]
// Prints one JSON line per database.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { db: { type: 'string', default: 'both' }, 'idle-ms': { type: 'string', default: '10000' } } });
const idleMs = Number(values['idle-ms']);
const dbs = values.db === 'both' ? ['embedded', 'pglite'] : [values.db];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Every process under `root` (itself included), from /proc. */
export function tree(root) {
  const children = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(d));
    } catch {}
  }
  const out = [];
  const walk = (p) => {
    out.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(root);
  return out;
}

function rssKb(pid) {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

function pssKb(pid) {
  try {
    return Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

function name(pid) {
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    if (/^npm( |$)/.test(cmd[0] ?? '') || cmd.some((a) => a.endsWith('npm-cli.js'))) return 'npm';
    if (cmd.some((a) => /main\.[tj]s$|scripts\/start\.mjs$/.test(a))) return 'server';
    if (cmd.includes('simulator')) return 'simulator agent';
    if (cmd.includes('console-proxy')) return 'console proxy agent';
    if (cmd.some((a) => a.includes('esbuild'))) return 'esbuild (tsx)';
    if (cmd.join(' ').includes('postgres')) return 'postgres';
    return cmd[0] ?? String(pid);
  } catch {
    return String(pid);
  }
}

/** CPU seconds used so far by a tree: each live process's own and its waited-for children's (initdb, …). */
function cpuSeconds(root) {
  let ticks = 0;
  for (const p of tree(root)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    } catch {}
  }
  return ticks / 100;
}

/** The tree's RSS and PSS summed over every process, without npm, and by process (MB). */
function sample(root) {
  const byName = {};
  let total = 0;
  let pss = 0;
  let npmKb = 0;
  const procs = tree(root);
  for (const p of procs) {
    const kb = rssKb(p);
    total += kb;
    pss += pssKb(p);
    const n = name(p);
    byName[n] = (byName[n] ?? 0) + kb;
    if (n === 'npm') npmKb += kb;
  }
  const mb = (kb) => Math.round(kb / 1024);
  return {
    treeRssMb: mb(total),
    treePssMb: mb(pss),
    treeRssWithoutNpmMb: mb(total - npmKb),
    processes: procs.length,
    byProcessMb: Object.fromEntries(Object.entries(byName).map(([k, v]) => [k, mb(v)])),
  };
}

async function startOnce(dataDir, port, env) {
  const t0 = Date.now();
  const child = spawn('npm', ['start'], {
    env: { ...process.env, ...env, ZSTACK_PORT: String(port), ZSTACK_DATA_DIR: dataDir },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/zstack/v1/management-nodes/actions`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: '{"getVersion":{}}',
      });
      if (res.ok) return { child, readyMs: Date.now() - t0, cpuS: cpuSeconds(child.pid) };
    } catch {}
    if (child.exitCode !== null) throw new Error(`npm start exited with ${child.exitCode}`);
    if (Date.now() - t0 > 120_000) throw new Error('no answer within 120 s');
    await sleep(20);
  }
}

async function stop(child) {
  const pids = tree(child.pid);
  child.kill('SIGTERM');
  const until = Date.now() + 30_000;
  while (
    pids.some((p) => {
      try {
        process.kill(p, 0);
        return true;
      } catch {
        return false;
      }
    })
  ) {
    if (Date.now() > until)
      throw new Error(
        `processes left after stop: ${pids
          .filter((p) => {
            try {
              process.kill(p, 0);
              return true;
            } catch {
              return false;
            }
          })
          .join(' ')}`,
      );
    await sleep(50);
  }
}

execFileSync(process.execPath, ['scripts/build-server.mjs', '--if-stale'], { stdio: 'inherit' });

/** A fresh database on the external PostgreSQL, and how to drop it. */
async function externalDatabase() {
  const { default: pg } = await import('pg');
  const admin = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const name = `zstack_startup_${process.pid}`;
  const run = async (sql) => {
    const c = new pg.Client({ connectionString: admin });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await run(`CREATE DATABASE ${name}`);
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => run(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

for (const db of dbs) {
  const dataDir = mkdtempSync(join(tmpdir(), 'zstack-startup-'));
  const port = 18000 + Math.floor(Math.random() * 1000);
  const external = db === 'external' ? await externalDatabase() : undefined;
  const env = db === 'pglite' ? { ZSTACK_EMBEDDED_DB: 'pglite' } : external ? { DATABASE_URL: external.url } : { DATABASE_URL: '' };
  const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
  try {
    const loadBefore = load();
    const first = await startOnce(dataDir, port, env);
    await stop(first.child);
    const again = await startOnce(dataDir, port, env);
    // Sampled twice: `--idle-ms` after ready, and 30 s after ready (pool connections opened during the start have
    // closed then: idle 10 s).
    await sleep(idleMs);
    const early = sample(again.child.pid);
    await sleep(Math.max(0, 30_000 - idleMs));
    const late = sample(again.child.pid);
    await stop(again.child);
    console.log(
      JSON.stringify({
        db,
        firstStartMs: first.readyMs,
        firstStartCpuS: first.cpuS,
        restartMs: again.readyMs,
        restartCpuS: again.cpuS,
        [`idle${idleMs / 1000}s`]: early,
        idle30s: late,
        load: `${loadBefore} -> ${load()}`,
      }),
    );
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
    await external?.drop();
  }
}

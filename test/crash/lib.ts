// The crash suite's pieces: a management server as its own process (`server/src/main.ts` on a real PostgreSQL,
// pointed at a simulator agent that outlives it), killed with SIGKILL (its whole process group) and started again; the
// invariant checker run against the database and the simulator.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { AgentClient } from '../../server/src/agent-client/index.js';
import { checkInvariants, type HostVmReport, type InvariantReport } from '../../server/src/core/invariants.js';
import type { Db } from '../../server/src/db/index.js';
import { AGENT_SECRET } from '../lib/harness.js';

const ROOT = resolve(import.meta.dirname, '../..');

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  output: () => string;
  /** SIGKILL to the server and every process it started. */
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

export async function startServerProcess(opts: { databaseUrl: string; simulatorUrl: string; port: number; dataDir?: string }): Promise<ServerProcess> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'zstack-crash-'));
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/src/main.ts'], {
    cwd: ROOT,
    detached: true, // its own process group: kill9 takes the console proxy child too
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      DATABASE_URL: opts.databaseUrl,
      ZSTACK_PORT: String(opts.port),
      ZSTACK_HOST: '127.0.0.1',
      ZSTACK_DATA_DIR: dataDir,
      ZSTACK_SIMULATOR_URL: opts.simulatorUrl,
      ZSTACK_AGENT_SECRET: AGENT_SECRET,
      ZSTACK_CONSOLE_PROXY_PORT: '0',
    },
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = await new Promise<string>((res, rej) => {
    const onData = () => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) res(m[1]);
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => rej(new Error(`server exited (${code}) before listening:\n${out.slice(-3000)}`)));
  });
  const killGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      /* already gone */
    }
  };
  return {
    url,
    child,
    output: () => out,
    async kill9() {
      killGroup('SIGKILL');
      await exited;
    },
    async stop() {
      killGroup('SIGTERM');
      const timer = setTimeout(() => killGroup('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The checker over a database URL, comparing the simulated hosts with the simulator agent. */
export class Checker {
  readonly pool: pg.Pool;
  readonly db: Db;
  private agents = new AgentClient(AGENT_SECRET);

  constructor(
    databaseUrl: string,
    private simulatorUrl: string,
  ) {
    this.pool = new pg.Pool({ connectionString: databaseUrl, max: 3 });
    this.db = drizzle(this.pool) as unknown as Db;
  }

  check(): Promise<InvariantReport> {
    return checkInvariants(this.db, {
      agents: async (hostUuids) => {
        const out: HostVmReport[] = [];
        for (const hostUuid of hostUuids) {
          const r = await this.agents.call(this.simulatorUrl, '/vm/vmsync', {}, { targetUuid: hostUuid, timeoutMs: 5000 }).catch(() => undefined);
          if (r) out.push({ hostUuid, states: r.states ?? {} });
        }
        return out;
      },
    });
  }

  /** Waits until every invariant holds; the last report either way, and how long it took. */
  async converge(limitMs: number): Promise<{ report: InvariantReport; ms: number }> {
    const started = Date.now();
    for (;;) {
      const report = await this.check();
      if (report.ok || Date.now() - started > limitMs) return { report, ms: Date.now() - started };
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async count(sqlText: string): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>(sqlText);
    return Number(rows[0].n);
  }

  /** Resolves once `sqlText` (a count) reaches `n`. */
  async waitCount(sqlText: string, n: number, limitMs = 60_000): Promise<number> {
    const started = Date.now();
    for (;;) {
      const c = await this.count(sqlText);
      if (c >= n || Date.now() - started > limitMs) return c;
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

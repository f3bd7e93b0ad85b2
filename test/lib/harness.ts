// The test harness: a management server on a fresh database of its own (real PostgreSQL at 127.0.0.1:5432 by
// default, one database per call, dropped afterwards; or PGlite in a temp dir), plus a logged-in SDK client.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { App, type AppOptions } from '../../server/src/app.js';
import { ZStackClient } from '../../sdk/src/index.js';
import { startAgent, type RunningAgent } from '../../agents/src/index.js';

export const AGENT_SECRET = 'test-agent-secret';

// Test files run in parallel: every test server's console proxy agent listens on an ephemeral port.
process.env.ZSTACK_CONSOLE_PROXY_PORT ??= '0';
// Statements rendered once per shape (server/src/db/perf/template.ts) are rendered on every call too and compared.
process.env.ZSTACK_CHECK_STATEMENT_SHAPES ??= '1';

export const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestServer {
  app: App;
  url: string;
  client: ZStackClient;
  /** The simulator agent (a real HTTP agent in this process) serving simulated hosts and storage. */
  sim: RunningAgent;
  databaseUrl?: string;
  dataDir: string;
  /** Starts another server process-equivalent (another management node) on the same database. */
  startPeer(extra?: Partial<AppOptions>): Promise<App>;
  close(): Promise<void>;
}

export async function createDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `zstest_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export async function startServer(opts: { pglite?: boolean; app?: Partial<AppOptions> } = {}): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'zstack-test-'));
  const database = opts.pglite ? undefined : await createDatabase();
  const sim = await startAgent({ kind: 'simulator', port: 0, secret: AGENT_SECRET, storageRoot: join(dataDir, 'sim') });
  const base: AppOptions = {
    databaseUrl: database?.url,
    dataDir,
    port: 0,
    validateResponses: true,
    simulatorUrl: sim.url,
    agentSecret: AGENT_SECRET,
    ...opts.app,
  };
  const app = await App.create(base);
  const url = await app.listen();
  const client = new ZStackClient({ endpoint: url, accountName: 'admin', password: 'password', pollIntervalMs: 20 });
  const peers: App[] = [];
  return {
    app,
    url,
    client,
    sim,
    databaseUrl: database?.url,
    dataDir,
    async startPeer(extra = {}) {
      const peer = await App.create({ ...base, ...extra });
      await peer.listen();
      peers.push(peer);
      return peer;
    },
    async close() {
      for (const p of peers) await p.close().catch(() => undefined);
      await app.close().catch(() => undefined);
      await sim.close().catch(() => undefined);
      await database?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Raw HTTP against the server (for wire-level assertions the SDK would hide). Like our SDK it asks for refusals at
 * once with their own status (`X-ZStack-Errors: direct`); `upstream: true` sends the request as upstream's clients
 * do (failures of async APIs as failed jobs, of sync APIs as 503).
 */
export async function http(
  url: string,
  method: string,
  path: string,
  opts: { body?: unknown; rawBody?: string; headers?: Record<string, string>; upstream?: boolean } = {},
) {
  const res = await fetch(url + path, {
    method,
    headers: {
      ...(opts.body !== undefined || opts.rawBody !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(opts.upstream ? {} : { 'X-ZStack-Errors': 'direct' }),
      ...opts.headers,
    },
    body: opts.rawBody ?? (opts.body !== undefined ? JSON.stringify(opts.body) : undefined),
  });
  const text = await res.text();
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** Polls a job location until it is no longer 202. */
export async function pollJob(location: string, timeoutMs = 30_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(location);
    if (res.status !== 202 || Date.now() > until) return { status: res.status, json: await res.json().catch(() => undefined) };
    await new Promise((r) => setTimeout(r, 20));
  }
}

// The test harness: a management server on a fresh database of its own (real PostgreSQL at 127.0.0.1:5432 by
// default, one database per call, dropped afterwards; or PGlite in a temp dir), plus a logged-in SDK client.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { App, type AppOptions } from '../../server/src/app.js';
import { migrate, openDatabase } from '../../server/src/db/index.js';
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

/**
 * A fresh database of its own. `migrated`: a copy of a template database the committed migrations were applied to
 * once per migration set (named by a hash of the schema and migrations; built under an advisory lock, published by a
 * rename), so a test server skips the migrations — seconds of every start on a busy machine. Default: empty.
 */
export async function createDatabase(opts: { migrated?: boolean } = {}): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `zstest_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    const template = opts.migrated ? await migratedTemplate(admin) : undefined;
    await retryInUse(() => admin.query(`CREATE DATABASE ${name}${template ? ` TEMPLATE ${template}` : ''}`));
  } finally {
    await admin.end();
  }
  const url = databaseUrl(name);
  return {
    url,
    async drop() {
      const c = new pg.Client({ connectionString: ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

function databaseUrl(name: string): string {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/** What the migrated template depends on: the migrations and the schema code (sequences per table). */
function migrationsFingerprint(): string {
  const hash = createHash('sha256');
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'server');
  for (const dir of ['drizzle', 'drizzle/meta', 'src/db', 'src/db/schema', 'src/db/perf']) {
    const abs = join(root, dir);
    if (!existsSync(abs)) continue;
    for (const f of readdirSync(abs).sort()) {
      const file = join(abs, f);
      if (statSync(file).isFile()) hash.update(f).update(readFileSync(file));
    }
  }
  return hash.digest('hex').slice(0, 16);
}

const TEMPLATE_LOCK = 727_273;

async function migratedTemplate(admin: pg.Client): Promise<string> {
  const name = `zstest_tpl_${migrationsFingerprint()}`;
  const exists = async () => (await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
  if (await exists()) return name;
  await admin.query('SELECT pg_advisory_lock($1)', [TEMPLATE_LOCK]);
  try {
    if (await exists()) return name;
    const building = `${name}_${process.pid}`;
    await admin.query(`DROP DATABASE IF EXISTS ${building} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${building}`);
    const dataDir = mkdtempSync(join(tmpdir(), 'zstack-template-'));
    const database = await openDatabase({ url: databaseUrl(building), dataDir, poolSize: 2 });
    try {
      await migrate(database);
    } finally {
      await database.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
    await retryInUse(() => admin.query(`ALTER DATABASE ${building} RENAME TO ${name}`));
    return name;
  } finally {
    await admin.query('SELECT pg_advisory_unlock($1)', [TEMPLATE_LOCK]);
  }
}

/** Runs `fn` again while PostgreSQL says the database is still in use (55006: a closing connection not yet gone). */
async function retryInUse<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if ((e as { code?: string }).code !== '55006' || attempt >= 100) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

export async function startServer(opts: { pglite?: boolean; app?: Partial<AppOptions> } = {}): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'zstack-test-'));
  const database = opts.pglite ? undefined : await createDatabase({ migrated: true });
  const sim = await startAgent({ kind: 'simulator', port: 0, secret: AGENT_SECRET, storageRoot: join(dataDir, 'sim') });
  const base: AppOptions = {
    databaseUrl: database?.url,
    dataDir,
    port: 0,
    validateResponses: true,
    simulatorUrl: sim.url,
    agentSecret: AGENT_SECRET,
    // As `npm start` does: the console proxy agent starts with the first console request, not with every test server
    // (a child process each, seconds of start and stop on a busy machine). Console tests that need it at boot say so.
    consoleAgentOnDemand: true,
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
      rmSync(dataDir, { recursive: true, force: true });
      // Dropped in the background (a DROP DATABASE waits for a checkpoint: seconds on a busy machine); its open
      // connection keeps this test process alive until it is done.
      database?.drop().catch((e) => console.error(`[harness] could not drop a test database: ${(e as Error).message}`));
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

// `npm start`: the management server on the embedded database (or DATABASE_URL), with a simulator agent for
// simulated hosts and storage (ZSTACK_SIMULATOR_URL + ZSTACK_AGENT_SECRET point at an existing one instead).
// Order: the data directory's lock and the port first (a refused start touches nothing), then the database, the app.
// The simulator and the console proxy agent start when first needed (simulator-process.ts, console/agents.ts).
// Any failure is one line on stderr with its fix, and whatever was started is stopped.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { App } from './app.js';
import { configFromEnv } from './config.js';
import type { EmbeddedPostgres } from './db/embedded-postgres.js';
import type { Simulator } from './simulator-process.js';
import { checkPortFree, lockDataDir, startupMessage, type DataDirLock } from './startup.js';

const started = Date.now();
let lock: DataDirLock | undefined;
let embedded: EmbeddedPostgres | undefined;
let simulator: Simulator | undefined;
let app: App | undefined;
let databaseUrl: string | undefined;
let stopping = false;

async function stopAll(): Promise<void> {
  await app?.close().catch(() => undefined);
  await simulator?.agent.stop();
  await embedded?.stop().catch(() => undefined);
  lock?.release();
}

// Registered first: a signal during start-up stops what has started so far.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (stopping) process.exit(1);
    stopping = true;
    console.log(`${signal}: stopping (waiting for running jobs)…`);
    stopAll().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}

try {
  const config = configFromEnv();
  databaseUrl = config.databaseUrl;
  lock = lockDataDir(config.dataDir);
  await checkPortFree(config.host, config.port);
  // The server's modules load (~1 s of CPU) while the database starts.
  const appModule = import('./app.js');
  appModule.catch(() => undefined);
  const pglite = !config.databaseUrl && process.env.ZSTACK_EMBEDDED_DB === 'pglite';
  const { SIMULATOR_ON_DEMAND_URL, simulatorOnDemand } = await import('./simulator-process.js');
  if (!process.env.ZSTACK_SIMULATOR_URL) simulator = simulatorOnDemand({ storageRoot: join(config.dataDir, 'simulator') });
  if (!config.databaseUrl && !pglite) {
    if (existsSync(join(config.dataDir, 'pglite')) && !existsSync(join(config.dataDir, 'postgres'))) {
      console.log(
        `note: ${join(config.dataDir, 'pglite')} holds the data of the earlier embedded database (PGlite), not used any more; ZSTACK_EMBEDDED_DB=pglite opens it`,
      );
    }
    const { startEmbeddedPostgres } = await import('./db/embedded-postgres.js');
    embedded = await startEmbeddedPostgres({ dataDir: config.dataDir });
    embedded.exited.then((how) => {
      if (stopping) return;
      console.error(`zstack: the embedded database stopped (postgres ${how}); see ${join(config.dataDir, 'postgres.log')}. Stopping.`);
      void stopAll().finally(() => process.exit(1));
    });
  }
  const { App } = await appModule;
  app = await App.create({
    databaseUrl: config.databaseUrl ?? embedded?.url,
    dataDir: config.dataDir,
    host: config.host,
    port: config.port,
    simulatorUrl: simulator ? SIMULATOR_ON_DEMAND_URL : process.env.ZSTACK_SIMULATOR_URL,
    agentSecret: simulator ? simulator.secret : (process.env.ZSTACK_AGENT_SECRET ?? ''),
    propertiesFile: process.env.ZSTACK_PROPERTIES,
    soleNode: !!embedded,
    consoleAgentOnDemand: true,
    logger: true,
  });
  if (simulator) app.agents.startOnDemand(SIMULATOR_ON_DEMAND_URL, simulator.agent);
  const url = await app.listen();
  // Start-up (migrations, the spec's validators, the first plans) grows V8's young generation to its cap, and V8 gives
  // it back only after ~30 s of idleness. One memory-reducing collection a second after the first answer gives it back
  // at once, so `npm start` can afford a young generation that suits a busy server (--max-semi-space-size=8: ~20 %
  // less server CPU per created VM than 1 MB, bench/README.md). Only where `npm start` exposes gc (--expose-gc).
  setTimeout(() => (globalThis as { gc?: (o: object) => void }).gc?.({ type: 'major', execution: 'sync', flavor: 'last-resort' }), 1000).unref();
  const db = config.databaseUrl ? 'PostgreSQL (DATABASE_URL)' : pglite ? `PGlite in ${config.dataDir}` : `embedded PostgreSQL in ${config.dataDir}`;
  console.log(`ZStack-TS management server listening on ${url} (${db}), ready in ${Date.now() - started} ms`);
  console.log(
    `  API: ${url}/zstack/v1/...   spec: ${url}/zstack/openapi.json   simulator agent: ${simulator ? 'started when first needed' : process.env.ZSTACK_SIMULATOR_URL}`,
  );
  console.log(`  log in: account admin, password "password" (SDK: new ZStackClient({ endpoint: '${url}', accountName: 'admin', password: 'password' }))`);
} catch (e) {
  console.error(`zstack: cannot start: ${startupMessage(e, { databaseUrl })}`);
  if (process.env.ZSTACK_DEBUG) console.error(e);
  stopping = true;
  await stopAll();
  process.exit(1);
}

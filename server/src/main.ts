// `npm start`: the management server on the embedded database (or DATABASE_URL), with a simulator agent for
// simulated hosts and storage (ZSTACK_SIMULATOR_URL + ZSTACK_AGENT_SECRET point at an existing one instead).
import { join } from 'node:path';
import { App } from './app.js';
import { configFromEnv } from './config.js';
import { spawnSimulator } from './simulator-process.js';

const started = Date.now();
const config = configFromEnv();
const simulator = process.env.ZSTACK_SIMULATOR_URL
  ? { url: process.env.ZSTACK_SIMULATOR_URL, secret: process.env.ZSTACK_AGENT_SECRET ?? '', stop() {} }
  : await spawnSimulator({ storageRoot: join(config.dataDir, 'simulator') });
const app = await App.create({
  databaseUrl: config.databaseUrl,
  dataDir: config.dataDir,
  host: config.host,
  port: config.port,
  simulatorUrl: simulator.url,
  agentSecret: simulator.secret,
  propertiesFile: process.env.ZSTACK_PROPERTIES,
});
const url = await app.listen();
const db = config.databaseUrl ? 'PostgreSQL (DATABASE_URL)' : `embedded PostgreSQL in ${config.dataDir}`;
console.log(`ZStack-TS management server listening on ${url} (${db}), ready in ${Date.now() - started} ms`);
console.log(`  API: ${url}/zstack/v1/...   spec: ${url}/zstack/openapi.json   simulator agent: ${simulator.url}`);
console.log(`  log in: account admin, password "password" (SDK: new ZStackClient({ endpoint: '${url}', accountName: 'admin', password: 'password' }))`);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) process.exit(1);
    stopping = true;
    console.log(`${signal}: stopping (waiting for running jobs)…`);
    simulator.stop();
    app.close().then(() => process.exit(0), () => process.exit(1));
  });
}

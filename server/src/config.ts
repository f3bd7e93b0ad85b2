// Start-up configuration from the environment (all optional: a bare `npm start` works).
import { resolve } from 'node:path';

export interface ServerConfig {
  host: string;
  port: number;
  databaseUrl?: string;
  dataDir: string;
}

export function configFromEnv(env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const port = Number(env.ZSTACK_PORT ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`ZSTACK_PORT must be a port number, got ${env.ZSTACK_PORT}`);
  return {
    host: env.ZSTACK_HOST ?? '127.0.0.1',
    port,
    databaseUrl: env.DATABASE_URL || undefined,
    dataDir: resolve(env.ZSTACK_DATA_DIR ?? 'data'),
  };
}

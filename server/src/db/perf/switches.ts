// The performance layer's switches, read from the environment (README.md in this folder).
/** The switches, each independent of the others (README.md). */
export interface PerfSwitches {
  /** ZSTACK_QUERY_CACHE_MB (default 64; 0 = off): the reply cache's bound in bytes. */
  replyCacheBytes: number;
  /** ZSTACK_QUERY_CACHE_MAX_AGE_MS (default 60000): a cached reply's longest life. */
  replyCacheMaxAgeMs: number;
  /** ZSTACK_ROW_CACHE_MB (default 64; 0 = off): the row cache's bound in bytes (rendered inventories by tuple version). */
  rowCacheBytes: number;
  /** ZSTACK_READ_CACHE (default on; 0 = off): sessions and `App.remembered` reads reused while unchanged. */
  readCache: boolean;
  /** ZSTACK_PREPARED_STATEMENTS (default on; 0 = off): repeating statements as named prepared statements (pg). */
  preparedStatements: boolean;
  /** ZSTACK_QUERY_SYNC_INTERVAL_MS (default 0): the least time between two freshness syncs with the other nodes. */
  syncIntervalMs: number;
}

export function perfSwitches(env: NodeJS.ProcessEnv = process.env): PerfSwitches {
  const number = (name: string, fallback: number) => {
    const v = Number(env[name] ?? fallback);
    return Number.isFinite(v) && v >= 0 ? v : fallback;
  };
  const mb = number('ZSTACK_QUERY_CACHE_MB', 64);
  return {
    replyCacheBytes: Math.floor(mb * 1024 * 1024),
    replyCacheMaxAgeMs: number('ZSTACK_QUERY_CACHE_MAX_AGE_MS', 60_000) || 60_000,
    rowCacheBytes: Math.floor(number('ZSTACK_ROW_CACHE_MB', 64) * 1024 * 1024),
    readCache: env.ZSTACK_READ_CACHE !== '0',
    preparedStatements: env.ZSTACK_PREPARED_STATEMENTS !== '0',
    syncIntervalMs: number('ZSTACK_QUERY_SYNC_INTERVAL_MS', 0),
  };
}

// Deadlocks and serialization failures (SQLSTATE 40P01, 40001) are PostgreSQL telling one of two transactions to try
// again: every top-level transaction of the server (`db.transaction`) is retried, up to TRANSACTION_ATTEMPTS times
// with a short random back-off, then fails with a clear error (core/errors.ts maps the codes, never SYS.1000).
// Nested transactions (savepoints) are retried by the outer one.
import type { Db } from './index.js';
import { inTransactionScope } from './tx-scope.js';

export const TRANSACTION_ATTEMPTS = 5;
const RETRYABLE = new Set(['40P01', '40001']);

/** The SQLSTATE of a driver error, looking through drizzle's wrapping (`cause`). */
export function sqlState(e: unknown): string | undefined {
  for (let c = e as { code?: unknown; cause?: unknown } | undefined, i = 0; c && i < 5; c = c.cause as typeof c, i++) {
    if (typeof c.code === 'string' && /^[0-9A-Z]{5}$/.test(c.code)) return c.code;
  }
  return undefined;
}

export const isRetryable = (e: unknown) => RETRYABLE.has(sqlState(e) ?? '');

const patched = new WeakSet<object>();

/** Makes `db.transaction` retry deadlocks and serialization failures (once per database object). */
export function retryTransactions(db: Db): Db {
  if (patched.has(db)) return db;
  patched.add(db);
  const run = db.transaction.bind(db);
  (db as { transaction: unknown }).transaction = async (fn: Parameters<Db['transaction']>[0], config?: Parameters<Db['transaction']>[1]) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await run((tx) => inTransactionScope(() => fn(tx)), config);
      } catch (e) {
        if (attempt >= TRANSACTION_ATTEMPTS || !isRetryable(e)) throw e;
        await new Promise((r) => setTimeout(r, 5 * attempt + Math.random() * 20 * attempt));
      }
    }
  };
  return db;
}

// Per-resource serialization: two operations on the same VM or host never interleave. Inside one process a FIFO
// queue per key; across server processes on real PostgreSQL a session advisory lock held on a dedicated
// connection for the duration. Waiting respects the caller's deadline.
import type { Database } from '../db/index.js';
import { currentContext, timeoutError, remainingMs } from './context.js';

export class LockManager {
  private tails = new Map<string, Promise<void>>();

  constructor(private database: Database) {}

  async withLock<T>(keys: string | string[], fn: () => Promise<T>): Promise<T> {
    // Sorted keys: two callers locking the same set can never deadlock.
    const sorted = [...new Set(typeof keys === 'string' ? [keys] : keys)].sort();
    const releases: Array<() => void> = [];
    try {
      for (const key of sorted) releases.push(await this.acquireLocal(key));
      if (this.database.kind !== 'pg') return await fn();
      return await this.withAdvisoryLocks(sorted, fn);
    } finally {
      for (const release of releases.reverse()) release();
    }
  }

  private async acquireLocal(key: string): Promise<() => void> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = previous.then(() => mine);
    this.tails.set(key, tail);
    const ctx = currentContext();
    try {
      if (ctx) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          previous,
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(timeoutError(ctx, `wait for lock ${key}`)), Math.max(0, ctx.deadline - Date.now()));
          }),
        ]).finally(() => clearTimeout(timer));
      } else {
        await previous;
      }
    } catch (e) {
      // Gave up waiting: pass our turn on as soon as the previous holder is done.
      previous.then(release);
      throw e;
    }
    return () => {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
  }

  private async withAdvisoryLocks<T>(keys: string[], fn: () => Promise<T>): Promise<T> {
    const client = await this.database.pool!.connect();
    let locked = 0;
    try {
      await client.query(`SET lock_timeout = ${Math.max(1, Math.floor(remainingMs()))}`);
      for (const key of keys) {
        await client.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [key]).catch((e) => {
          const ctx = currentContext();
          throw ctx && /lock timeout/i.test(String(e.message)) ? timeoutError(ctx, `wait for lock ${key}`) : e;
        });
        locked++;
      }
      return await fn();
    } finally {
      for (const key of keys.slice(0, locked)) await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key]).catch(() => undefined);
      client.release();
    }
  }
}

// Per-resource serialization: two operations on the same VM or host never interleave. Inside one process a FIFO
// queue per key; across server processes on real PostgreSQL a session advisory lock. All of a process's advisory
// locks live on ONE dedicated connection (taken with pg_try_advisory_lock, polled until the caller's deadline),
// so holding many locks never starves the pool the lock holders' own queries need.
import type pg from 'pg';
import type { Database } from '../db/index.js';
import { currentContext, timeoutError } from './context.js';

const POLL_MIN_MS = 5;
const POLL_MAX_MS = 100;

export class LockManager {
  private tails = new Map<string, Promise<void>>();
  private connection?: Promise<pg.PoolClient>;
  /** The lock connection's statements, one after the other (a pg client runs one query at a time). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private database: Database) {}

  async withLock<T>(keys: string | string[], fn: () => Promise<T>): Promise<T> {
    // Sorted keys: two callers locking the same set can never deadlock.
    const sorted = [...new Set(typeof keys === 'string' ? [keys] : keys)].sort();
    const releases: Array<() => Promise<void> | void> = [];
    try {
      for (const key of sorted) releases.push(await this.acquireLocal(key));
      if (this.database.kind === 'pg') {
        for (const key of sorted) releases.push(await this.acquireAdvisory(key));
      }
      return await fn();
    } finally {
      for (const release of releases.reverse()) await release();
    }
  }

  /** Closes the lock connection (server stop); advisory locks die with it. */
  async close(): Promise<void> {
    const c = this.connection;
    this.connection = undefined;
    if (c) (await c.catch(() => undefined))?.release(true);
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

  private lockConnection(): Promise<pg.PoolClient> {
    if (!this.connection) {
      const pending = this.database.pool!.connect();
      this.connection = pending;
      pending.then(
        (client) =>
          client.on('error', (e) => {
            // The locks held on it are gone with it; the next lock opens a new connection.
            console.error('[locks] lock connection failed:', e.message);
            if (this.connection === pending) this.connection = undefined;
          }),
        () => {
          if (this.connection === pending) this.connection = undefined;
        },
      );
    }
    return this.connection;
  }

  private onLockConnection<T>(statement: () => Promise<T>): Promise<T> {
    const result = this.queue.then(statement);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async acquireAdvisory(key: string): Promise<() => Promise<void>> {
    const ctx = currentContext();
    const deadline = ctx?.deadline ?? Infinity;
    let wait = POLL_MIN_MS;
    for (;;) {
      const client = await this.lockConnection();
      const { rows } = await this.onLockConnection(() =>
        client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok', [key]),
      );
      if (rows[0].ok) {
        return async () => {
          await this.onLockConnection(() => client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key])).catch(() => undefined);
        };
      }
      if (Date.now() + wait > deadline) throw timeoutError(ctx!, `wait for lock ${key}`);
      await new Promise((r) => setTimeout(r, wait));
      wait = Math.min(wait * 2, POLL_MAX_MS);
    }
  }
}

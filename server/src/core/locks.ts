// Per-resource serialization: two operations on the same VM or host never interleave. Inside one process a FIFO
// queue per key; across server processes on real PostgreSQL a session advisory lock (none when the node is the
// database's sole user: `npm start`'s embedded PostgreSQL, held by the data directory's lock). All of a process's advisory
// locks live on ONE dedicated connection (taken with pg_try_advisory_lock, polled until the caller's deadline),
// so holding many locks never starves the pool the lock holders' own queries need; the lock and unlock operations
// queued while one statement runs go together in the next.
import type pg from 'pg';
import type { Database } from '../db/index.js';
import { Batcher } from './batcher.js';
import { currentContext, timeoutError } from './context.js';
import { err } from './errors.js';

const POLL_MIN_MS = 5;
const POLL_MAX_MS = 100;
const MAX_OPS_PER_STATEMENT = 500;

interface LockOp {
  kind: 'try' | 'unlock';
  key: string;
}

export class LockManager {
  private tails = new Map<string, Promise<void>>();
  private connection?: Promise<pg.PoolClient>;
  /** Lock operations for the lock connection's next statement (a pg client runs one query at a time). */
  private ops = new Batcher<LockOp, boolean>((ops) => this.runOps(ops), MAX_OPS_PER_STATEMENT);

  /** Statements run on the lock connection (each serves every operation queued before it). */
  get statements(): number {
    return this.ops.batches;
  }

  /** Advisory locks too: other processes may use the database (real PostgreSQL, unless this node is its sole user). */
  private readonly crossProcess: boolean;

  constructor(
    private database: Database,
    opts: { soleProcess?: boolean } = {},
  ) {
    this.crossProcess = database.kind === 'pg' && !opts.soleProcess;
  }

  async withLock<T>(keys: string | string[], fn: () => Promise<T>): Promise<T> {
    // Sorted keys: two callers locking the same set can never deadlock.
    const sorted = [...new Set(typeof keys === 'string' ? [keys] : keys)].sort();
    const releases: Array<() => Promise<void> | void> = [];
    try {
      for (const key of sorted) releases.push(await this.acquireLocal(key));
      if (this.crossProcess) {
        for (const key of sorted) releases.push(await this.acquireAdvisory(key));
      }
      return await fn();
    } finally {
      for (const release of releases.reverse()) await release();
    }
  }

  /**
   * Runs `fn` under the keys' locks only if none is held right now (here or, on PostgreSQL, by another process);
   * `undefined` without running it otherwise. For background repair (reconciliation) that must never touch a resource
   * an operation is working on: a lock held by a dead process died with its connection, so it is free again.
   */
  async tryWithLock<T>(key: string, fn: () => Promise<T>): Promise<T | undefined> {
    if (this.tails.has(key)) return undefined;
    const releaseLocal = await this.acquireLocal(key);
    try {
      if (this.crossProcess) {
        if (!(await this.lockOp('try', key))) return undefined;
        try {
          return await fn();
        } finally {
          await this.lockOp('unlock', key).catch(() => undefined);
        }
      }
      return await fn();
    } finally {
      releaseLocal();
    }
  }

  /** Closes the lock connection (server stop); advisory locks die with it. */
  async close(): Promise<void> {
    this.closed = true;
    const c = this.connection;
    this.connection = undefined;
    if (c) (await c.catch(() => undefined))?.release(true);
  }

  /** Set by `close`: work still running (a periodic task caught mid-way) gets an error, not a new lock connection,
   *  which nothing would release and which would keep the pool (and the server's stop) waiting forever. */
  private closed = false;

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
    if (this.closed) return Promise.reject(err('SYS.1006', 'the management node is stopping: no new locks'));
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

  /**
   * One advisory-lock operation on the lock connection. Operations queued while a statement runs go together in the
   * next one (one fixed-shape statement over arrays, evaluated in queue order): concurrent API calls share round
   * trips instead of paying two statements each.
   */
  private lockOp(kind: 'try' | 'unlock', key: string): Promise<boolean> {
    return this.ops.add({ kind, key });
  }

  private async runOps(ops: LockOp[]): Promise<boolean[]> {
    let client: pg.PoolClient | undefined;
    try {
      client = await this.lockConnection();
      const { rows } = await client.query<{ i: string; ok: boolean }>(
        `SELECT t.i, CASE WHEN t.try THEN pg_try_advisory_lock(hashtextextended(t.key, 0)) ELSE pg_advisory_unlock(hashtextextended(t.key, 0)) END AS ok
           FROM unnest($1::text[], $2::boolean[]) WITH ORDINALITY AS t(key, try, i)`,
        [ops.map((o) => o.key), ops.map((o) => o.kind === 'try')],
      );
      const results = new Map(rows.map((r) => [Number(r.i), r.ok]));
      return ops.map((_, i) => results.get(i + 1) === true);
    } catch (e) {
      // Some of the batch's locks may have been taken before it failed (a cancel, a statement timeout): nobody
      // would release them. Dropping the connection drops every lock it held; the next operation opens another.
      if (client && this.connection) {
        this.connection = undefined;
        client.release(true);
      }
      throw e;
    }
  }

  private async acquireAdvisory(key: string): Promise<() => Promise<void>> {
    const ctx = currentContext();
    const deadline = ctx?.deadline ?? Infinity;
    let wait = POLL_MIN_MS;
    for (;;) {
      if (await this.lockOp('try', key)) {
        return async () => {
          await this.lockOp('unlock', key).catch(() => undefined);
        };
      }
      if (Date.now() + wait > deadline) throw timeoutError(ctx!, `wait for lock ${key}`);
      await new Promise((r) => setTimeout(r, wait));
      wait = Math.min(wait * 2, POLL_MAX_MS);
    }
  }
}

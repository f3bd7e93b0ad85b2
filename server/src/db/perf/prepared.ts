// Statements that repeat run as named prepared statements on real PostgreSQL: each pool connection parses, analyzes
// and plans a statement text once instead of on every call (the VM reservation alone spends ≈1.7 ms planning; every
// small SELECT ≈0.1 ms parsing and planning). drizzle and the services issue the same texts with different
// parameters, so this is done once, here, for every statement: a text with parameters seen `minUses` times gets a
// name derived from its text. PostgreSQL's plan cache then decides per statement between custom and generic plans.
// Bounded: at most `maxNames` texts are named (they stay prepared on each connection until it closes); texts
// beyond that (e.g. IN lists of varying length) run unnamed as before. A name that went stale on a connection
// (another node's migration changed a `SELECT *`'s columns; a statement pg closed) is replaced by a new one on that
// connection, and the statement runs again when it was not inside a transaction (inside one, the error stands).
import { createHash } from 'node:crypto';
import type pg from 'pg';

const patched = Symbol('zstack.prepared');

export interface PreparedOptions {
  minUses?: number;
  maxNames?: number;
}

/** Decides which statement texts get a name (shared by every connection of a pool). */
export class StatementNames {
  private uses = new Map<string, number>();
  private names = new Map<string, string>();
  private minUses: number;
  private maxNames: number;

  constructor(opts: PreparedOptions = {}) {
    this.minUses = opts.minUses ?? 2;
    this.maxNames = opts.maxNames ?? 300;
  }

  get size(): number {
    return this.names.size;
  }

  nameFor(text: string): string | undefined {
    const known = this.names.get(text);
    if (known) return known;
    if (this.names.size >= this.maxNames) return undefined;
    const n = (this.uses.get(text) ?? 0) + 1;
    if (n < this.minUses) {
      // Counts of texts seen once are forgotten in bulk: one-off texts must not grow this map forever.
      if (this.uses.size >= 5000) this.uses.clear();
      this.uses.set(text, n);
      return undefined;
    }
    this.uses.delete(text);
    const name = `zs_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
    this.names.set(text, name);
    return name;
  }
}

/** Every connection `pool` opens runs repeating statements as named ones (alone; the server uses perf/driver.ts). */
export function preparePgPool(pool: pg.Pool, opts: PreparedOptions = {}): { named: () => number } {
  const names = new StatementNames(opts);
  pool.on('connect', (client) => prepareClient(client, names));
  return { named: () => names.size };
}

/** Wraps one connection's `query`: a repeating text with parameters runs as a named prepared statement. */
export function prepareClient(client: pg.PoolClient | pg.Client, names: StatementNames): void {
  const c = client as unknown as Record<PropertyKey, unknown> & { query: (...args: unknown[]) => unknown };
  if (c[patched]) return;
  c[patched] = true;
  const query = c.query.bind(client) as (...args: unknown[]) => unknown;
  // Bumped when a name of this connection went stale (see `isStale`): later names get this suffix.
  let epoch = 0;
  const nameOn = (base: string) => (epoch ? `${base}_${epoch}` : base);
  c.query = (...args: unknown[]) => {
    const config = args[0];
    let base: string | undefined;
    // Only a plain config object with parameters (extended protocol; a text without them may hold several
    // statements): pg's Query/Submittable objects and named configs pass through untouched.
    if (config && typeof config === 'object' && typeof (config as { submit?: unknown }).submit !== 'function') {
      const q = config as pg.QueryConfig;
      // drizzle passes its values as the second argument, pg's pool.query(config) in the config.
      const values = Array.isArray(q.values) ? q.values : args[1];
      if (!q.name && typeof q.text === 'string' && Array.isArray(values) && values.length > 0) {
        base = names.nameFor(q.text);
        if (base) args[0] = { ...q, name: nameOn(base) };
      }
    } else if (typeof config === 'string' && Array.isArray(args[1]) && args[1].length > 0) {
      base = names.nameFor(config);
      if (base) args.splice(0, 2, { text: config, values: args[1], name: nameOn(base) });
    }
    if (!base) return query(...args);
    const named = base;
    // Once per call: a stale name is replaced (new epoch) and, outside a transaction, the statement runs again.
    const retry = (e: unknown): boolean => {
      if (!isStale(e)) return false;
      epoch++;
      if ((client as unknown as { getTransactionStatus(): string | null }).getTransactionStatus() !== 'I') return false;
      args[0] = { ...(args[0] as object), name: nameOn(named) };
      return true;
    };
    const last = args.length - 1;
    if (typeof args[last] === 'function') {
      const cb = args[last] as (e: unknown, r?: unknown) => void;
      args[last] = (e: unknown, r?: unknown) => {
        if (e && retry(e)) {
          args[last] = cb;
          query(...args);
        } else cb(e, r);
      };
      return query(...args);
    }
    return (query(...args) as Promise<unknown>).catch((e: unknown) => {
      if (retry(e)) return query(...args);
      throw e;
    });
  };
}

/**
 * A prepared statement this connection can no longer use: its result type changed (a column added by a migration
 * another node ran: `SELECT *`, `RETURNING *`), or the server no longer has it (pg closes a statement whose
 * parameters failed to serialize, but still counts it as prepared).
 */
function isStale(e: unknown): boolean {
  const { code, message } = e as { code?: string; message?: string };
  return (code === '0A000' && /cached plan must not change result type/.test(message ?? '')) || (code === '26000' && /prepared statement/.test(message ?? ''));
}

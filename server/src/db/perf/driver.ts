// The one place the database drivers are wrapped, in a fixed order.
//
// pg (real PostgreSQL):
//   pool.query          refused inside a transaction's callback (tx-scope.ts: it would wait for a second connection
//                       while the transaction holds one); its result resumes the caller on a loop turn (`takeTurns`,
//                       core/turns.ts). The statement itself goes through pool.connect and a connection (below).
//   pool.connect        a waiter's callback runs in its own caller's async context, not in the context of whoever
//                       released the connection (`callersFirst`): the connection's wrappers below see the caller
//                       (the tables it reads, its urgency). A caller's waiter goes ahead of the background's.
//   connection.query    three wrappers, installed on each new connection in this order (a call passes the last first):
//     1. change tracking (changes.ts `trackPgClient`): reads, writes, transactions, commits published to the other
//        nodes. Installed first, so it is the inner one: it sees exactly what goes to the server, and a prepared
//        statement's retry (below) passes through it again.
//     2. prepared statements (prepared.ts `prepareClient`): a repeating text gets a name. Outer: it names the config
//        the tracker then sees (the tracker reads the text either way).
//     3. turns (`takeTurns`): a result resumes its caller on a loop turn, except inside a transaction (the
//        connection would hold its locks while it waits).
// PGlite (one process, one connection): change tracking (changes.ts `trackPglite`); outside the transaction object,
// queries are refused inside a transaction's callback (they would wait for the transaction forever).
import { AsyncResource } from 'node:async_hooks';
import type pg from 'pg';
import { trackPgClient, trackPglite, type ChangeTracker } from './changes.js';
import { prepareClient, StatementNames } from './prepared.js';
import type { PerfSwitches } from './switches.js';
import { assertOutsideTransaction } from '../tx-scope.js';
import { isUrgent, nextTurn } from '../../core/turns.js';

export function installPgDriver(pool: pg.Pool, changes: ChangeTracker, switches: PerfSwitches): { namedStatements: () => number } {
  guard(pool as unknown as Queryable, 'query');
  takeTurns(pool as unknown as Queryable);
  callersFirst(pool);
  const names = switches.preparedStatements ? new StatementNames() : undefined;
  pool.on('connect', (client) => {
    trackPgClient(client, changes);
    if (names) prepareClient(client, names);
    // A connection checked out for a transaction holds its locks while it waits: only its last statement waits.
    takeTurns(client as unknown as Queryable, () => (client as unknown as { getTransactionStatus(): string | null }).getTransactionStatus() !== 'T');
  });
  return { namedStatements: () => names?.size ?? 0 };
}

export function installPgliteDriver(client: Parameters<typeof trackPglite>[0], changes: ChangeTracker): void {
  trackPglite(client, changes);
  guard(client as unknown as Queryable, 'query');
  guard(client as unknown as Queryable, 'exec');
}

/** A statement's result resumes its caller on a turn of its own (core/turns.ts), not in the reply's I/O callback. */
function takeTurns(target: Queryable, whenIdle: () => boolean = () => true): void {
  const original = target.query.bind(target);
  target.query = (...args: unknown[]) => {
    const out = original(...args) as Promise<unknown> | undefined;
    if (!out || typeof out.then !== 'function') return out;
    return out.then(
      (r) => (whenIdle() ? nextTurn().then(() => r) : r),
      (e: unknown) => {
        if (!whenIdle()) throw e;
        return nextTurn().then(() => {
          throw e;
        });
      },
    );
  };
}

/** Marks a caller's place in pg's queue of connection waiters. */
const CALLER = Symbol('zstack.caller');

/**
 * pg's pool.connect, for its waiters: each one's callback runs in its own caller's async context (below), and callers
 * go first. pg's pool serves its waiters first come, first served: under load a job record or a request's check would
 * wait for a connection behind the statements of a hundred running jobs and rollbacks. A caller's waiter
 * (core/turns.ts `isUrgent`) goes ahead of the background's, behind earlier callers'. (pg-pool keeps the waiters in
 * `_pendingQueue`; without that array the order stays pg's.)
 */
function callersFirst(pool: pg.Pool): void {
  const waiters = () => (pool as unknown as { _pendingQueue?: Array<Record<symbol, unknown>> })._pendingQueue;
  const connect = pool.connect.bind(pool) as (...args: unknown[]) => unknown;
  (pool as unknown as { connect: unknown }).connect = (...args: unknown[]) => {
    // pg-pool hands a released connection to the next waiter from inside `release()`, in the releasing caller's async
    // context. Bound, the waiter's callback (pool.query's) runs in its own caller's: the statements it sends count for
    // that caller (the tables a cached reply depends on, urgency), not for a request that happened to release.
    // (A resource and a closure, not AsyncResource.bind: bind defines deprecated accessors on every call, ~15 µs a
    // statement against ~0.4.)
    const last = args.length - 1;
    const callback = args[last];
    if (typeof callback === 'function') {
      const caller = new AsyncResource('zstack.pool-waiter');
      args[last] = (...a: unknown[]) => caller.runInAsyncScope(callback as (...b: unknown[]) => unknown, undefined, ...a);
    }
    const queue = waiters();
    const before = queue?.length;
    const out = connect(...args);
    // pool.query connects through this too; a waiter, when there is one, was queued synchronously, last.
    if (queue && isUrgent() && queue.length === before! + 1) {
      const mine = queue.pop()!;
      mine[CALLER] = true;
      let at = 0;
      while (at < queue.length && queue[at][CALLER]) at++;
      queue.splice(at, 0, mine);
    }
    return out;
  };
}

type Queryable = Record<string, (...args: unknown[]) => unknown>;

function guard(target: Queryable, method: string): void {
  const original = target[method].bind(target);
  target[method] = (...args: unknown[]) => {
    assertOutsideTransaction();
    return original(...args);
  };
}

// The one place the database drivers are wrapped, in a fixed order.
//
// pg (real PostgreSQL):
//   pool.query          refused inside a transaction's callback (tx-scope.ts: it would wait for a second connection
//                       while the transaction holds one); then notes the tables its statement names as read (changes.ts `trackPoolReads`): pool.query runs
//                       the statement on a connection later, possibly outside the caller's async context.
//   connection.query    two wrappers, installed on each new connection in this order (a call passes the last first):
//     1. change tracking (changes.ts `trackPgClient`): reads, writes, transactions, commits published to the other
//        nodes. Installed first, so it is the inner one: it sees exactly what goes to the server, and a prepared
//        statement's retry (below) passes through it again.
//     2. prepared statements (prepared.ts `prepareClient`): a repeating text gets a name. Outer: it names the config
//        the tracker then sees (the tracker reads the text either way).
// PGlite (one process, one connection): change tracking (changes.ts `trackPglite`); outside the transaction object,
// queries are refused inside a transaction's callback (they would wait for the transaction forever).
import type pg from 'pg';
import { trackPgClient, trackPglite, trackPoolReads, type ChangeTracker } from './changes.js';
import { prepareClient, StatementNames } from './prepared.js';
import type { PerfSwitches } from './switches.js';
import { assertOutsideTransaction } from '../tx-scope.js';
import { nextTurn } from '../../core/turns.js';

export function installPgDriver(pool: pg.Pool, changes: ChangeTracker, switches: PerfSwitches): { namedStatements: () => number } {
  trackPoolReads(pool, changes);
  guard(pool as unknown as Queryable, 'query');
  takeTurns(pool as unknown as Queryable);
  const names = switches.preparedStatements ? new StatementNames() : undefined;
  pool.on('connect', (client) => {
    trackPgClient(client, changes);
    if (names) prepareClient(client, names);
    takeTurns(client as unknown as Queryable);
  });
  return { namedStatements: () => names?.size ?? 0 };
}

export function installPgliteDriver(client: Parameters<typeof trackPglite>[0], changes: ChangeTracker): void {
  trackPglite(client, changes);
  guard(client as unknown as Queryable, 'query');
  guard(client as unknown as Queryable, 'exec');
}

/** A statement's result resumes its caller on a turn of its own (core/turns.ts), not in the reply's I/O callback. */
function takeTurns(target: Queryable): void {
  const original = target.query.bind(target);
  target.query = (...args: unknown[]) => {
    const out = original(...args) as Promise<unknown> | undefined;
    if (!out || typeof out.then !== 'function') return out;
    return out.then(
      (r) => nextTurn().then(() => r),
      (e: unknown) =>
        nextTurn().then(() => {
          throw e;
        }),
    );
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

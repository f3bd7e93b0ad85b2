// A query on the pool from inside a transaction waits for a second connection while the transaction holds the
// first: with every connection held that way it waits forever (PGlite has one connection, so there it always
// does). The transaction's callback runs in a scope; a pool query in that scope is refused with an error that
// names the mistake (pass the transaction instead), rather than hanging under load.
import { scopeSlot } from '../core/async-scope.js';

interface Scope {
  open: boolean;
}

const scope = scopeSlot<Scope>('transaction');

/** Runs a transaction's callback in the scope; the scope closes when the callback settles. */
export async function inTransactionScope<T>(fn: () => Promise<T>): Promise<T> {
  const s: Scope = { open: true };
  try {
    return await scope.run(s, fn);
  } finally {
    s.open = false;
  }
}

/** Detached work started inside a transaction (event listeners, background jobs) runs outside its scope. */
export function outsideTransactionScope<T>(fn: () => T): T {
  return scope.exit(fn);
}

export class PoolQueryInTransaction extends Error {
  constructor() {
    super('a query on the connection pool inside a transaction (it would wait for a second connection while holding one): run it on the transaction');
  }
}

/** Throws when called from inside an open transaction's callback. */
export function assertOutsideTransaction(): void {
  if (scope.get()?.open) throw new PoolQueryInTransaction();
}

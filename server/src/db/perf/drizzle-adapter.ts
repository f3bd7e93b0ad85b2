// The one use of drizzle beyond its public API, isolated here: running a statement text rendered once (template.ts)
// with new values through the session's `prepareQuery` — what drizzle's own `.prepare()` does, but for a text built
// by a template rather than by a query builder. drizzle-orm 0.x; checked by test/foundation/template.test.ts.
import type { Tx } from '../index.js';

interface SessionLike {
  prepareQuery(
    query: { sql: string; params: unknown[] },
    fields: undefined,
    name: undefined,
    arrayMode: boolean,
  ): { execute(values: Record<string, unknown>): Promise<unknown> };
}

/** Runs a rendered statement (placeholders filled from `values`, each through its column's encoder). */
export function executeRendered(db: Tx, query: { sql: string; params: unknown[] }, values: Record<string, unknown>): Promise<unknown> {
  const session = (db as unknown as { _: { session: SessionLike } })._.session;
  return session.prepareQuery(query, undefined, undefined, false).execute(values);
}

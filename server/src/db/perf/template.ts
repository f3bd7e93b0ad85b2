// Statements rendered once per shape. drizzle renders a statement's pieces to text on every execution; for the
// large statements of the hot paths (the VM reservation: dozens of sub-queries) that rendering costs more server
// CPU than everything else the call does in SQL. A builder written against a `Bind` gives each value a name: run
// with `immediate` it is an ordinary drizzle statement; run through a `StatementTemplates` the values become
// placeholders, the text is rendered the first time its shape is seen and reused after (filled with the call's
// values, each through its column's encoder, exactly as drizzle's own prepared queries do).
//
// The shape is what decides the text: the names bound, in order, plus every structural choice the builder makes
// that binds nothing (`bind.shape(x)`: an ORDER BY variant, a clause without values). With
// ZSTACK_CHECK_STATEMENT_SHAPES=1 (the test harness sets it) every call also renders and compares, so a choice
// that was not declared fails a test instead of running another shape's text.
//
// Building a statement with drizzle's query builders costs about as much as rendering it. A builder may therefore
// bind every value first and return a `Deferred`: a function that builds the SQL from the placeholders it got,
// called only when its shape's text is not known yet (and on every call when checking). A value bound after that
// (inside the deferred part) is an error: it would not be part of the shape.
import { is, Param, Placeholder, sql, type SQL } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import type { Tx } from '../index.js';
import { executeRendered } from './drizzle-adapter.js';

export interface Bind {
  /** A value of the statement under a name (the same name always carries the same value). */
  <T>(name: string, value: T): T;
  /** An array as ONE parameter (`= ANY(${bind.array(…)}::text[])`), whatever its length. */
  array(name: string, values: readonly unknown[]): SQL;
  /** A structural choice that binds no value: part of the shape. */
  shape<T extends string | number | boolean | null | undefined>(choice: T): T;
}

/** Values as they are: the statement is rendered by drizzle on every execution. */
export const immediate: Bind = Object.assign(<T>(_name: string, value: T): T => value, {
  array: (_name: string, values: readonly unknown[]) => sql`${sql.param(values)}`,
  shape: <T>(choice: T) => choice,
});

/** The same binder with every name under `prefix.` (a sub-statement's names cannot collide with the caller's). */
export function within(bind: Bind, prefix: string): Bind {
  return Object.assign(<T>(name: string, value: T): T => bind(`${prefix}.${name}`, value), {
    array: (name: string, values: readonly unknown[]) => bind.array(`${prefix}.${name}`, values),
    shape: bind.shape,
  });
}

/** Every property of `row` bound as `${prefix}.${key}` (insert values). */
export function bindAll<T extends object>(bind: Bind, prefix: string, row: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) if (v !== undefined) out[k] = bind(`${prefix}.${k}`, v);
  return out as T;
}

/** A statement's SQL, built on demand from the placeholders its builder bound beforehand. */
export type Deferred<T = SQL> = () => T;

class Recording {
  values: Record<string, unknown> = {};
  key: string[] = [];
  /** Set once the key is taken: binding after that is a builder bug. */
  sealed = false;
  readonly bind: Bind;

  constructor() {
    const bind = <T>(name: string, value: T): T => {
      if (this.sealed) throw new Error(`statement template: ${name} bound after the statement's values were taken (bind it before the deferred part)`);
      if (name in this.values) {
        if (this.values[name] !== value) throw new Error(`statement template: ${name} bound twice with different values`);
      } else {
        this.values[name] = value;
        this.key.push(name);
      }
      return sql.placeholder(name) as unknown as T;
    };
    this.bind = Object.assign(bind, {
      array: (name: string, values: readonly unknown[]) => sql`${bind(name, values)}`,
      shape: <T>(choice: T) => {
        if (this.sealed) throw new Error(`statement template: a shape choice made after the statement's values were taken`);
        this.key.push(`#${String(choice)}`);
        return choice;
      },
    });
  }
}

interface Rendered {
  sql: string;
  params: unknown[];
}

const dialect = new PgDialect();

export class StatementTemplates {
  private rendered = new Map<string, Rendered>();
  /** Texts rendered so far (once per shape, or on every call when checking). */
  renders = 0;

  /** Shapes whose text is kept. */
  get shapes(): number {
    return this.rendered.size;
  }

  /** `check` unset: ZSTACK_CHECK_STATEMENT_SHAPES, read at the first statement (the test harness sets it late). */
  constructor(private opts: { maxShapes?: number; check?: boolean; keep?: boolean } = {}) {}

  /**
   * Runs the statement `build` makes (with placeholders) on `db`; its text is rendered once per shape. A `Deferred`
   * returned by `build` is called only when the text is rendered.
   */
  async rows<T = Record<string, unknown>>(db: Tx, name: string, build: (bind: Bind) => SQL | Deferred): Promise<T[]> {
    const rec = new Recording();
    const built = build(rec.bind);
    const key = `${name}\n${rec.key.join('\n')}`;
    rec.sealed = true;
    this.opts.check ??= process.env.ZSTACK_CHECK_STATEMENT_SHAPES === '1';
    // ZSTACK_STATEMENT_TEMPLATES=0 (perf/README.md): rendered on every call, nothing kept.
    this.opts.keep ??= process.env.ZSTACK_STATEMENT_TEMPLATES !== '0';
    let query = this.opts.keep ? this.rendered.get(key) : undefined;
    if (!query || this.opts.check) {
      const statement = typeof built === 'function' ? built() : built;
      const fresh = dialect.sqlToQuery(statement);
      this.renders++;
      if (query) checkSameShape(name, query, fresh);
      query = fresh;
      if (this.opts.keep) {
        if (this.rendered.size >= (this.opts.maxShapes ?? 200)) this.rendered.clear();
        this.rendered.set(key, query);
      }
    }
    const result = (await executeRendered(db, query, rec.values)) as { rows: T[] };
    return result.rows;
  }
}

/**
 * Checks that a shape's cached text is the one this call renders, and that every value in it that is not a
 * placeholder is the same: a choice not declared with `bind.shape`, or a value not bound (frozen into the cached
 * text's parameters at its first rendering), fails here.
 */
function checkSameShape(name: string, cached: Rendered, fresh: Rendered): void {
  if (fresh.sql !== cached.sql) throw new Error(`statement template ${name}: one shape, two texts (a structural choice not declared with bind.shape)`);
  fresh.params.forEach((p, i) => {
    if (is(p, Placeholder) || (is(p, Param) && is(p.value, Placeholder))) return;
    const value = (v: unknown) => JSON.stringify(is(v, Param) ? v.value : v);
    if (value(p) !== value(cached.params[i]))
      throw new Error(`statement template ${name}: parameter $${i + 1} is not bound (${value(p)} vs ${value(cached.params[i])})`);
  });
}

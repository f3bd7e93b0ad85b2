// Which tables changed, detected where every statement passes: the driver. perf/driver.ts wraps pg's clients
// and PGlite so that INSERT/UPDATE/DELETE/TRUNCATE statements (drizzle's or raw SQL: the SQL text names the table)
// mark their tables dirty, and the table's generation is bumped AFTER the write is committed (autocommit: after the
// statement; in a transaction: after COMMIT; ROLLBACK discards) and BEFORE the statement's promise resolves — so
// before the writer can send its reply. Readers capture generations BEFORE running their SQL and record which tables
// their statements named (AsyncLocalStorage), so a result stored under a generation is never older than any write
// committed and acknowledged before that generation was read (it may be newer, which is harmless).
//
// Several management nodes (pg only): each write also advances one sequence per written table and then the global
// sequence `qgen`, after the commit, on the writer's own connection, before resolving. A reader calls `sync()`,
// which waits for a *step* that started after the call: the step reads `qgen` (one tiny statement) and, only when
// it moved, every table's sequence, and bumps the local generation of the tables whose sequence moved. A step that
// starts after a writer's reply therefore sees its write: either qgen moved and the tables' sequences (advanced
// before qgen) are read after it, or qgen did not move since the previous step, which then read qgen at or after
// the writer's bump and the tables after that. When qgen moved only by this node's own publishes, the step reads
// nothing more and counts those publishes' table numbers in (only unbroken runs: see `onlyOwn`), so a later full
// read bumps just the tables other nodes wrote. Steps are batched: at most one runs, requests arriving meanwhile
// share the next one, so the cost is one statement per round trip (and per `minStepIntervalMs`), not per request.
// LISTEN/NOTIFY was not chosen: delivery is asynchronous, so a writer cannot know, before replying, that another
// node has processed its notification — a client could read its own write stale there for a (short) window.
// When a step reads every table's sequence, a table counts as written elsewhere only when a number between the
// last value read and this one was not taken by this node (its publishes' numbers are known): its own commits were
// counted locally already, and bumping them again would drop replies cached after them.
// PostgreSQL restarts (sequences may go back after a crash) are detected by pg_postmaster_start_time(); any
// failed step forgets everything seen. Writes made outside the management servers (psql) are not seen; running
// `SELECT nextval('qgen_flush')` after them flushes every node's caches at their next step (its own sequence, read by
// the step's one statement: no other node's write at the same time can hide it).
import { scopeSlot } from '../../core/async-scope.js';
import type pg from 'pg';
import { Batcher } from '../../core/batcher.js';

type Dirty = Set<string> | 'all';

interface Piece {
  control?: 'begin' | 'commit' | 'rollback';
  writes?: Dirty;
}

/** Generations to compare a cached result against: the global version (fast path) and each table's generation. */
export interface Stamp {
  version: number;
  epoch: number;
  /** Read only: stamps taken between two changes share one copy. */
  gens: ReadonlyMap<string, number>;
}

const reads = scopeSlot<Set<string>>('reads');
const TARGET = String.raw`(?:only\s+)?((?:"[^"]+"|[a-z_][\w$]*)(?:\s*\.\s*(?:"[^"]+"|[a-z_][\w$]*))?)`;
const WRITE_PATTERNS = [
  new RegExp(
    String.raw`\b(?:insert\s+into|delete\s+from|truncate(?:\s+table)?|merge\s+into|copy|alter\s+table(?:\s+if\s+exists)?|drop\s+table(?:\s+if\s+exists)?)\s+${TARGET}`,
    'gi',
  ),
  // UPDATE as a statement or in a CTE; not `FOR [NO KEY] UPDATE` (a lock), `DO UPDATE` (an upsert), `ON UPDATE` (DDL).
  new RegExp(String.raw`(?<!\b(?:for|do|key|on)\s+)\bupdate\s+${TARGET}`, 'gi'),
];
const SEQ_PREFIX = 'qgen_';
export const GLOBAL_SEQUENCE = 'qgen';
/** `SELECT nextval('qgen_flush')`: every node forgets everything cached at its next step (writes made by hand). */
export const FLUSH_SEQUENCE = 'qgen_flush';
// A fresh sequence reads last_value 1 before and after its first nextval: count is_called in.
const valueOf = (alias: string) => `(CASE WHEN ${alias}.is_called THEN ${alias}.last_value ELSE 0 END)::text`;
const VALUE = valueOf('s');

export class ChangeTracker {
  readonly tables: ReadonlySet<string>;
  /** Bumped on every change: an entry stamped with the current version is valid without looking at tables. */
  private version = 0;
  /** Bumped when everything must be forgotten (an unparsable write, a lost connection to the shared state). */
  private epoch = 0;
  private gens = new Map<string, number>();
  /** A copy of `gens` for stamps, made on the first stamp after a change (a read-mostly server copies it rarely). */
  private snapshot?: ReadonlyMap<string, number>;
  private analyzed = new Map<string, Piece[]>();
  private named = new Map<string, string[]>();
  /** Tables a DELETE on a table also writes (rows removed by its triggers, e.g. a resource's tags). */
  private deletionWrites = new Map<string, string[]>();
  private wordRe: RegExp;
  shared?: SharedGenerations;

  constructor(
    tables: Iterable<string>,
    /** Table → tables its deletes, and its key updates, write through foreign key actions (see db/index.ts). */
    private readonly dependents: ForeignKeyDependents = { onDelete: new Map(), onUpdate: new Map() },
  ) {
    this.tables = new Set(tables);
    for (const t of this.tables) this.gens.set(t, 0);
    this.wordRe = /"([^"]+)"|\b([a-z_][a-z0-9_]*)\b/gi;
  }

  /** A DELETE (or TRUNCATE) on `table` also changes `tables` (a trigger of `table` writes them). */
  deletionAlsoWrites(table: string, tables: string[]): void {
    this.deletionWrites.set(table, tables);
    this.analyzed.clear();
  }

  /** Runs `fn`, collecting the known tables named by every statement it issues (in its async context). */
  async trackReads<T>(fn: () => Promise<T>): Promise<{ result: T; tables: Set<string> }> {
    const tables = new Set<string>();
    // Awaited inside the context: `fn` may return a lazy thenable (a drizzle query builder starts its statement
    // only when `then` is called), which would otherwise run after `run` returned, outside the context.
    const result = await reads.run(tables, async () => await fn());
    return { result, tables };
  }

  stamp(): Stamp {
    return { version: this.version, epoch: this.epoch, gens: (this.snapshot ??= new Map(this.gens)) };
  }

  /** The part of `stamp` about `tables` (what a cache entry keeps). */
  narrow(stamp: Stamp, tables: Iterable<string>): Stamp {
    const gens = new Map<string, number>();
    for (const t of tables) gens.set(t, stamp.gens.get(t) ?? 0);
    return { version: stamp.version, epoch: stamp.epoch, gens };
  }

  /** True while none of `tables` changed since `stamp` was taken. */
  isCurrent(stamp: Stamp, tables: Iterable<string>): boolean {
    if (stamp.version === this.version) return true;
    if (stamp.epoch !== this.epoch) return false;
    if (Array.isArray(tables)) {
      // Indexed: no iterator per call (a page checks a hundred cached rows).
      for (let i = 0; i < tables.length; i++) if (this.gens.get(tables[i]) !== stamp.gens.get(tables[i])) return false;
      return true;
    }
    for (const t of tables) if (this.gens.get(t) !== stamp.gens.get(t)) return false;
    return true;
  }

  /** Called after a commit (or by a sync step for another node's commit). Synchronous: no await between commit and bump. */
  changed(tables: Dirty): void {
    this.version++;
    this.snapshot = undefined;
    if (tables === 'all') {
      this.epoch++;
      return;
    }
    for (const t of tables) this.gens.set(t, (this.gens.get(t) ?? 0) + 1);
  }

  /** Waits until changes committed on other nodes before this call are reflected (no-op on a single node). */
  async sync(): Promise<void> {
    if (this.shared) await this.shared.sync();
  }

  /** Records `tables` as read by the `trackReads` in whose context it is called (a result that depends on them). */
  noteTables(tables: Iterable<string>): void {
    const into = reads.get();
    if (into) for (const t of tables) into.add(t);
  }

  /** Records the tables a statement names, for the `trackReads` in whose context it is issued. */
  noteRead(text: string): void {
    const into = reads.get();
    if (!into) return;
    for (const t of this.namedTables(text)) into.add(t);
  }

  private namedTables(text: string): string[] {
    let out = this.named.get(text);
    if (out) return out;
    const found = new Set<string>();
    for (const m of text.matchAll(this.wordRe)) {
      const name = m[1] ?? m[2].toLowerCase();
      if (this.tables.has(name)) found.add(name);
    }
    out = [...found];
    if (this.named.size > 5000) this.named.clear();
    this.named.set(text, out);
    return out;
  }

  /** The transaction control and written tables of a statement text (memoized: drizzle's texts repeat). */
  analyze(text: string): Piece[] {
    let out = this.analyzed.get(text);
    if (out) return out;
    const parts = /;\s*\S/.test(text) ? text.split(';') : [text];
    out = [];
    for (const part of parts) {
      const piece = this.analyzePiece(part);
      if (piece) out.push(piece);
    }
    if (this.analyzed.size > 5000) this.analyzed.clear();
    this.analyzed.set(text, out);
    return out;
  }

  private analyzePiece(text: string): Piece | undefined {
    const head = text.trimStart().slice(0, 24).toLowerCase();
    if (/^(begin|start\s+transaction)\b/.test(head)) return { control: 'begin' };
    if (/^(commit|end)\b(?!\s+prepared)/.test(head)) return { control: 'commit' };
    if (/^(rollback|abort)\b(?!\s+(to|prepared)\b)/.test(head)) return { control: 'rollback' };
    if (!/insert|update|delete|truncate|merge|copy|alter|drop|create/i.test(text)) return undefined;
    const writes = new Set<string>();
    let unknown = false;
    for (const re of WRITE_PATTERNS) {
      for (const m of text.matchAll(re)) {
        const ident = m[1].split('.').pop()!.trim();
        const name = ident.startsWith('"') ? ident.slice(1, -1) : ident.toLowerCase();
        if (this.tables.has(name)) {
          writes.add(name);
          if (/^(delete|truncate)/i.test(m[0])) for (const t of this.deletionWrites.get(name) ?? []) writes.add(t);
        } else if (!['set', 'of', 'skip', 'nowait'].includes(name)) unknown = true;
      }
    }
    // A write whose target is not a known table (a function, a new table): forget everything rather than guess.
    if (unknown) return { writes: 'all' };
    // Deletes (and updates, where a foreign key has an ON UPDATE action) also write, through the database's foreign
    // key actions, the tables depending on theirs.
    const deletes = /\b(delete|truncate)\b/i.test(text);
    const updates = /\bupdate\b/i.test(text);
    // The live set is iterated: tables added are visited too, so cascades of cascades are followed.
    if (deletes || updates) {
      for (const t of writes) {
        if (deletes) for (const d of this.dependents.onDelete.get(t) ?? []) writes.add(d);
        if (updates) for (const d of this.dependents.onUpdate.get(t) ?? []) writes.add(d);
      }
    }
    return writes.size ? { writes } : undefined;
  }

  sequenceOf(table: string): string {
    return SEQ_PREFIX + table;
  }
}

/** Table → the tables PostgreSQL writes through foreign key actions when its rows are deleted / their keys updated. */
export interface ForeignKeyDependents {
  onDelete: ReadonlyMap<string, readonly string[]>;
  onUpdate: ReadonlyMap<string, readonly string[]>;
}

/** Per connection: inside a transaction, the tables written so far. */
interface TxState {
  inTx: boolean;
  dirty: Set<string>;
  all: boolean;
}

function merge(into: { tables: Set<string>; all: boolean }, d: Dirty): void {
  if (d === 'all') into.all = true;
  else for (const t of d) into.tables.add(t);
}

/**
 * Applies a statement's pieces to the connection's transaction state once it ran (or failed); returns what was
 * committed by it. A failed COMMIT or autocommit write is counted as committed (its outcome may be unknown).
 */
function afterStatement(st: TxState, pieces: Piece[]): Dirty | undefined {
  const committed = { tables: new Set<string>(), all: false };
  for (const p of pieces) {
    if (p.control === 'begin') {
      st.inTx = true;
      st.dirty = new Set();
      st.all = false;
    } else if (p.control === 'commit') {
      if (st.all) committed.all = true;
      for (const t of st.dirty) committed.tables.add(t);
      st.inTx = false;
      st.dirty = new Set();
      st.all = false;
    } else if (p.control === 'rollback') {
      st.inTx = false;
      st.dirty = new Set();
      st.all = false;
    } else if (p.writes) {
      if (st.inTx) {
        if (p.writes === 'all') st.all = true;
        else for (const t of p.writes) st.dirty.add(t);
      } else merge(committed, p.writes);
    }
  }
  if (committed.all) return 'all';
  return committed.tables.size ? committed.tables : undefined;
}

const patched = Symbol('zstack.changes');

function textOf(config: unknown): string | undefined {
  if (typeof config === 'string') return config;
  if (config && typeof config === 'object' && typeof (config as { submit?: unknown }).submit !== 'function') {
    const text = (config as { text?: unknown }).text;
    return typeof text === 'string' ? text : undefined;
  }
  return undefined;
}

/** A pg connection reports reads and writes to `tracker` and publishes its commits (perf/driver.ts installs it). */
export function trackPgClient(client: pg.PoolClient | pg.Client, tracker: ChangeTracker): void {
  const c = client as unknown as Record<PropertyKey, unknown> & { query: (...args: unknown[]) => unknown };
  if (c[patched]) return;
  c[patched] = true;
  const original = c.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
  const st: TxState = { inTx: false, dirty: new Set(), all: false };
  c.query = (...args: unknown[]) => {
    const text = textOf(args[0]);
    if (text === undefined) return original(...args);
    tracker.noteRead(text);
    const pieces = tracker.analyze(text);
    if (pieces.length === 0) return original(...args);
    const cb = typeof args[args.length - 1] === 'function' ? (args.pop() as (e: unknown, r?: unknown) => void) : undefined;
    const run = (async () => {
      let result: unknown;
      try {
        result = await original(...args);
      } catch (e) {
        const committed = afterStatement(st, pieces);
        if (committed) tracker.changed(committed);
        throw e;
      }
      const committed = afterStatement(st, pieces);
      if (committed) {
        tracker.changed(committed);
        if (tracker.shared) await tracker.shared.publish(original, committed);
      }
      return result;
    })();
    if (!cb) return run;
    run.then(
      (r) => cb(null, r),
      (e) => cb(e),
    );
    return undefined;
  };
}

/** PGlite (one process, one connection): the same detection; no other node to tell. */
export function trackPglite(
  client: { query: (...args: any[]) => Promise<any>; exec: (...args: any[]) => Promise<any>; transaction: (fn: (tx: any) => Promise<any>) => Promise<any> },
  tracker: ChangeTracker,
): void {
  const st: TxState = { inTx: false, dirty: new Set(), all: false };
  const wrap =
    (fn: (...args: any[]) => Promise<any>, state: () => TxState) =>
    async (...args: any[]) => {
      const text = typeof args[0] === 'string' ? args[0] : undefined;
      if (text === undefined) return fn(...args);
      tracker.noteRead(text);
      const pieces = tracker.analyze(text);
      if (pieces.length === 0) return fn(...args);
      try {
        return await fn(...args);
      } finally {
        const committed = afterStatement(state(), pieces);
        if (committed) tracker.changed(committed);
      }
    };
  client.query = wrap(client.query.bind(client), () => st);
  client.exec = wrap(client.exec.bind(client), () => st);
  const transaction = client.transaction.bind(client);
  client.transaction = (fn) => {
    // PGlite runs BEGIN/COMMIT itself: the transaction's writes count once its promise resolves (committed).
    const txState: TxState = { inTx: true, dirty: new Set(), all: false };
    return transaction(async (tx: any) => {
      tx.query = wrap(tx.query.bind(tx), () => txState);
      tx.exec = wrap(tx.exec.bind(tx), () => txState);
      const rollback = tx.rollback.bind(tx);
      tx.rollback = async () => {
        txState.dirty = new Set();
        txState.all = false;
        return rollback();
      };
      return fn(tx);
    }).then(
      (r) => {
        tracker.changed(txState.all ? 'all' : txState.dirty);
        return r;
      },
      (e) => {
        throw e;
      },
    );
  };
}

/** The other nodes' commits, through PostgreSQL sequences (see the top of the file). */
export class SharedGenerations {
  private seen?: { started: string; global: string; flush: string; tables: Map<string, string> };
  private pumping = false;
  private publishes = new Batcher<{ query: (text: string) => Promise<unknown>; tables: Dirty }, void>((batch) => this.publishBatch(batch));
  /** Counters: sync steps run, publish statements run. */
  steps = 0;
  published = 0;
  private waiting?: { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void };
  private lastStart = 0;
  private readAll: string;
  /** qgen values this node's publishes took and no step has passed yet → the value each written table's sequence took. */
  private own = new Map<number, Map<string, number>>();

  constructor(
    private pool: pg.Pool,
    private tracker: ChangeTracker,
    private minStepIntervalMs = 0,
  ) {
    this.readAll = [...tracker.tables].map((t) => `SELECT '${t}' AS t, ${VALUE} AS v FROM ${tracker.sequenceOf(t)} s`).join(' UNION ALL ');
  }

  /** Creates the sequences (idempotent; run under the migration lock). */
  static async ensureSequences(client: { query(text: string): Promise<unknown> }, tables: Iterable<string>): Promise<void> {
    const names = [GLOBAL_SEQUENCE, FLUSH_SEQUENCE, ...[...tables].map((t) => SEQ_PREFIX + t)];
    await client.query(names.map((n) => `CREATE SEQUENCE IF NOT EXISTS ${n}`).join('; '));
  }

  /**
   * After a commit: each written table's sequence, then the global one, before the writer goes on. Concurrent writers
   * share statements (core/batcher.ts: while one runs, later writers gather into the next), which the first writer
   * of the batch runs on its own (idle, waiting) connection — never a pool connection, which all waiting writers
   * might be holding.
   */
  publish(query: (text: string) => Promise<unknown>, tables: Dirty): Promise<void> {
    return this.publishes.add({ query, tables });
  }

  private async publishBatch(batch: Array<{ query: (text: string) => Promise<unknown>; tables: Dirty }>): Promise<void[]> {
    const written = new Set<string>();
    for (const { tables } of batch) for (const t of tables === 'all' ? this.tracker.tables : tables) written.add(t);
    const list = [...written].sort();
    const results = await batch[0].query(
      `SELECT ${list.map((t) => `nextval('${this.tracker.sequenceOf(t)}') AS "${t}"`).join(', ')}; SELECT nextval('${GLOBAL_SEQUENCE}') AS v`,
    );
    const [tablesRow, globalRow] = Array.isArray(results) ? results.map((r) => (r as { rows?: Array<Record<string, string>> })?.rows?.[0]) : [];
    if (globalRow?.v !== undefined && tablesRow) {
      // Bounded: a node that writes and never reads forgets its values (its next step then reads every table).
      if (this.own.size >= 10_000) this.own.clear();
      this.own.set(Number(globalRow.v), new Map(list.map((t) => [t, Number(tablesRow[t])])));
    }
    this.published++;
    return batch.map(() => undefined);
  }

  /** Resolves after a step that started after this call has completed. */
  sync(): Promise<void> {
    if (this.waiting) return this.waiting.promise;
    let resolve!: () => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
    this.waiting = { promise, resolve, reject };
    if (!this.pumping) void this.pump();
    return promise;
  }

  /** Runs steps back to back while callers wait; each step serves every caller that arrived before it started. */
  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.waiting) {
        const wait = this.lastStart + this.minStepIntervalMs - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const batch = this.waiting;
        this.waiting = undefined;
        this.lastStart = Date.now();
        try {
          await this.step();
          batch.resolve();
        } catch (e) {
          batch.reject(e);
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  /**
   * True when every qgen value in (from, to] came from this node's publishes. Then also counts those publishes into
   * `tables` (the sequence values last read): a table's value advances only through an unbroken run of this node's own
   * values, so a number another node took (a gap, or one not yet followed by its qgen) stays unseen and the next full
   * read finds the table moved — never the reverse — and forgets own values up to `to`. When false, forgets nothing:
   * the full read that follows needs them.
   */
  private onlyOwn(from: number, to: number, tables: Map<string, string>): boolean {
    let all = to > from && to - from <= this.own.size;
    for (let x = from + 1; all && x <= to; x++) if (!this.own.has(x)) all = false;
    if (!all) return false;
    const passed = [...this.own].filter(([x]) => x <= to).map(([, values]) => values);
    for (const [t, values] of takenByTable(passed)) tables.set(t, String(runEnd(Number(tables.get(t) ?? 0), values)));
    this.forgetOwn(to);
    return true;
  }

  private forgetOwn(to: number): void {
    for (const x of this.own.keys()) if (x <= to) this.own.delete(x);
  }

  private async step(): Promise<void> {
    this.steps++;
    try {
      const { rows } = await this.pool.query<{ v: string; f: string; started: string }>(
        `SELECT ${valueOf('g')} AS v, ${valueOf('f')} AS f, pg_postmaster_start_time()::text AS started FROM ${GLOBAL_SEQUENCE} g, ${FLUSH_SEQUENCE} f`,
      );
      const { v, f, started } = rows[0];
      const seen = this.seen;
      const same = seen !== undefined && seen.started === started && seen.flush === f;
      if (same && seen.global === v) return;
      // qgen may have moved by a publish of this node whose reply is not in yet (its value unknown): wait for the
      // publishes in flight, or this node's own commit would count as another node's and flush its caches again.
      await this.publishes.idle();
      // qgen moved only by this node's own publishes (each nextval is one number, ours are known): no other node
      // wrote, and this node's writes are already counted locally. Otherwise read every table's sequence.
      if (same && this.onlyOwn(Number(seen.global), Number(v), seen.tables)) {
        seen.global = v;
        return;
      }
      const all = await this.pool.query<{ t: string; v: string }>(this.readAll);
      const tables = new Map(all.rows.map((r) => [r.t, r.v]));
      if (!same) this.tracker.changed('all');
      else {
        // A table moved by numbers this node took only was counted locally when it committed: not moved.
        const own = takenByTable(this.own.values());
        const moved = new Set<string>();
        for (const [t, value] of tables) {
          const before = seen.tables.get(t);
          if (before !== value && (before === undefined || runEnd(Number(before), own.get(t)) < Number(value))) moved.add(t);
        }
        // qgen moved (not by this node) but no other node's table did: `SELECT nextval('qgen')` run by hand.
        this.tracker.changed(moved.size ? moved : 'all');
      }
      // After a restart the numbers start over: what this node took before means nothing.
      if (seen && seen.started !== started) this.own.clear();
      else this.forgetOwn(Number(v));
      this.seen = { started, global: v, flush: f, tables };
    } catch (e) {
      // Unknown state: everything cached may be stale; start over at the next step.
      this.seen = undefined;
      this.tracker.changed('all');
      throw e;
    }
  }
}

/** Per table, the numbers `publishes` took from its sequence, ascending. */
function takenByTable(publishes: Iterable<Map<string, number>>): Map<string, number[]> {
  const taken = new Map<string, number[]>();
  for (const values of publishes) for (const [t, v] of values) (taken.get(t) ?? taken.set(t, []).get(t)!).push(v);
  for (const values of taken.values()) values.sort((a, b) => a - b);
  return taken;
}

/** The end of the unbroken run of `values` (ascending) that continues `at` (`at` when the next number is not there). */
function runEnd(at: number, values: readonly number[] | undefined): number {
  for (const v of values ?? []) {
    if (v === at + 1) at = v;
    else if (v > at) break;
  }
  return at;
}

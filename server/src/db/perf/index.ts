// The performance layer of one database, behind one small interface (README.md in this folder): change tracking
// (changes.ts) underneath, and on it the reply cache (reply-cache.ts) and the read cache (read-cache.ts); beside
// it, prepared statements (prepared.ts) and statement templates (template.ts). Each has its own switch.
import { ChangeTracker, SharedGenerations, type ForeignKeyDependents } from './changes.js';
import { ReadCache } from './read-cache.js';
import { ReplyCache } from './reply-cache.js';
import { RowCache } from './row-cache.js';
import { perfSwitches, type PerfSwitches } from './switches.js';

export { ChangeTracker, SharedGenerations, type ForeignKeyDependents, type Stamp } from './changes.js';
export { ReadCache } from './read-cache.js';
export { ReplyCache } from './reply-cache.js';
export { RowCache, type CachedRow } from './row-cache.js';
export { installPgDriver, installPgliteDriver } from './driver.js';
export { perfSwitches, type PerfSwitches } from './switches.js';

export class Perf {
  /** The reply cache of the query engine; undefined when switched off. */
  readonly replies: ReplyCache | undefined;
  /** The row cache of the query engine's rendered pages; undefined when switched off. */
  readonly rows: RowCache | undefined;
  /** The read cache (sessions, `App.remembered`); undefined when switched off. */
  readonly reads: ReadCache | undefined;
  private syncErrorAt = 0;

  constructor(
    readonly changes: ChangeTracker,
    readonly switches: PerfSwitches,
  ) {
    this.replies = switches.replyCacheBytes > 0 ? new ReplyCache(switches.replyCacheBytes, switches.replyCacheMaxAgeMs) : undefined;
    this.rows = switches.rowCacheBytes > 0 ? new RowCache(switches.rowCacheBytes) : undefined;
    this.reads = switches.readCache ? new ReadCache() : undefined;
  }

  /**
   * The one freshness sync of a request, on arrival: other nodes' commits acknowledged before it are reflected from
   * here on (one statement per round trip, shared by concurrent requests). Resolves to the tracker the caches may be
   * used with, or undefined: no cache is on, or the sync failed (then the request reads everything, and a line is
   * logged at most once a minute).
   */
  async fresh(): Promise<ChangeTracker | undefined> {
    if (!this.replies && !this.reads) return undefined;
    try {
      await this.changes.sync();
      return this.changes;
    } catch (e) {
      if (Date.now() - this.syncErrorAt > 60_000) {
        this.syncErrorAt = Date.now();
        console.error('[perf] caches bypassed: cannot read the shared generations:', e instanceof Error ? e.message : e);
      }
      return undefined;
    }
  }

  /**
   * A small read reused while none of its tables changed on any node — only when `synced` (the call did `fresh()`
   * on arrival) and the read cache is on; otherwise it reads. The value is shared: read-only.
   */
  read<T>(synced: boolean | undefined, key: string, maxAgeMs: number, read: () => Promise<T>): Promise<T> {
    if (!synced || !this.reads) return read();
    return this.reads.read(this.changes, key, maxAgeMs, read);
  }

  /** `dependents`: table → tables its deletes write through foreign key actions (db/index.ts). */
  static create(tables: Iterable<string>, dependents?: ForeignKeyDependents, switches = perfSwitches()): Perf {
    return new Perf(new ChangeTracker(tables, dependents), switches);
  }

  /** pg: the other nodes' commits, read through PostgreSQL sequences (changes.ts). */
  shareThrough(pool: import('pg').Pool): void {
    this.changes.shared = new SharedGenerations(pool, this.changes, this.switches.syncIntervalMs);
  }
}

// The row cache of the query engine: an inventory's JSON text as PostgreSQL rendered it (core/json-page.ts), keyed by
// the version of every tuple it was rendered from — the row's and each nested row's `ctid` and `xmin`. A committed
// tuple version never changes (an UPDATE writes a new one, with a new `xmin`), so an entry is valid as long as its key
// is what the database reports: nothing to invalidate, nothing to sync between nodes. A page whose conditions differ
// from every earlier request (the reply cache cannot answer it) still reuses the rows it shares with them. Bounded by
// bytes, evicting the least recently used by CLOCK (second chance): a read only marks its entry, so a page's hundred
// reads move nothing in the map; switch: ZSTACK_ROW_CACHE_MB (README.md in this folder).
import type { Stamp } from './changes.js';

export interface CachedRow {
  /** The inventory's JSON text, UTF-8. */
  json: Buffer;
  /** The version of every tuple it came from: the row's own, then each nested row's. */
  version: string;
  /** The nested tables' generations taken before `version` was last read (after a freshness sync), if it was. */
  verified?: Stamp;
  /** What the reply's `schema` map depends on (the discriminator's value, each nested array's length), and its key. */
  skeleton(): Record<string, unknown>;
  skeletonKey: string;
}

type Entry = CachedRow & { size: number; referenced: boolean };

/** Per-entry bookkeeping counted against the bound besides the text, the key and the version. */
const OVERHEAD = 128;

export class RowCache {
  private entries = new Map<string, Entry>(); // the clock's order: the hand is at the first
  private used = 0;
  hits = 0;
  misses = 0;

  constructor(readonly maxBytes: number) {}

  get bytes(): number {
    return this.used;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Without counting or touching (how many rows of a page are here). */
  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** The entry, marked recently used, without counting a hit or a miss (the caller counts: `served`). */
  peek(key: string): CachedRow | undefined {
    const e = this.entries.get(key);
    if (e) e.referenced = true;
    return e;
  }

  /** Counts what a page took from the cache and what it had to render. */
  served(hits: number, misses: number): void {
    this.hits += hits;
    this.misses += misses;
  }

  get(key: string): CachedRow | undefined {
    const e = this.peek(key);
    if (e) this.hits++;
    else this.misses++;
    return e;
  }

  set(key: string, row: CachedRow): void {
    const size = row.json.length + key.length + row.version.length + OVERHEAD;
    const old = this.entries.get(key);
    if (old) {
      this.entries.delete(key);
      this.used -= old.size;
    }
    if (size > this.maxBytes) return;
    // The hand: an entry read since it last passed gets a second chance (to the back, unmarked); the first unmarked goes.
    while (this.used + size > this.maxBytes) {
      const [k, e] = this.entries.entries().next().value as [string, Entry];
      this.entries.delete(k);
      if (e.referenced) {
        e.referenced = false;
        this.entries.set(k, e);
      } else this.used -= e.size;
    }
    this.entries.set(key, { ...row, size, referenced: false });
    this.used += size;
  }

  clear(): void {
    this.entries.clear();
    this.used = 0;
  }
}

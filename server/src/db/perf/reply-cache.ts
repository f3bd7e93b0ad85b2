// The reply cache of the query engine: the serialized reply (bytes) of a Query API, keyed by the normalized request,
// valid while none of the tables its statements named has changed (changes.ts: generations bumped after each
// commit, other nodes' commits seen through PostgreSQL before every lookup). Bounded by bytes (LRU); its switches
// (size, longest life) are in index.ts. A Normal account's query is scoped: the scope is part of the key.
import type { Chunks } from '../../core/chunks.js';
import type { ChangeTracker, Stamp } from './changes.js';

interface Entry {
  body: Buffer | Chunks;
  size: number;
  stamp: Stamp;
  tables: string[];
  at: number;
}

/** Per-entry bookkeeping counted against the bound besides the body and the key. */
const OVERHEAD = 256;

export class ReplyCache {
  private entries = new Map<string, Entry>(); // in LRU order: the first is the least recently used
  private used = 0;
  hits = 0;
  misses = 0;

  constructor(
    readonly maxBytes: number,
    readonly maxAgeMs = 60_000,
  ) {}

  get bytes(): number {
    return this.used;
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string, changes: ChangeTracker): Buffer | Chunks | undefined {
    const e = this.entries.get(key);
    if (!e) {
      this.misses++;
      return undefined;
    }
    if (!changes.isCurrent(e.stamp, e.tables) || Date.now() - e.at > this.maxAgeMs) {
      this.remove(key, e);
      this.misses++;
      return undefined;
    }
    this.entries.delete(key);
    this.entries.set(key, e);
    this.hits++;
    return e.body;
  }

  /** Stores `body` computed by statements naming `tables`, run after `stamp` was taken. */
  set(key: string, body: Buffer | Chunks, stamp: Stamp, tables: Iterable<string>, changes: ChangeTracker): void {
    const list = [...tables];
    const size = body.length + key.length * 2 + OVERHEAD + list.length * 32;
    const old = this.entries.get(key);
    if (old) this.remove(key, old);
    if (size > this.maxBytes) return;
    while (this.used + size > this.maxBytes) {
      const [k, e] = this.entries.entries().next().value as [string, Entry];
      this.remove(k, e);
    }
    this.entries.set(key, { body, size, stamp: changes.narrow(stamp, list), tables: list, at: Date.now() });
    this.used += size;
  }

  clear(): void {
    this.entries.clear();
    this.used = 0;
  }

  private remove(key: string, e: Entry): void {
    this.entries.delete(key);
    this.used -= e.size;
  }
}

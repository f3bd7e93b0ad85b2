// The read cache: small reads that rarely change (a session, an instance offering, an image), reused while none of
// the tables they read has changed — the change tracking (changes.ts) decides, so a write through any management
// node drops them. Only valid after the call has synced with the other nodes (the router does it once per request,
// `Perf.fresh()`, and marks the call context): without that, `read` always reads. `maxAgeMs` bounds
// how long a value may live at all (writes made outside the servers, e.g. psql, are not tracked): past it, the
// value is refreshed (in the background, for up to another maxAgeMs, when nothing it read has changed).
// Callers must treat the values as read-only: the same object is handed to every caller.
import type { ChangeTracker, Stamp } from './changes.js';

interface Entry {
  value: unknown;
  stamp: Stamp;
  tables: Set<string>;
  at: number;
  refreshing?: boolean;
}

export class ReadCache {
  private entries = new Map<string, Entry>();
  hits = 0;
  misses = 0;

  constructor(private maxEntries = 10_000) {}

  /** `changes` undefined (no synced change tracking): always reads. */
  async read<T>(changes: ChangeTracker | undefined, key: string, maxAgeMs: number, read: () => Promise<T>): Promise<T> {
    if (!changes) return read();
    const hit = this.entries.get(key);
    if (hit && changes.isCurrent(hit.stamp, hit.tables)) {
      const age = Date.now() - hit.at;
      if (age < maxAgeMs) {
        this.hits++;
        return hit.value as T;
      }
      // Only old, not changed: one caller refreshes it in the background while the others keep the value (for at
      // most another maxAgeMs), so the many calls that find it aged at once do not all read.
      if (age < 2 * maxAgeMs) {
        if (!hit.refreshing) {
          hit.refreshing = true;
          this.fill(changes, key, read).catch(() => this.entries.delete(key));
        }
        this.hits++;
        return hit.value as T;
      }
    }
    this.misses++;
    return this.fill(changes, key, read);
  }

  private async fill<T>(changes: ChangeTracker, key: string, read: () => Promise<T>): Promise<T> {
    const stamp = changes.stamp();
    const { result, tables } = await changes.trackReads(read);
    // A read that named no known table could never be invalidated: not remembered.
    if (tables.size === 0) return result;
    // Bulk forget when full: keys are sessions and resource uuids, a bound matters more than recency here.
    if (this.entries.size >= this.maxEntries) this.entries.clear();
    this.entries.set(key, { value: result, stamp: changes.narrow(stamp, tables), tables, at: Date.now() });
    return result;
  }
}

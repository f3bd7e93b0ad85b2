// Group commit for round trips: one batch in flight at a time, and the items that arrive meanwhile go together in
// the next (at most `maxItems`). A lone caller waits for nothing; under load concurrent API calls share statements
// (and commits) instead of paying one each. Used for the advisory-lock operations and for writing API jobs.
import { AsyncResource } from 'node:async_hooks';

interface Queued<I, O> {
  item: I;
  resolve: (out: O) => void;
  reject: (e: unknown) => void;
}

export class Batcher<I, O> {
  private queue: Array<Queued<I, O>> = [];
  private running = false;
  /** Waiting for the queue to be empty with no batch in flight (`idle`). */
  private idleWaiters: Array<() => void> = [];
  /** Batches run so far (each served every item queued before it). */
  batches = 0;
  /** Batches run in the async context the batcher was made in, never in the first caller's (its reads, its deadline). */
  private scope = new AsyncResource('Batcher');

  /**
   * `run` returns one output per item, in the items' order. When it throws for a batch of several items, each item
   * is run again alone (a failed statement changed nothing), so only the item that makes it fail fails: one bad
   * request never fails the others that happened to share its statement.
   */
  constructor(
    private run: (items: I[]) => Promise<O[]>,
    private maxItems = 500,
  ) {}

  add(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.running) {
        this.running = true;
        this.scope.runInAsyncScope(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length) {
        const batch = this.queue.splice(0, this.maxItems);
        this.batches++;
        try {
          const out = await this.run(batch.map((q) => q.item));
          batch.forEach((q, i) => q.resolve(out[i]));
        } catch (e) {
          if (batch.length === 1) batch[0].reject(e);
          else await this.runSingly(batch);
        }
      }
    } finally {
      this.running = false;
      for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }

  /** Resolves once every item queued so far has been run (at once when nothing is queued or running). */
  idle(): Promise<void> {
    return this.running ? new Promise<void>((r) => this.idleWaiters.push(r)) : Promise.resolve();
  }

  private async runSingly(batch: Array<Queued<I, O>>): Promise<void> {
    for (const q of batch) {
      this.batches++;
      try {
        const [out] = await this.run([q.item]);
        q.resolve(out);
      } catch (e) {
        q.reject(e);
      }
    }
  }
}

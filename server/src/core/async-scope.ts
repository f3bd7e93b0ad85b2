// One AsyncLocalStorage for every value the server carries across awaits: the call's context (context.ts), the open
// transaction (db/tx-scope.ts), the tables a cached read depends on (db/perf/changes.ts) and the urgent flag
// (turns.ts). Node 20 runs every AsyncLocalStorage's hook on every new promise, and each one adds a property to it:
// four storages cost about twice the promise hooks of one (a microbenchmark; a created VM makes ~550 promises, and no
// difference showed through the provisioning bench's noise: bench/README.md, provision, "… session 12"). Each concept
// keeps its own slot and its own API; one mechanism carries them.
import { AsyncLocalStorage } from 'node:async_hooks';

type Frame = { readonly [slot: symbol]: unknown };

const storage = new AsyncLocalStorage<Frame>();

export interface ScopeSlot<T> {
  /** The slot's value in the current async context. */
  get(): T | undefined;
  /** Runs `fn` (and everything it starts) with this slot set to `value`, the other slots as they are. */
  run<R>(value: T, fn: () => R): R;
  /** Runs `fn` (and everything it starts) with this slot unset, the other slots as they are. */
  exit<R>(fn: () => R): R;
}

export function scopeSlot<T>(name: string): ScopeSlot<T> {
  const key = Symbol(name);
  const run = <R>(value: T | undefined, fn: () => R): R => storage.run({ ...storage.getStore(), [key]: value }, fn);
  return {
    get: () => storage.getStore()?.[key] as T | undefined,
    run,
    exit: (fn) => run(undefined, fn),
  };
}

// Small helpers to make work interruptible by the command's AbortSignal.
import { setTimeout as delay } from 'node:timers/promises';

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export async function sleep(ms: number, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted();
  try {
    await delay(ms, undefined, { signal });
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    throw err;
  }
}

/** Settles like `work`, unless the signal aborts first: then rejects with the signal's reason. */
export function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => {}); // the work keeps running until it notices the signal; its failure is not ours to report
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/**
 * A signal that also fires after `ms` (with `reason`), for commands that carry their own timeout next to the
 * caller's deadline. Call dispose() when the work is over so the timer does not linger.
 */
export function withTimeout(signal: AbortSignal, ms: number, reason: () => Error): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(reason()), ms);
  const combined = AbortSignal.any([signal, controller.signal]);
  return { signal: combined, dispose: () => clearTimeout(timer) };
}

// Fair turns on the one thread. A database reply that resolves many waiters at once (a batched statement, a shared
// read) resumes all of them in one microtask drain, and each runs on to its next real I/O: 100 jobs × a few ms is a
// stretch of hundreds of ms in which no timer fires and no request is read. And libuv (1.45+) accepts one connection
// per loop iteration: while iterations are long, 100 callers connecting at once are accepted one every few ms, so the
// last ones start (and their deadlines count) long after they were sent.
//
// So a database result (db/perf/driver.ts) and a flow step (context.ts `step`) resume their caller on a turn: waiters
// resumed one after the other for about a millisecond, then the poll phase (accepts, requests, replies, timers)
// before the next turn, which keeps iterations short. Two queues: what a caller is waiting on right now — a request's admission and reply, a job's
// outcome record — goes before the background (running jobs' steps, their rollbacks, garbage collection).
import { scopeSlot } from './async-scope.js';

const urgentScope = scopeSlot<true>('urgent');
const urgent: Array<() => void> = [];
const background: Array<() => void> = [];
let pumping = false;
/** A connection was accepted since the last turn: the next iteration may accept another one. */
let accepted = false;
let turnsSkipped = 0;
/** Turns given up in a row for accepts, at most: a flood of connections cannot stop the work. */
const MAX_SKIPPED = 16;

/**
 * Called on each accepted connection: while callers are connecting, loop iterations go to accepting them (one each)
 * before any more turns, so their requests are read and their deadlines start when they arrive.
 */
export function noteConnection(): void {
  accepted = true;
}

/** Runs `fn` (and everything it starts) with its turns ahead of the background. */
export const urgently = <T>(fn: () => T): T => urgentScope.run(true, fn);

/** True in a caller's work (a request's stages, a job's outcome record). */
export const isUrgent = (): boolean => urgentScope.get() === true;

/** Runs `fn` (and everything it starts) in the background queue, e.g. a job's work started by its request. */
export const inBackground = <T>(fn: () => T): T => urgentScope.exit(fn);

/** Resolves on a later turn of the event loop, in order within its queue. */
export function nextTurn(): Promise<void> {
  return new Promise<void>((resolve) => {
    (isUrgent() ? urgent : background).push(resolve);
    if (!pumping) {
      pumping = true;
      setImmediate(pump);
    }
  });
}

/** Waiters not yet resumed (benchmarks, tests). */
export const turnsWaiting = (): { urgent: number; background: number } => ({ urgent: urgent.length, background: background.length });

/** How long one turn may resume waiters, one after the other, before the loop goes round again. */
const TURN_BUDGET_MS = 1;

async function pump(): Promise<void> {
  if (accepted && turnsSkipped < MAX_SKIPPED) {
    accepted = false;
    turnsSkipped++;
    setImmediate(pump);
    return;
  }
  accepted = false;
  turnsSkipped = 0;
  // Several waiters per turn while they are short (a loop iteration has a fixed cost: polling, timers), each given
  // the microtask queue to itself before the next: the turn stays about a millisecond.
  const until = performance.now() + TURN_BUDGET_MS;
  do {
    (urgent.shift() ?? background.shift())!();
    await new Promise<void>(queueMicrotask);
  } while ((urgent.length || background.length) && performance.now() < until);
  // Scheduled from the check phase, the next turn comes after the next poll: I/O gets its turn in between.
  if (urgent.length || background.length) setImmediate(pump);
  else pumping = false;
}

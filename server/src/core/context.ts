// The call context: every API call runs inside one, holding its deadline and an AbortSignal that fires at the
// deadline. Internal steps and agent calls take their remaining time from here, so an API's timeout reaches
// everything the API entails (the v1.1 "API timeout management" feature, done by propagation).
import type { Inventory } from '@zstack-ts/openapi/helpers';
import { ApiError, errorCode } from './errors.js';
import { scopeSlot } from './async-scope.js';
import { nextTurn } from './turns.js';

export interface SessionInfo {
  uuid: string;
  accountUuid: string;
  accountType: string;
  /** Set for a user's session (LogInByUser): the user, whose policies are evaluated on every call. */
  userUuid?: string;
}

export interface CallContext {
  apiName: string;
  jobUuid?: string;
  startedAt: number;
  /** Epoch ms after which the call has failed. */
  deadline: number;
  timeoutMs: number;
  signal: AbortSignal;
  session?: SessionInfo;
  /** The caller's address (log-in throttling). */
  clientIp?: string;
  /** The base URL the caller reached this server at (`http://host:port`), for links in replies. */
  origin?: string;
  /** The call synced with the other nodes' commits on arrival: read-cache values are as fresh as a read (db/perf/read-cache.ts). */
  changesSynced?: boolean;
  /**
   * Shared by the whole call, so a timeout can name the step it interrupted: the steps currently running, and the
   * first step that ran out of time (an agent may give up a moment before the call's own timer fires; by then its
   * step has already ended), and the phase of the call (named when no step is).
   */
  trace: { steps: string[]; timedOutIn?: string; phase?: string; progress?: JobProgress; inFlow?: boolean };
}

/** How far a job got, as its poll reports it (the spec's `JobProgress`). */
export type JobProgress = Inventory<'JobProgress'>;

const storage = scopeSlot<CallContext>('call');

/** The budget of work done outside any API call (timers, boot): upstream's internal-message default. */
export const INTERNAL_TIMEOUT_MS = 30 * 60_000;

export const currentContext = (): CallContext | undefined => storage.get();

/** Records how far the current job got (read by its poll); nothing outside a job. */
export function reportProgress(p: JobProgress): void {
  const ctx = storage.get();
  if (ctx?.jobUuid) ctx.trace.progress = { ...ctx.trace.progress, ...p };
}

export function runInContext<T>(ctx: CallContext, fn: () => Promise<T>): Promise<T> {
  return storage.run(ctx, fn);
}

/** A fresh top-level context (for background work that belongs to no API call). */
export function backgroundContext(name: string, timeoutMs = INTERNAL_TIMEOUT_MS, opts: { timer?: boolean } = {}): CallContext {
  const now = Date.now();
  // `timer: false`: the caller enforces the deadline itself (and clears its own timer), so the context's signal
  // never fires on its own and holds nothing alive.
  const signal = opts.timer === false ? new AbortController().signal : AbortSignal.timeout(timeoutMs);
  return { apiName: name, startedAt: now, deadline: now + timeoutMs, timeoutMs, signal, trace: { steps: [] } };
}

/**
 * Runs `fn` in a fresh top-level context of `timeoutMs` (work that must go on after the caller's deadline, e.g. a
 * rollback) and clears its deadline timer when `fn` ends, so nothing it closes over outlives it.
 */
export async function runInBackgroundContext<T>(
  name: string,
  timeoutMs: number,
  fn: () => Promise<T>,
  init: Partial<Pick<CallContext, 'session' | 'jobUuid'>> = {},
): Promise<T> {
  const now = Date.now();
  const deadline = deadlineSignal(now + timeoutMs);
  const ctx: CallContext = { apiName: name, startedAt: now, deadline: now + timeoutMs, timeoutMs, signal: deadline.signal, trace: { steps: [] }, ...init };
  try {
    return await runInContext(ctx, fn);
  } finally {
    deadline.dispose();
  }
}

/** setTimeout's longest delay (2^31−1 ms ≈ 24.8 days); longer deadlines re-arm (a longer delay would fire at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A signal that aborts with a TimeoutError at `deadline`, and `dispose` to clear its timer when the work ends early.
 * Unlike AbortSignal.timeout, whose pending timer keeps the signal's listeners (and all they close over) alive
 * until it fires — for a CreateVmInstance, 12 hours.
 */
export function deadlineSignal(deadline: number): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  let timer: NodeJS.Timeout;
  const arm = () => {
    const left = deadline - Date.now();
    if (left <= 0) return controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
    timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
    timer.unref();
  };
  arm();
  return { signal: controller.signal, dispose: () => clearTimeout(timer) };
}

export function remainingMs(): number {
  const ctx = currentContext();
  return ctx ? Math.max(0, ctx.deadline - Date.now()) : INTERNAL_TIMEOUT_MS;
}

export function currentSignal(): AbortSignal | undefined {
  return currentContext()?.signal;
}

/** The SYS.1001 error of a call that ran out of time, naming the API, the step and the time spent. */
export function timeoutError(ctx: CallContext, step?: string): ApiError {
  const elapsed = Date.now() - ctx.startedAt;
  if (step) ctx.trace.timedOutIn ??= step;
  const where = step ?? ctx.trace.steps.at(-1) ?? ctx.trace.timedOutIn ?? ctx.trace.phase;
  const details = `API[${ctx.apiName}] timed out after ${elapsed} ms (timeout ${ctx.timeoutMs} ms)` + (where ? ` in step[${where}]` : '');
  return new ApiError(errorCode('SYS.1001', details), 503);
}

/** Throws the timeout error if the call's deadline has passed. */
export function checkDeadline(): void {
  const ctx = currentContext();
  if (ctx && (ctx.signal.aborted || Date.now() >= ctx.deadline)) throw timeoutError(ctx);
}

/**
 * Races work against a signal: rejects with `onAbort()` when the signal fires first. The abort listener is removed
 * as soon as the race is decided, so long-lived signals (a 12 h API) do not collect one listener per step.
 */
export function raceAbort<T>(signal: AbortSignal, work: Promise<T>, onAbort: () => unknown): Promise<T> {
  if (signal.aborted) return Promise.reject(onAbort());
  let listener!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    listener = () => reject(onAbort());
    signal.addEventListener('abort', listener, { once: true });
  });
  return Promise.race([work, aborted]).finally(() => signal.removeEventListener('abort', listener));
}

/**
 * Runs one named internal step. It gets the call's remaining time, or less when `timeoutMs` is given (a step
 * never outlives its API). When time runs out the step fails with SYS.1001 naming it.
 */
export async function step<T>(name: string, fn: (signal: AbortSignal) => Promise<T>, opts: { timeoutMs?: number } = {}): Promise<T> {
  // A step can wait for the loop's next turn; a new request's admission and the deadline timers cannot (turns.ts).
  await nextTurn();
  const parent = currentContext() ?? backgroundContext(name);
  const now = Date.now();
  const deadline = Math.min(parent.deadline, opts.timeoutMs !== undefined ? now + opts.timeoutMs : Infinity);
  // A shorter budget of its own: a disposable timer, cleared when the step ends.
  const own = deadline < parent.deadline ? deadlineSignal(deadline) : undefined;
  const signal = own ? AbortSignal.any([parent.signal, own.signal]) : parent.signal;
  const ctx: CallContext = { ...parent, deadline, signal };
  if (signal.aborted) {
    own?.dispose();
    throw timeoutError(ctx, name);
  }
  parent.trace.steps.push(name);
  try {
    return await runInContext(ctx, () => raceAbort(signal, fn(signal), () => timeoutError(ctx, name)));
  } finally {
    own?.dispose();
    const i = parent.trace.steps.lastIndexOf(name);
    if (i >= 0) parent.trace.steps.splice(i, 1);
  }
}

// deployAgent: runs the tasks in order over one SSH connection, logs each, retries the whole run after a transient
// SSH failure (every task is idempotent, so a retry skips what the first try finished), and honours a deadline.
import { setTimeout as sleep } from 'node:timers/promises';
import { agentBundle } from './bundle.js';
import { planOf, type DeployContext, type Plan } from './context.js';
import { DeployError, TaskError, messageOf } from './errors.js';
import { TaskLogger } from './task-log.js';
import { TASKS } from './tasks.js';
import type { DeployOptions, DeployResult, TaskLog } from './types.js';

const BACKOFF_BASE_MS = 200;

export async function deployAgent(options: DeployOptions): Promise<DeployResult> {
  const plan = planOf(options);
  const signal = deadlineSignal(options);
  const logger = new TaskLogger(options.logUrl);
  if (!options.bundle) agentBundle().catch(() => {}); // build while connecting; upload-bundle reports a failure
  // Outlives a failed attempt: a bundle uploaded before the connection dropped must still restart the agent.
  const pendingChanges: string[] = [];
  try {
    for (let attempt = 1; ; attempt++) {
      const backoffMs = BACKOFF_BASE_MS * 2 ** (attempt - 1) * (0.75 + Math.random() / 2);
      const retry = attempt <= plan.retries ? { backoffMs, next: attempt + 1, of: plan.retries + 1 } : undefined;
      try {
        const ctx = await runTasks(plan, signal, logger, options, retry, pendingChanges);
        await logger.flush(); // before counting post failures
        return {
          hostKey: ctx.hostKey!,
          tasks: logger.entries,
          changed: logger.entries.some((t) => t.status === 'done' && t.task !== 'connect'),
          agentUrl: plan.agentUrl,
          platform: ctx.platform!,
          logPostFailures: logger.postFailures,
        };
      } catch (err) {
        if (!(err instanceof RetryableFailure)) throw err;
        try {
          await sleep(backoffMs, undefined, { signal });
        } catch {
          throw new DeployError({ kind: options.kind, host: options.host, task: err.task, cause: err.cause, tasks: logger.entries, aborted: signal.reason });
        }
      }
    }
  } finally {
    await logger.flush();
  }
}

/** A transient failure the caller will retry after a backoff. */
class RetryableFailure extends Error {
  constructor(
    readonly task: DeployError['task'],
    override readonly cause: unknown,
  ) {
    super(messageOf(cause));
  }
}

async function runTasks(
  plan: Plan,
  signal: AbortSignal,
  logger: TaskLogger,
  options: DeployOptions,
  retry: { backoffMs: number; next: number; of: number } | undefined,
  changes: string[],
): Promise<DeployContext> {
  const ctx: DeployContext = { plan, signal, changes, agentAnswering: false };
  const log = (entry: Omit<TaskLog, 'host'>) => logger.record({ host: options.host, ...entry });
  try {
    for (const [index, task] of TASKS.entries()) {
      const started = performance.now();
      log({ task: task.name, status: 'start', level: 'INFO', details: task.title, durationMs: 0 });
      try {
        options.onTask?.({ name: task.name, title: task.title, index, total: TASKS.length });
      } catch {
        // a progress callback never breaks the deploy
      }
      try {
        signal.throwIfAborted();
        const outcome = await task.run(ctx);
        log({ task: task.name, status: outcome.status, level: 'INFO', details: outcome.details, durationMs: elapsed(started) });
      } catch (err) {
        const aborted = signal.aborted ? signal.reason : undefined;
        const error = new DeployError({ kind: options.kind, host: options.host, task: task.name, cause: err, tasks: logger.entries, aborted });
        const retrying = retry && aborted === undefined && err instanceof TaskError && err.transient;
        const details = retrying
          ? `${error.error.cause!.details}; retrying in ${Math.round(retry.backoffMs)} ms (attempt ${retry.next} of ${retry.of})`
          : error.error.cause!.details!;
        log({ task: task.name, status: 'fail', level: retrying ? 'WARN' : 'ERROR', details, durationMs: elapsed(started) });
        throw retrying ? new RetryableFailure(task.name, err) : error;
      }
    }
    return ctx;
  } finally {
    ctx.ssh?.close();
  }
}

/** The caller's signal and the deadline as one signal (never aborts when neither is given). */
function deadlineSignal(options: DeployOptions): AbortSignal {
  const signals = [options.signal, options.timeoutMs === undefined ? undefined : AbortSignal.timeout(options.timeoutMs)].filter(
    (s): s is AbortSignal => s !== undefined,
  );
  return signals.length === 0 ? new AbortController().signal : AbortSignal.any(signals);
}

function elapsed(started: number): number {
  return Math.round(performance.now() - started);
}

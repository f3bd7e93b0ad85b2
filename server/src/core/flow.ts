// A flow chain: ordered steps, each with an optional rollback. When a step fails (or the call times out), the
// steps already done are rolled back in reverse order, each rollback with its own short budget so that
// compensation still happens after the API's deadline has passed.
import { currentContext, reportProgress, runInBackgroundContext, step } from './context.js';

export interface FlowStep<D> {
  name: string;
  run(data: D, signal: AbortSignal): Promise<void>;
  rollback?(data: D): Promise<void>;
  /** A shorter budget for this step than the call's remaining time. */
  timeoutMs?: number;
  /** Skip the step when this returns false. */
  when?(data: D): boolean;
}

export const ROLLBACK_BUDGET_MS = 30_000;

export async function runFlow<D>(name: string, steps: FlowStep<D>[], data: D): Promise<D> {
  const done: FlowStep<D>[] = [];
  // The job's outermost flow reports its steps as they start (the job's poll shows them); nested flows do not.
  const trace = currentContext()?.trace;
  const reports = trace !== undefined && !trace.inFlow;
  if (reports) trace.inFlow = true;
  try {
    for (const [i, s] of steps.entries()) {
      if (s.when && !s.when(data)) continue;
      if (reports) reportProgress({ step: `${name}/${s.name}`, stepsDone: i, stepsTotal: steps.length });
      let work: Promise<void> | undefined;
      try {
        await step(`${name}/${s.name}`, (signal) => (work = s.run(data, signal)), { timeoutMs: s.timeoutMs });
      } catch (e) {
        // Interrupted by the deadline, the step's own work may still finish (a transaction commits after the
        // timeout fired): wait for it, within the rollback budget, and roll it back too if it did.
        if (work && (await finishesWithin(work, ROLLBACK_BUDGET_MS))) done.push(s);
        throw e;
      }
      done.push(s);
    }
    if (reports) reportProgress({ step: undefined, stepsDone: steps.length, stepsTotal: steps.length });
    return data;
  } catch (e) {
    await rollback(name, done, data);
    throw e;
  } finally {
    if (reports) trace.inFlow = false;
  }
}

/** True when `work` fulfils within `ms` (false when it rejects or is still running). */
async function finishesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    work.then(
      () => true,
      () => false,
    ),
    new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms))),
  ]);
  clearTimeout(timer);
  return outcome;
}

async function rollback<D>(name: string, done: FlowStep<D>[], data: D): Promise<void> {
  const parent = currentContext();
  for (const s of done.reverse()) {
    if (!s.rollback) continue;
    try {
      await runInBackgroundContext(
        `${parent?.apiName ?? name}/rollback`,
        ROLLBACK_BUDGET_MS,
        () => step(`${name}/${s.name}/rollback`, () => s.rollback!(data)),
        {
          session: parent?.session,
          jobUuid: parent?.jobUuid,
        },
      );
    } catch (e) {
      // A failed compensation must not hide the original error; it is logged for the operator.
      console.error(`[flow ${name}] rollback of step ${s.name} failed:`, e instanceof Error ? e.message : e);
    }
  }
}

// The timeout machinery on its own (core/context.ts, core/flow.ts), without a server: step budgets, the rollback's
// own context, and how a SYS.1001 names the step it interrupted.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { backgroundContext, currentContext, deadlineSignal, remainingMs, runInContext, step, timeoutError } from '../../server/src/core/context.js';
import { ROLLBACK_BUDGET_MS, runFlow } from '../../server/src/core/flow.js';

/** A pattern matching an ApiError with this ErrorCode. */
const apiError = (error: Record<string, unknown>) => ({ error }) as unknown as Error;

t.test('a step with its own budget: its timer is cleared when it ends, the call signal is untouched', async (t) => {
  const ctx = backgroundContext('TestApi', 10_000);
  let seen: AbortSignal | undefined;
  await runInContext(ctx, () => step('quick', async (signal) => void (seen = signal), { timeoutMs: 50 }));
  await sleep(120);
  t.equal(seen!.aborted, false, 'the step ended before its budget: its own timer never fires');
  t.equal(ctx.signal.aborted, false);
  const started = Date.now();
  await t.rejects(
    runInContext(ctx, () => step('slow', (signal) => sleep(5000, undefined, { signal }), { timeoutMs: 80 })),
    apiError({ code: 'SYS.1001', details: /API\[TestApi\] timed out after \d+ ms \(timeout 10000 ms\) in step\[slow\]/ }),
  );
  t.ok(Date.now() - started < 1000, 'failed at the step budget');
  t.equal(ctx.signal.aborted, false, 'the call itself goes on');
});

t.test('deadlineSignal: aborts with a TimeoutError at the deadline, never after dispose', async (t) => {
  const a = deadlineSignal(Date.now() + 30);
  const b = deadlineSignal(Date.now() + 30);
  b.dispose();
  await sleep(80);
  t.equal(a.signal.aborted, true);
  t.equal((a.signal.reason as DOMException).name, 'TimeoutError');
  t.equal(b.signal.aborted, false);
  t.equal(deadlineSignal(Date.now() - 1).signal.aborted, true, 'a deadline in the past aborts at once');
});

t.test('rollbacks after the deadline run in a fresh context carrying the call session and job', async (t) => {
  const ctx = backgroundContext('TestApi', 100);
  ctx.session = { uuid: 's1', accountUuid: 'a1', accountType: 'SystemAdmin' };
  ctx.jobUuid = 'j1';
  const seen: Array<{ apiName?: string; session?: string; jobUuid?: string; remaining: number; aborted?: boolean }> = [];
  await t.rejects(
    runInContext(ctx, () =>
      runFlow(
        'f',
        [
          {
            name: 'reserve',
            run: async () => undefined,
            rollback: async () => {
              const c = currentContext();
              seen.push({ apiName: c?.apiName, session: c?.session?.uuid, jobUuid: c?.jobUuid, remaining: remainingMs(), aborted: c?.signal.aborted });
            },
          },
          { name: 'hang', run: (_d, signal) => sleep(5000, undefined, { signal }) },
        ],
        {},
      ),
    ),
    apiError({ code: 'SYS.1001', details: /in step\[f\/hang\]/ }),
  );
  t.equal(seen.length, 1);
  t.match(seen[0], { apiName: 'TestApi/rollback', session: 's1', jobUuid: 'j1', aborted: false });
  t.ok(seen[0].remaining > ROLLBACK_BUDGET_MS - 1000, `the rollback has its own budget (${seen[0].remaining} ms left)`);
});

t.test('a SYS.1001 names the running step, else the first step that ran out of time', async (t) => {
  const ctx = backgroundContext('TestApi', 10_000);
  t.notMatch(timeoutError(ctx).error.details, /step\[/, 'nothing ran: no step named');
  await runInContext(ctx, () =>
    step('outer', async () => {
      t.match(timeoutError(ctx).error.details, /in step\[outer\]$/, 'the running step');
      // An agent call (no step of its own) that timed out: it names itself ...
      timeoutError(currentContext()!, 'agent /vm/start');
    }),
  );
  // ... and once its step has ended, a timeout of the whole call still names it.
  t.match(timeoutError(ctx).error.details, /in step\[agent \/vm\/start\]$/);
  timeoutError(ctx, 'agent /later');
  t.match(timeoutError(ctx).error.details, /in step\[agent \/vm\/start\]$/, 'the first one wins');
  const job = { ...backgroundContext('TestApi', 10_000), trace: { steps: [], phase: 'TestApi/run' } };
  t.match(timeoutError(job).error.details, /in step\[TestApi\/run\]$/, 'outside any step: the phase');
});

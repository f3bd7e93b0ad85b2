// The shared mechanisms on their own: flows roll back in reverse (also after a timeout, with their own budget),
// locks serialize per resource inside one process and across processes (PostgreSQL advisory locks).
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { runFlow } from '../../server/src/core/flow.js';
import { runInContext, backgroundContext, step } from '../../server/src/core/context.js';
import { LockManager } from '../../server/src/core/locks.js';
import { openDatabase } from '../../server/src/db/index.js';
import { createDatabase } from '../lib/harness.js';

/** A pattern matching an ApiError with this ErrorCode. */
const apiError = (error: Record<string, unknown>) => ({ error }) as unknown as Error;

t.test('flow: a failing step rolls back the done steps in reverse order', async (t) => {
  const log: string[] = [];
  const steps = ['a', 'b', 'c'].map((name) => ({
    name,
    run: async () => {
      if (name === 'c') throw new Error('c failed');
      log.push(`run ${name}`);
    },
    rollback: async () => void log.push(`undo ${name}`),
  }));
  await t.rejects(runFlow('test', steps, {}), /c failed/);
  t.same(log, ['run a', 'run b', 'undo b', 'undo a']);
});

t.test('flow: after the deadline, rollbacks still run with their own budget', async (t) => {
  const log: string[] = [];
  const ctx = backgroundContext('TestApi', 300);
  const flow = runInContext(ctx, () =>
    runFlow(
      'slow',
      [
        {
          name: 'reserve',
          run: async () => void log.push('reserved'),
          rollback: async () => {
            await sleep(50);
            log.push('released');
          },
        },
        { name: 'hang', run: (_d, signal) => sleep(5000, undefined, { signal }) },
      ],
      {},
    ),
  );
  await t.rejects(flow, apiError({ code: 'SYS.1001' }));
  t.same(log, ['reserved', 'released'], 'the reservation was returned although the API had timed out');
});

t.test('flow: a step interrupted by the deadline that still completes is rolled back too', async (t) => {
  const log: string[] = [];
  const ctx = backgroundContext('TestApi', 100);
  const flow = runInContext(ctx, () =>
    runFlow(
      'late',
      [
        {
          name: 'slow-commit',
          // Ignores its signal, like a database transaction that commits after the timeout fired.
          run: async () => {
            await sleep(300);
            log.push('committed');
          },
          rollback: async () => void log.push('undone'),
        },
      ],
      {},
    ),
  );
  await t.rejects(flow, apiError({ code: 'SYS.1001' }));
  t.same(log, ['committed', 'undone'], 'what the interrupted step did was rolled back');
});

t.test('step: a shorter step budget never outlives the call, and names the step', async (t) => {
  const ctx = backgroundContext('TestApi', 10_000);
  const started = Date.now();
  await t.rejects(
    runInContext(ctx, () => step('quick-check', (signal) => sleep(5000, undefined, { signal }), { timeoutMs: 100 })),
    apiError({ code: 'SYS.1001', details: /step\[quick-check\]/ }),
  );
  t.ok(Date.now() - started < 2000);
});

t.test('locks', async (t) => {
  const db = await createDatabase();
  t.teardown(() => db.drop());
  const a = await openDatabase({ url: db.url, dataDir: '/tmp' });
  const b = await openDatabase({ url: db.url, dataDir: '/tmp' });
  t.teardown(async () => {
    await locksA.close();
    await locksB.close();
    await a.close();
    await b.close();
  });
  const locksA = new LockManager(a);
  const locksB = new LockManager(b);

  const trace: string[] = [];
  const critical = (locks: LockManager, who: string, key = 'vm:1') =>
    locks.withLock(key, async () => {
      trace.push(`${who} in`);
      await sleep(40);
      trace.push(`${who} out`);
    });
  await Promise.all([critical(locksA, 'a1'), critical(locksB, 'b1'), critical(locksA, 'a2'), critical(locksB, 'b2')]);
  for (let i = 0; i < trace.length; i += 2) {
    t.equal(trace[i].split(' ')[0], trace[i + 1].split(' ')[0], 'no interleaving inside one key');
    t.match(trace[i], / in$/);
  }
  // Different keys: the second holder gets in while the first is still inside (overlap, not a timing guess).
  let releaseX!: () => void;
  const xInside = new Promise<void>((r) => (releaseX = r));
  const x = locksA.withLock('vm:x', () => xInside);
  const yRan = await locksB.withLock('vm:y', async () => 'y ran while x held its lock');
  releaseX();
  await x;
  t.equal(yRan, 'y ran while x held its lock', 'different keys run in parallel');

  // Many locks held at once never starve the pool their holders' queries need (one lock connection per process).
  const many = await Promise.all(
    Array.from({ length: 40 }, (_, i) => locksA.withLock(`vm:many-${i}`, async () => (await a.pool!.query('SELECT pg_sleep(0.05) AS x')).rowCount)),
  );
  t.equal(many.length, 40, '40 concurrent lock holders each ran a query');

  // The holder is inside before the waiter starts (waiting a fixed 20 ms for that could be too short on a loaded
  // machine: the waiter would then get the free lock first).
  let entered!: () => void;
  const inside = new Promise<void>((r) => (entered = r));
  const holder = locksA.withLock('host:h', async () => {
    entered();
    await sleep(400);
  });
  await inside;
  const ctx = backgroundContext('Waiter', 100);
  await t.rejects(
    runInContext(ctx, () => locksB.withLock('host:h', async () => 'never')),
    apiError({ code: 'SYS.1001' }),
    'waiting respects the deadline',
  );
  await holder;
  t.equal(await locksB.withLock('host:h', async () => 'free'), 'free', 'the lock is usable afterwards');

  // Concurrent lock operations share statements on the lock connection, and still exclude the other process key
  // by key: while A holds 50 keys, none of B's 50 concurrent attempts gets in; once A let go, all of them do.
  let releaseAll!: () => void;
  const allHeld = new Promise<void>((r) => (releaseAll = r));
  let insideA = 0;
  let allInside!: () => void;
  const allIn = new Promise<void>((r) => (allInside = r));
  const before = locksA.statements;
  const holders = Array.from({ length: 50 }, (_, i) =>
    locksA.withLock(`vm:batch-${i}`, async () => {
      if (++insideA === 50) allInside();
      await allHeld;
    }),
  );
  await allIn;
  t.ok(locksA.statements - before < 10, `50 concurrent acquisitions took ${locksA.statements - before} statements`);
  const denied = await Promise.allSettled(
    Array.from({ length: 50 }, (_, i) => runInContext(backgroundContext('Batch', 150), () => locksB.withLock(`vm:batch-${i}`, async () => 'in'))),
  );
  t.equal(denied.filter((r) => r.status === 'rejected').length, 50, 'none of B’s attempts got a key A holds');
  releaseAll();
  await Promise.all(holders);
  const got = await Promise.all(Array.from({ length: 50 }, (_, i) => locksB.withLock(`vm:batch-${i}`, async () => i)));
  t.equal(got.length, 50, 'all 50 keys free for B once A released them');

  // A stopped lock manager opens no new connection (nothing would release it, and the pool's end would wait for it
  // forever): work still running when the server stops gets an error instead.
  await locksA.close();
  const clients = a.pool!.totalCount - a.pool!.idleCount;
  await t.rejects(
    locksA.withLock('vm:after-close', async () => 'ran'),
    apiError({ code: 'SYS.1006' }),
    'no lock after close',
  );
  t.equal(a.pool!.totalCount - a.pool!.idleCount, clients, 'no connection checked out');
});

// The GC mechanism with a test runner: persisted jobs, timer and event triggers, TriggerGCJob / DeleteGCJob /
// QueryGCJob, at-most-once across two server processes, adoption of a dead node's jobs after a restart.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServer } from '../lib/harness.js';
import { ZStackClient } from '../../sdk/src/index.js';
import type { GcBatchItem, GcOutcome, GcResult } from '../../server/src/core/gc.js';
import { App } from '../../server/src/app.js';
import { and, eq } from 'drizzle-orm';
import { gcJobs } from '../../server/src/db/schema/index.js';

/** A runner whose outcome the test controls; counts runs per job name (across every app it is registered on). */
function testRunner(runs: Map<string, number>, outcome: () => GcOutcome, delayMs = 0) {
  return {
    name: 'TestRunner',
    async run(ctx: { key: string }) {
      runs.set(ctx.key, (runs.get(ctx.key) ?? 0) + 1);
      if (delayMs) await sleep(delayMs);
      return outcome();
    },
  };
}

/** A runner with runBatch: records the size of every batch and the runs per job key. */
function batchRunner(runs: Map<string, number>, batches: number[], outcome: (key: string) => GcResult, delayMs = 0) {
  return {
    name: 'BatchRunner',
    async run(): Promise<GcOutcome> {
      throw new Error('run() must not be used when runBatch exists');
    },
    async runBatch(items: Array<GcBatchItem<{ key: string }>>): Promise<GcResult[]> {
      batches.push(items.length);
      for (const i of items) runs.set(i.context.key, (runs.get(i.context.key) ?? 0) + 1);
      if (delayMs) await sleep(delayMs);
      return items.map((i) => outcome(i.context.key));
    },
  };
}

// Generous bounds: they only matter when something is wrong (a loaded CI machine can be slow, never wrong).
const waitFor = async (what: () => Promise<boolean>, ms = 30_000) => {
  const until = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await sleep(50);
  }
};

t.test('gc jobs', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const runs = new Map<string, number>();
  let outcome: GcOutcome = 'retry';
  s.app.gc.register(testRunner(runs, () => outcome));
  await s.client.updateGlobalConfig({ category: 'gc', name: 'scanInterval', value: '1' });

  t.test('an event-based job waits for its resource event, retries, then ends Done', async (t) => {
    const job = await s.app.gc.submit({ name: 'gc-e', runner: 'TestRunner', context: { key: 'e' }, resourceUuid: 'host-1', intervalMs: 3_600_000 });
    const q = await s.client.queryGCJob({ q: [`uuid=${job.uuid}`] });
    t.equal(q.inventories![0].status, 'Idle');
    t.equal(q.inventories![0].type, 'EventBased');
    t.equal(q.inventories![0].runnerClass, 'TestRunner');
    t.same(JSON.parse(q.inventories![0].context), { key: 'e' });
    s.app.events.emit('host.status', { hostUuid: 'host-1', oldStatus: 'Disconnected', newStatus: 'Connected' });
    await waitFor(async () => runs.get('e') === 1);
    await waitFor(async () => (await s.client.queryGCJob({ q: [`uuid=${job.uuid}`] })).inventories![0].status === 'Idle');
    t.equal((await s.client.queryGCJob({ q: [`uuid=${job.uuid}`] })).inventories![0].attempts, 1, 'a retry goes back to Idle');
    outcome = 'done';
    s.app.events.emit('host.status', { hostUuid: 'host-1', oldStatus: 'Disconnected', newStatus: 'Connected' });
    await waitFor(async () => (await s.client.queryGCJob({ q: [`uuid=${job.uuid}`] })).inventories![0].status === 'Done');
    const done = (await s.client.queryGCJob({ q: [`uuid=${job.uuid}`] })).inventories![0];
    t.equal(done.result, 'Succeeded');
    const e = await s.client.triggerGCJob({ uuid: job.uuid }).catch((x) => x);
    t.equal(e.code, 'SYS.1007', 'a Done job cannot be triggered');
    t.match(e.details, /cannot trigger a finished GC job/);
    outcome = 'retry';
  });

  t.test('a time-based job runs when due; TriggerGCJob runs it now; DeleteGCJob removes it', async (t) => {
    const job = await s.app.gc.submit({ name: 'gc-t', runner: 'TestRunner', context: { key: 't' }, intervalMs: 500 });
    // The first scan comes gc/scanInterval after the server started (the 5 s default: the 1 s set above applies
    // from the next scan on), so allow well beyond that.
    await waitFor(async () => (runs.get('t') ?? 0) >= 1);
    // The timer goes on running the job (due every 500 ms, scanned every second), and TriggerGCJob leaves a job
    // that is Processing at that moment to finish. So that what runs next is the trigger's run and nothing else,
    // the job is put out of the timer's reach once it is Idle (a run in progress sets nextRunAt when it ends).
    await waitFor(
      async () =>
        (
          await s.app.db
            .update(gcJobs)
            .set({ nextRunAt: new Date(Date.now() + 3_600_000) })
            .where(and(eq(gcJobs.uuid, job.uuid), eq(gcJobs.status, 'Idle')))
            .returning()
        ).length === 1,
    );
    const before = runs.get('t')!;
    await s.client.triggerGCJob({ uuid: job.uuid });
    t.equal(runs.get('t'), before + 1, 'triggered: run once more, before TriggerGCJob replied');
    await s.client.deleteGCJob({ uuid: job.uuid });
    t.same((await s.client.queryGCJob({ q: [`uuid=${job.uuid}`] })).inventories, []);
    const missing = await s.client.triggerGCJob({ uuid: job.uuid }).catch((x) => x);
    t.equal(missing.code, 'SYS.1003');
  });

  t.test('cancel ends the job Done/Cancelled', async (t) => {
    outcome = 'cancel';
    const job = await s.app.gc.submit({ name: 'gc-c', runner: 'TestRunner', context: { key: 'c' }, resourceUuid: 'host-2' });
    s.app.events.emit('host.deleted', { hostUuid: 'host-2' });
    await waitFor(async () => (await s.client.queryGCJob({ q: [`uuid=${job.uuid}`] })).inventories![0].status === 'Done');
    t.equal((await s.client.queryGCJob({ q: [`uuid=${job.uuid}`] })).inventories![0].result, 'Cancelled');
    outcome = 'retry';
  });
});

t.test('two server processes on one database run each job exactly once', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const peer = await s.startPeer();
  const runs = new Map<string, number>();
  for (const app of [s.app, peer]) app.gc.register(testRunner(runs, () => 'done', 20));
  const jobs: Array<{ uuid: string }> = [];
  for (let i = 0; i < 40; i++)
    jobs.push(await s.app.gc.submit({ name: `gc-${i}`, runner: 'TestRunner', context: { key: `k${i}` }, resourceUuid: 'shared-host', runSoon: true }));
  // Both nodes see the event and race for every job, and both scanners race too.
  s.app.events.emit('host.status', { hostUuid: 'shared-host', oldStatus: 'Disconnected', newStatus: 'Connected' });
  peer.events.emit('host.status', { hostUuid: 'shared-host', oldStatus: 'Disconnected', newStatus: 'Connected' });
  await Promise.all([s.app.gc.runDueJobs([s.app.nodeUuid, peer.nodeUuid]), peer.gc.runDueJobs([s.app.nodeUuid, peer.nodeUuid])]);
  await waitFor(async () => ((await s.app.gc.countByStatus(jobs.map((j) => j.uuid))).Done ?? 0) === 40);
  t.equal(runs.size, 40);
  t.ok(
    [...runs.values()].every((n) => n === 1),
    'every job ran exactly once',
  );
});

t.test('pending jobs survive a crash and are adopted after restart', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const runs = new Map<string, number>();
  s.app.gc.register(testRunner(runs, () => 'retry'));
  const job = await s.app.gc.submit({ name: 'gc-survivor', runner: 'TestRunner', context: { key: 's' }, resourceUuid: 'h9', intervalMs: 3_600_000 });
  const port = Number(new URL(s.url).port);
  await s.app.crash();
  const next = await App.create({ ...s.app.options, port });
  t.teardown(() => next.close());
  next.gc.register(testRunner(runs, () => 'done'));
  await next.listen();
  next.events.emit('host.status', { hostUuid: 'h9', oldStatus: 'Disconnected', newStatus: 'Connected' });
  await waitFor(async () => ((await next.gc.countByStatus([job.uuid])).Done ?? 0) === 1);
  t.equal(runs.get('s'), 1, 'the restarted server ran the pending job');
  const zs = new ZStackClient({ endpoint: next.url, accountName: 'admin', password: 'password' });
  const [after] = (await zs.queryGCJob({ q: [`uuid=${job.uuid}`] })).inventories!;
  t.equal(after.managementNodeUuid, next.nodeUuid, 'adopted by the new node');
});

t.test('batches: two server processes split the jobs of a resource, each job run exactly once', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const peer = await s.startPeer();
  await s.client.updateGlobalConfig({ category: 'gc', name: 'batchSize', value: '50' });
  await waitFor(async () => peer.globalConfig.getNumber('gc', 'batchSize') === 50);
  const runs = new Map<string, number>();
  const batches: number[] = [];
  for (const app of [s.app, peer]) app.gc.register(batchRunner(runs, batches, () => 'done', 30));
  const jobs: Array<{ uuid: string }> = [];
  for (let i = 0; i < 300; i++)
    jobs.push(await s.app.gc.submit({ name: `gcb-${i}`, runner: 'BatchRunner', context: { key: `b${i}` }, resourceUuid: 'batch-host', runSoon: true }));
  const live = [s.app.nodeUuid, peer.nodeUuid];
  // Events on both nodes (twice each: the second joins or follows the pass), and both timers, all at once.
  await Promise.all([
    s.app.gc.runForResource('batch-host'),
    s.app.gc.runForResource('batch-host'),
    peer.gc.runForResource('batch-host'),
    peer.gc.runForResource('batch-host'),
    s.app.gc.runDueJobs(live),
    peer.gc.runDueJobs(live),
  ]);
  await waitFor(async () => ((await s.app.gc.countByStatus(jobs.map((j) => j.uuid))).Done ?? 0) === 300);
  t.equal(runs.size, 300);
  t.ok(
    [...runs.values()].every((n) => n === 1),
    'every job ran exactly once',
  );
  t.ok(
    batches.every((n) => n <= 50),
    `no batch above gc/batchSize (${batches.join(',')})`,
  );
  t.ok(batches.length < 300 / 5, 'jobs ran in batches, not one by one');
  const zs = s.client;
  const done = (await zs.queryGCJob({ q: ['runnerClass=BatchRunner', 'status=Done'], count: true })).total;
  t.equal(done, 300);
  const attempts = (await zs.queryGCJob({ q: ['runnerClass=BatchRunner', 'attempts>1'], count: true })).total;
  t.equal(attempts, 0, 'one attempt each');
});

t.test('batches: mixed outcomes recorded per job; a pass runs each job once even when it is put back', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  await s.client.updateGlobalConfig({ category: 'gc', name: 'batchSize', value: '7' });
  const runs = new Map<string, number>();
  const batches: number[] = [];
  const outcomeOf = (key: string): GcResult => {
    const n = Number(key.slice(1)) % 4;
    return n === 0 ? 'done' : n === 1 ? 'cancel' : n === 2 ? 'retry' : { error: new Error(`boom ${key}`) };
  };
  s.app.gc.register(batchRunner(runs, batches, outcomeOf));
  const jobs = [];
  for (let i = 0; i < 20; i++)
    jobs.push(await s.app.gc.submit({ name: `gcm-${i}`, runner: 'BatchRunner', context: { key: `m${i}` }, resourceUuid: 'mixed-host', intervalMs: 3_600_000 }));
  await s.app.gc.runForResource('mixed-host');
  t.equal(runs.size, 20);
  t.ok(
    [...runs.values()].every((n) => n === 1),
    'jobs put back to Idle were not claimed again by the same pass',
  );
  t.same(batches, [7, 7, 6]);
  const inv = (await s.client.queryGCJob({ q: ['runnerClass=BatchRunner'], limit: 100 })).inventories!;
  for (const j of inv) {
    const n = Number(JSON.parse(j.context).key.slice(1)) % 4;
    t.equal(j.attempts, 1);
    if (n === 0) t.match(j, { status: 'Done', result: 'Succeeded' });
    if (n === 1) t.match(j, { status: 'Done', result: 'Cancelled' });
    if (n === 2) {
      t.equal(j.status, 'Idle');
      t.equal(j.lastError, undefined, 'a plain retry records no error');
    }
    if (n === 3) {
      t.match(j, { status: 'Idle', lastError: { code: 'SYS.1000' } });
      // An unexpected error's message stays in the server log, under the correlation id the record names.
      t.match(j.lastError, { opaque: { correlationId: /^[0-9a-f]{32}$/ } });
      t.notMatch(JSON.stringify(j.lastError), /boom m/);
      t.ok(new Date(j.nextRunTime!).getTime() > Date.now() + 3_000_000, 'the retry waits one interval');
    }
  }
  // The next event runs the retried jobs again (a new pass).
  await s.app.gc.runForResource('mixed-host');
  t.equal(runs.get('m2'), 2);
  t.equal(runs.get('m0'), 1, 'Done jobs are not run again');
});

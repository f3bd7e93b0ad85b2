// Jobs: 202 + poll, X-Job-UUID idempotency, deadlines (SYS.1001 naming API and step), restart recovery.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServer, http, pollJob } from '../lib/harness.js';
import { currentContext, step, timeoutError } from '../../server/src/core/context.js';
import { runFlow } from '../../server/src/core/flow.js';
import { REPORT_GRACE_MS } from '../../server/src/core/jobs.js';
import { App } from '../../server/src/app.js';

t.test('jobs', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const session = await s.client.login();
  const auth = { Authorization: `OAuth ${session}` };

  t.test('an async API answers 202 with location and apiTimeout, the poll answers 200', async (t) => {
    const res = await http(s.url, 'POST', '/zstack/v1/zones', { body: { params: { name: 'z-job' } }, headers: auth });
    t.equal(res.status, 202);
    t.match(res.json.location, /\/zstack\/v1\/api-jobs\/[0-9a-f]{32}$/);
    t.equal(res.json.apiTimeout, 30 * 60_000, 'default timeout of CreateZone is 30m');
    const done = await pollJob(res.json.location);
    t.equal(done.status, 200);
    t.equal(done.json.inventory.name, 'z-job');
    t.same(Object.keys(done.json), ['inventory', 'success'], 'reply keys in upstream order');
    const uuid = res.json.location.split('/').pop();
    const { rows } = await s.app.database.pool!.query('SELECT result IS NULL AS no_result, error IS NULL AS no_error FROM api_jobs WHERE uuid = $1', [uuid]);
    t.same(rows[0], { no_result: false, no_error: true }, "a done job's error is SQL NULL, not JSON null");
    const unknown = await http(s.url, 'GET', '/zstack/v1/api-jobs/0123456789abcdef0123456789abcdef');
    t.equal(unknown.status, 404);
    t.equal(unknown.json.error.code, 'SYS.1003');
  });

  t.test('X-Job-UUID: a retried request returns the same job and runs once', async (t) => {
    const jobUuid = 'abcdefabcdefabcdefabcdefabcdef01';
    const send = () => http(s.url, 'POST', '/zstack/v1/zones', { body: { params: { name: 'z-idem' } }, headers: { ...auth, 'X-Job-UUID': jobUuid } });
    const [a, b] = await Promise.all([send(), send()]);
    const c = await send();
    t.equal(a.status, 202);
    t.equal(b.json.location, a.json.location);
    t.equal(c.json.location, a.json.location);
    await pollJob(a.json.location);
    const zones = await s.client.queryZone({ q: ['name=z-idem'] });
    t.equal(zones.inventories!.length, 1, 'the zone was created once');
    const other = await http(s.url, 'PUT', `/zstack/v1/zones/${zones.inventories![0].uuid}/actions`, {
      body: { updateZone: { name: 'x' } },
      headers: { ...auth, 'X-Job-UUID': jobUuid },
    });
    t.equal(other.status, 400, 'the same job uuid for another API is refused');
    const withResource = 'abcdefabcdefabcdefabcdefabcdef02';
    const resourceUuid = '0123456789abcdef0123456789abcd02';
    const create = () =>
      http(s.url, 'POST', '/zstack/v1/zones', { body: { params: { name: 'z-res', resourceUuid } }, headers: { ...auth, 'X-Job-UUID': withResource } });
    const first = await create();
    await pollJob(first.json.location);
    const retry = await create();
    t.equal(retry.status, 202, 'a retried create with resourceUuid finds its job (not "resourceUuid already used")');
    t.equal(retry.json.location, first.json.location);
    const bad = await http(s.url, 'POST', '/zstack/v1/zones', { body: { params: { name: 'z' } }, headers: { ...auth, 'X-Job-UUID': 'not-a-uuid' } });
    t.equal(bad.status, 400);
    t.match(bad.json.error.details, /X-Job-UUID/);
  });

  t.test('deadline expiry inside a job: SYS.1001 naming the API and the step', async (t) => {
    const zone = (await s.client.createZone({ name: 'z-slow' })).inventory;
    const original = s.app.handlers.get('UpdateZone')!;
    let aborted = false;
    s.app.handlers.set('UpdateZone', {
      run: (): Promise<any> =>
        step('talk-to-slow-agent', async (signal) => {
          signal.addEventListener('abort', () => (aborted = true));
          await sleep(10_000, undefined, { signal }).catch(() => undefined);
          return { inventory: zone };
        }),
    });
    t.teardown(() => void s.app.handlers.set('UpdateZone', original));
    const started = Date.now();
    const res = await http(s.url, 'PUT', `/zstack/v1/zones/${zone.uuid}/actions`, {
      body: { updateZone: { name: 'y' } },
      headers: { ...auth, 'X-API-Timeout': '1' },
    });
    t.equal(res.json.apiTimeout, 1000, 'the 202 reports the effective timeout');
    const done = await pollJob(res.json.location);
    const elapsed = Date.now() - started;
    t.equal(done.status, 503);
    t.equal(done.json.error.code, 'SYS.1001');
    t.match(done.json.error.details, /API\[UpdateZone\] timed out after \d+ ms \(timeout 1000 ms\) in step\[talk-to-slow-agent\]/);
    t.ok(elapsed < 5000, `failed near the deadline (${elapsed} ms), not after the 10 s of work`);
    t.ok(aborted, 'the step saw its signal abort');
  });

  t.test('the failure is reported at the deadline while a slow rollback goes on; the rollback still completes', async (t) => {
    const zone = (await s.client.createZone({ name: 'z-slow-rollback' })).inventory;
    const original = s.app.handlers.get('UpdateZone')!;
    t.teardown(() => void s.app.handlers.set('UpdateZone', original));
    const reserved = new Set<string>();
    let rolledBackAt = 0;
    let lateSuccess = false;
    s.app.handlers.set('UpdateZone', {
      run: async (): Promise<any> => {
        await runFlow(
          'slow-rollback',
          [
            {
              name: 'reserve',
              run: async () => void reserved.add('thing'),
              rollback: async () => {
                await sleep(1500);
                reserved.delete('thing');
                rolledBackAt = Date.now();
              },
            },
            {
              name: 'slow-agent',
              run: async (_d, signal) => {
                await sleep(10_000, undefined, { signal });
                lateSuccess = true;
              },
            },
          ],
          {},
        );
        return { inventory: zone };
      },
    });
    const started = Date.now();
    const res = await http(s.url, 'PUT', `/zstack/v1/zones/${zone.uuid}/actions`, {
      body: { updateZone: { name: 'y' } },
      headers: { ...auth, 'X-API-Timeout': '1' },
    });
    const done = await pollJob(res.json.location);
    const reportedAt = Date.now();
    t.equal(done.status, 503);
    t.equal(done.json.error.code, 'SYS.1001');
    t.match(done.json.error.details, /API\[UpdateZone\] timed out after \d+ ms \(timeout 1000 ms\) in step\[slow-rollback\/slow-agent\]/);
    t.ok(reportedAt - started < 2300, `reported near the deadline (${reportedAt - started} ms), not after the 1.5 s rollback`);
    t.ok(reserved.has('thing'), 'the rollback was still running when the failure was reported');
    t.equal(s.app.jobs.compensatingCount, 1, 'the job is tracked as compensating');
    await s.app.jobs.drain();
    t.equal(s.app.jobs.compensatingCount, 0);
    t.notOk(reserved.has('thing'), 'the rollback completed: nothing stays reserved');
    t.ok(rolledBackAt > reportedAt);
    t.notOk(lateSuccess, 'the interrupted step was aborted, not left to finish');
    const again = await http(s.url, 'GET', new URL(res.json.location).pathname);
    t.equal(again.status, 503, 'the end of the rollback changes nothing in the recorded outcome');
    t.same(again.json.error, done.json.error);
  });

  t.test('an agent giving up just before the deadline: the failure, reported during the rollback, still names its step', async (t) => {
    const zone = (await s.client.createZone({ name: 'z-agent-first' })).inventory;
    const original = s.app.handlers.get('UpdateZone')!;
    t.teardown(() => void s.app.handlers.set('UpdateZone', original));
    s.app.handlers.set('UpdateZone', {
      run: async (): Promise<any> => {
        await runFlow(
          'agent-first',
          [
            { name: 'reserve', run: async () => undefined, rollback: () => sleep(2000) },
            {
              name: 'call-agent',
              // What the agent client does with an agent's own "deadline exceeded", 40 ms before our timer.
              run: async () => {
                const ctx = currentContext()!;
                await sleep(ctx.deadline - Date.now() - 40);
                throw timeoutError(ctx, 'agent /slow');
              },
            },
          ],
          {},
        );
        return { inventory: zone };
      },
    });
    const res = await http(s.url, 'PUT', `/zstack/v1/zones/${zone.uuid}/actions`, {
      body: { updateZone: { name: 'y' } },
      headers: { ...auth, 'X-API-Timeout': '1' },
    });
    const done = await pollJob(res.json.location);
    t.equal(done.json.error.code, 'SYS.1001');
    t.match(done.json.error.details, /API\[UpdateZone\] timed out after \d+ ms \(timeout 1000 ms\) in step\[agent \/slow\]/);
    t.equal(s.app.jobs.compensatingCount, 1, 'reported while the rollback still ran');
    await s.app.jobs.drain();
  });

  t.test(`a rollback done within ${REPORT_GRACE_MS} ms is finished before the failure is reported`, async (t) => {
    const zone = (await s.client.createZone({ name: 'z-quick-rollback' })).inventory;
    const original = s.app.handlers.get('UpdateZone')!;
    t.teardown(() => void s.app.handlers.set('UpdateZone', original));
    const reserved = new Set<string>();
    s.app.handlers.set('UpdateZone', {
      run: async (): Promise<any> => {
        await runFlow(
          'quick-rollback',
          [
            { name: 'reserve', run: async () => void reserved.add('thing'), rollback: async () => void reserved.delete('thing') },
            { name: 'slow-agent', run: (_d, signal) => sleep(10_000, undefined, { signal }) },
          ],
          {},
        );
        return { inventory: zone };
      },
    });
    const res = await http(s.url, 'PUT', `/zstack/v1/zones/${zone.uuid}/actions`, {
      body: { updateZone: { name: 'y' } },
      headers: { ...auth, 'X-API-Timeout': '1' },
    });
    const done = await pollJob(res.json.location);
    t.equal(done.json.error.code, 'SYS.1001');
    t.match(done.json.error.details, /in step\[quick-rollback\/slow-agent\]/);
    t.notOk(reserved.has('thing'), 'rolled back before the failure was reported');
    t.equal(s.app.jobs.compensatingCount, 0);
  });

  t.test('a timeout outside any step names the job phase', async (t) => {
    const zone = (await s.client.createZone({ name: 'z-no-step' })).inventory;
    const original = s.app.handlers.get('UpdateZone')!;
    t.teardown(() => void s.app.handlers.set('UpdateZone', original));
    // Like a handler's own database write that outlives the deadline (nothing listens to the signal).
    s.app.handlers.set('UpdateZone', { run: async (): Promise<any> => (await sleep(1500), { inventory: zone }) });
    const res = await http(s.url, 'PUT', `/zstack/v1/zones/${zone.uuid}/actions`, {
      body: { updateZone: { name: 'y' } },
      headers: { ...auth, 'X-API-Timeout': '1' },
    });
    const done = await pollJob(res.json.location);
    t.equal(done.json.error.code, 'SYS.1001');
    t.match(done.json.error.details, /API\[UpdateZone\] timed out after \d+ ms \(timeout 1000 ms\) in step\[UpdateZone\/run\]/);
    await s.app.jobs.drain();
    t.equal((await pollJob(res.json.location)).json.error.details, done.json.error.details, 'the late success changes nothing');
  });

  t.test(`work that completes within ${REPORT_GRACE_MS} ms of the deadline all the same is reported as done`, async (t) => {
    const zone = (await s.client.createZone({ name: 'z-just-late' })).inventory;
    const original = s.app.handlers.get('UpdateZone')!;
    t.teardown(() => void s.app.handlers.set('UpdateZone', original));
    s.app.handlers.set('UpdateZone', {
      // Ignores its signal (a last database write) and ends 10 ms after the deadline.
      run: async (): Promise<any> => {
        const ctx = currentContext()!;
        await sleep(ctx.deadline + 10 - Date.now());
        return { inventory: zone };
      },
    });
    const res = await http(s.url, 'PUT', `/zstack/v1/zones/${zone.uuid}/actions`, {
      body: { updateZone: { name: 'y' } },
      headers: { ...auth, 'X-API-Timeout': '1' },
    });
    const done = await pollJob(res.json.location);
    t.equal(done.status, 200, 'the outcome is what happened, not a SYS.1001 for work that was done');
    t.equal(done.json.inventory.uuid, zone.uuid);
  });

  t.test('the deadline counts from the request: a slow check eats into the budget', async (t) => {
    const zone = (await s.client.createZone({ name: 'z-slow-check' })).inventory;
    const original = s.app.handlers.get('UpdateZone')!;
    t.teardown(() => void s.app.handlers.set('UpdateZone', original));
    let checkMs = 900;
    s.app.handlers.set('UpdateZone', {
      check: async () => void (await sleep(checkMs)),
      run: (): Promise<any> =>
        step('talk-to-slow-agent', async (signal) => {
          await sleep(10_000, undefined, { signal }).catch(() => undefined);
          return { inventory: zone };
        }),
    });
    const send = () =>
      http(s.url, 'PUT', `/zstack/v1/zones/${zone.uuid}/actions`, { body: { updateZone: { name: 'y' } }, headers: { ...auth, 'X-API-Timeout': '2' } });
    const started = Date.now();
    const res = await send();
    const done = await pollJob(res.json.location);
    const elapsed = Date.now() - started;
    t.equal(done.json.error.code, 'SYS.1001');
    const spent = Number(/timed out after (\d+) ms/.exec(done.json.error.details)?.[1]);
    t.ok(spent >= 2000 && spent < 2600, `the job's elapsed time includes the check (${spent} ms)`);
    t.ok(elapsed >= 1900 && elapsed < 2700, `failed about 2 s after the request (${elapsed} ms), not 2 s after the 202 (≥ 2.9 s)`);

    checkMs = 3000;
    const tooSlow = await send();
    t.equal(tooSlow.status, 503, 'a check longer than the whole budget fails the call itself');
    t.equal(tooSlow.json.error.code, 'SYS.1001');
    t.match(tooSlow.json.error.details, /API\[UpdateZone\] timed out after \d+ ms \(timeout 2000 ms\)/);
    t.match(tooSlow.json.error.details, /UpdateZone\/check/, 'the phase it ran out in is named');
  });

  t.test('jobs starting and ending together share statements; a uuid twice in one batch runs once', async (t) => {
    const jobs = s.app.jobs;
    const inserts = () => (jobs as unknown as { inserts: { batches: number } }).inserts.batches;
    const finishes = () => (jobs as unknown as { finishes: { batches: number } }).finishes.batches;
    const [i0, f0] = [inserts(), finishes()];
    let runs = 0;
    const dup = 'abcdefabcdefabcdefabcdefabcdef0d';
    const submit = (uuid: string) => jobs.submit({ uuid, apiName: 'CreateZone', request: { i: uuid }, timeoutMs: 10_000, run: async () => ({ ran: ++runs }) });
    const uuids = Array.from({ length: 30 }, (_, i) => `${'f'.repeat(30)}${String(i).padStart(2, '0')}`);
    const submitted = await Promise.all([...uuids.map(submit), submit(dup), submit(dup)]);
    t.equal(submitted.filter((x) => x.created).length, 31, 'every distinct uuid created once');
    t.same(
      submitted.slice(30).map((x) => x.job.uuid),
      [dup, dup],
      'the duplicate found the same job',
    );
    await Promise.all([...uuids, dup].map((u) => jobs.wait(u)));
    t.equal(runs, 31, 'the duplicated job ran once');
    t.ok(inserts() - i0 < 10, `31 job starts took ${inserts() - i0} statements`);
    t.ok(finishes() - f0 < 10, `31 job ends took ${finishes() - f0} statements`);
    t.equal(await jobs.count('done', [...uuids, dup]), 31, 'every end recorded');
    t.match(await jobs.get(uuids[7]), { status: 'done', result: { ran: Number, success: true }, error: null }, 'a batched end reads back as written');
  });

  t.test('X-API-Timeout must be whole seconds', async (t) => {
    const res = await http(s.url, 'POST', '/zstack/v1/zones', { body: { params: { name: 'z' } }, headers: { ...auth, 'X-API-Timeout': '0.5' } });
    t.equal(res.status, 400);
    t.match(res.json.error.details, /X-API-Timeout/);
  });
});

t.test('a job interrupted by a restart ends failed at the next start', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const session = await s.client.login();
  const zone = (await s.client.createZone({ name: 'z-crash' })).inventory;
  s.app.handlers.set('UpdateZone', { run: () => new Promise(() => undefined) });
  const res = await http(s.url, 'PUT', `/zstack/v1/zones/${zone.uuid}/actions`, {
    body: { updateZone: { name: 'y' } },
    headers: { Authorization: `OAuth ${session}` },
  });
  t.equal(res.status, 202);
  const port = Number(new URL(s.url).port);
  await s.app.crash();
  const next = await App.create({ databaseUrl: s.databaseUrl, dataDir: s.dataDir, port, validateResponses: true });
  t.teardown(() => next.close());
  await next.listen();
  const done = await pollJob(res.json.location, 5000);
  t.equal(done.status, 503, 'the job is failed, not left running');
  t.equal(done.json.error.code, 'SYS.1006');
  t.match(done.json.error.details, /stopped before the job finished/);
});

// Load shedding at admission (server/src/core/admission.ts): a call that would wait behind the calls being admitted
// past its own deadline is refused at once — SYS.1001, HTTP 503, Retry-After — with nothing done.
import t from 'tap';
import { AdmissionQueue } from '../../server/src/core/admission.js';
import { http, startServer } from '../lib/harness.js';

t.test('the expected wait is the calls in admission over the rate of the last second', async (t) => {
  let now = 1_000_000;
  const q = new AdmissionQueue(16, () => now);
  t.equal(q.expectedWaitMs(), undefined, 'no rate yet');
  // Answers while the queue was empty say nothing about the wait in a busy one.
  for (let i = 0; i < 10; i++) q.enter()();
  now += 500;
  const held = Array.from({ length: 20 }, () => q.enter());
  t.equal(q.expectedWaitMs(), undefined, 'answered before the queue got busy');
  // 10 calls answered in the second since: 10 per second.
  for (let i = 0; i < 10; i++) q.enter()();
  now += 1000;
  t.equal(q.size, 20);
  t.equal(q.expectedWaitMs(), 2000, '20 calls ahead at 10 per second');
  t.equal(q.refusal(3000), undefined, 'a deadline 3 s away can be met');
  const e = q.refusal(1000)!;
  t.equal(e.httpStatus, 503);
  t.equal(e.error.code, 'SYS.1001');
  t.match(e.error.details, /the server is busy: 20 calls are being admitted ahead of this one \(about 2000 ms\), past this call's deadline \(1000 ms left\)/);
  t.same(e.error.opaque, { retryAfterSeconds: 2 });
  // A second later the answers have left the window: no rate, nothing is refused on a guess.
  now += 1000;
  t.equal(q.expectedWaitMs(), undefined);
  t.equal(q.refusal(1), undefined);
  now -= 1000;
  // Measured since the queue got busy, not over a whole second: 10 answers in its first 200 ms.
  const r = new AdmissionQueue(16, () => now);
  const storm = Array.from({ length: 30 }, () => r.enter());
  now += 200;
  storm.slice(0, 10).forEach((leave) => leave());
  t.equal(r.expectedWaitMs(), 400, '20 calls ahead at 50 per second');
  storm.forEach((leave) => leave());
  // Below the minimum queue nothing is refused, however slow.
  held.slice(5).forEach((leave) => leave());
  held[0]();
  held[0]();
  t.equal(q.size, 4, 'leaving twice counts once');
  t.equal(q.refusal(0), undefined);
});

t.test('a call that cannot meet its deadline is refused before it does anything', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const session = await s.client.login();
  const auth = { Authorization: `OAuth ${session}` };
  const zones = async () => (await s.client.queryZone({ count: true })).total;
  const before = await zones();
  // 40 calls in admission, answered at 10 per second (the queue's clock moved on a second): about 4 s of wait.
  let now = Date.now() + 10_000;
  Object.assign(s.app.admission, { now: () => now });
  const held = Array.from({ length: 40 }, () => s.app.admission.enter());
  for (let i = 0; i < 10; i++) s.app.admission.enter()();
  now += 1000;
  t.teardown(() => held.forEach((leave) => leave()));

  const refused = await http(s.url, 'POST', '/zstack/v1/zones', { body: { params: { name: 'z-shed' } }, headers: { ...auth, 'X-API-Timeout': '1' } });
  t.equal(refused.status, 503);
  t.equal(refused.json.error.code, 'SYS.1001');
  t.match(refused.json.error.details, /the server is busy: 4\d calls are being admitted ahead of this one/);
  t.ok(Number(refused.headers.get('retry-after')) >= 4, 'Retry-After says when the queue is through');
  t.equal(await zones(), before, 'nothing was created');

  // Upstream's clients (no direct errors): the failed job of an async API, at once with Prefer: wait.
  const upstream = await http(s.url, 'POST', '/zstack/v1/zones', {
    body: { params: { name: 'z-shed-upstream' } },
    headers: { ...auth, 'X-API-Timeout': '1', Prefer: 'respond-async, wait=5' },
    upstream: true,
  });
  t.equal(upstream.status, 503, upstream.text);
  t.equal(upstream.json.error.code, 'SYS.1001');

  // The same call with a budget the queue can meet (the default timeout) goes through.
  const admitted = await http(s.url, 'POST', '/zstack/v1/zones', {
    body: { params: { name: 'z-admitted' } },
    headers: { ...auth, Prefer: 'respond-async, wait=5' },
  });
  t.equal(admitted.status, 200, admitted.text);
  t.equal(await zones(), before! + 1);
});

t.test('a call held by Prefer: wait leaves the admission queue once its job runs', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const session = await s.client.login();
  const zone = (await s.client.createZone({ name: 'z-held' })).inventory;
  const original = s.app.handlers.get('UpdateZone')!;
  t.teardown(() => void s.app.handlers.set('UpdateZone', original));
  let release = () => {};
  const released = new Promise<void>((r) => (release = r));
  let running = () => {};
  const started = new Promise<void>((r) => (running = r));
  s.app.handlers.set('UpdateZone', { run: async (): Promise<any> => (running(), await released, { inventory: zone }) });
  const held = http(s.url, 'PUT', `/zstack/v1/zones/${zone.uuid}/actions`, {
    body: { updateZone: { name: 'y' } },
    headers: { Authorization: `OAuth ${session}`, Prefer: 'respond-async, wait=10' },
  });
  await started;
  // The 202 decision comes just after the job starts: wait for the condition, within 2 s.
  for (const until = Date.now() + 2000; s.app.admission.size !== 0 && Date.now() < until;) await new Promise((r) => setTimeout(r, 5));
  t.equal(s.app.admission.size, 0, 'the held call is not counted as waiting for admission');
  release();
  t.equal((await held).status, 200);
});

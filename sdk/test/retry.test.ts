// Retries only where safe, counted at a fault-injecting proxy in front of a live server: GETs and connections that
// never reached the server are retried with exponential backoff + jitter; non-GETs only when their X-Job-UUID makes
// them idempotent (the SDK gives every asynchronous call one); 4xx and ZStack error replies never.
import t from 'tap';
import { startServer } from '../../test/lib/harness.js';
import { ZStackClient, ZStackError, type ErrorEvent } from '../src/index.js';
import { until } from '../../test/lib/wait.js';
import { freePort, startFaultProxy, type Fault, type SeenRequest } from './lib/fault-proxy.js';

t.test('retries', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  // Log in directly (not through the proxy) so the proxy only sees the calls under test.
  const session = await s.client.login();
  const retry = { retries: 3, baseDelayMs: 20, maxDelayMs: 200 };

  /** A proxy with `plan` deciding per request, and a client through it that records its errors. */
  async function through(plan: (r: SeenRequest) => Fault, extra: Partial<ConstructorParameters<typeof ZStackClient>[0]> = {}) {
    const proxy = await startFaultProxy(s.url, plan);
    t.teardown(() => proxy.close());
    const errors: ErrorEvent[] = [];
    const zs = new ZStackClient({ endpoint: proxy.url, sessionUuid: session, pollIntervalMs: 20, retry, hooks: { onError: (e) => errors.push(e) }, ...extra });
    return { proxy, zs, errors };
  }
  const first = (n: number, fault: Fault, match: (r: SeenRequest) => boolean = () => true) => {
    let hits = 0;
    return (r: SeenRequest): Fault => (match(r) && hits++ < n ? fault : 'pass');
  };
  const plain503: Fault = { status: 503, body: '<html>Service Unavailable</html>', contentType: 'text/html' };

  t.test('a GET answered 503 by something in between is retried, with growing jittered delays', async (t) => {
    const { proxy, zs, errors } = await through(first(3, plain503));
    const reply = await zs.queryZone({ count: true });
    t.equal(reply.success, true);
    t.equal(proxy.count('GET', '/zstack/v1/zones'), 4, 'three 503s, then the answer');
    t.same(
      errors.map((e) => [e.status, e.willRetry, e.attempt]),
      [
        [503, true, 1],
        [503, true, 2],
        [503, true, 3],
      ],
    );
    const delays = errors.map((e) => e.delayMs!);
    // base 20 ms doubling, each drawn from [half, full] of its step
    t.ok(delays[0] >= 10 && delays[0] <= 20 && delays[1] >= 20 && delays[1] <= 40 && delays[2] >= 40 && delays[2] <= 80, `delays ${delays}`);
  });

  t.test('a GET whose connection is reset is retried; a 500 without a ZStack body too', async (t) => {
    const { proxy, zs } = await through((r) => (r.n === 1 ? 'reset' : r.n === 2 ? { status: 500, body: 'oops' } : 'pass'));
    t.equal((await zs.queryZone({ count: true })).success, true);
    t.equal(proxy.count('GET', '/zstack/v1/zones'), 3);
  });

  t.test('retries are bounded: the last reply is reported', async (t) => {
    const { proxy, zs } = await through(() => plain503);
    const e = await zs.queryZone({}).catch((x) => x);
    t.ok(e instanceof ZStackError);
    t.match(e, { code: 'SDK.1002', httpStatus: 503, apiName: 'QueryZone' });
    t.match(e.details, /Service Unavailable/);
    t.equal(proxy.requests.length, 1 + retry.retries);
  });

  t.test('an asynchronous POST is retried with the same X-Job-UUID and runs once', async (t) => {
    // The server receives the create and runs it, but the answer is lost on the way back.
    const { proxy, zs } = await through(first(1, 'forward-then-reset', (r) => r.method === 'POST'));
    const { inventory } = await zs.createZone({ name: 'exactly-once' });
    const posts = proxy.requests.filter((r) => r.method === 'POST');
    t.equal(posts.length, 2, 'sent twice');
    t.match(posts[0].headers['x-job-uuid'], /^[0-9a-f]{32}$/);
    t.equal(posts[1].headers['x-job-uuid'], posts[0].headers['x-job-uuid'], 'with the same job uuid');
    const found = await s.client.queryZone({ q: { name: 'exactly-once' } });
    t.equal(found.inventories!.length, 1, 'one zone, not two');
    t.equal(found.inventories![0].uuid, inventory.uuid);
  });

  t.test('an asynchronous POST answered 503 by a proxy is retried (idempotent by its job uuid)', async (t) => {
    const { proxy, zs } = await through(first(2, plain503, (r) => r.method === 'POST'));
    await zs.createZone({ name: 'through-503' });
    t.equal(proxy.count('POST', '/zstack/v1/zones'), 3);
    t.equal((await s.client.queryZone({ q: { name: 'through-503' }, count: true })).total, 1);
  });

  t.test('a synchronous non-GET is never re-sent once it may have reached the server', async (t) => {
    const { proxy, zs, errors } = await through(() => plain503);
    const e = await zs.getVersion({}).catch((x) => x);
    t.match(e, { code: 'SDK.1002', httpStatus: 503, apiName: 'GetVersion' });
    t.equal(proxy.count('PUT', '/zstack/v1/management-nodes/actions'), 1, 'sent once');
    t.same(
      errors.map((x) => x.willRetry),
      [false],
    );

    const reset = await through(() => 'reset');
    const e2 = await reset.zs.getVersion({}).catch((x) => x);
    t.ok(e2 instanceof ZStackError && e2.isConnection, `${e2}`);
    t.equal(e2.code, 'SDK.1000');
    t.equal(e2.httpStatus, 0);
    t.ok(e2.cause, 'the transport error is the cause');
    t.equal(reset.proxy.requests.length, 1, 'a reset after sending is not retried');

    const noJob = await through(() => 'reset');
    const e3 = await noJob.zs.createZone({ name: 'x' }, { retry: false }).catch((x) => x);
    t.equal(e3?.code, 'SDK.1000');
    t.equal(noJob.proxy.requests.length, 1, 'retry: false turns retries off');
  });

  t.test('4xx and ZStack error replies are never retried', async (t) => {
    const { proxy, zs } = await through(() => 'pass');
    const bad = await zs.queryZone({ q: ['nosuchfield=1'] }).catch((x) => x);
    t.match(bad, { code: 'SYS.1007', httpStatus: 400 });
    t.equal(proxy.requests.length, 1, 'a 400 is final');

    const zstack503: Fault = {
      status: 503,
      contentType: 'application/json',
      body: JSON.stringify({ error: { code: 'SYS.1006', description: 'An operation failed', details: 'really failed' } }),
    };
    const second = await through(() => zstack503);
    const failed = await second.zs.queryZone({}).catch((x) => x);
    t.match(failed, { code: 'SYS.1006', httpStatus: 503, details: 'really failed' });
    t.equal(second.proxy.requests.length, 1, 'a ZStack failure is an answer, not a transient fault');

    const expired = await through(() => 'pass', { sessionUuid: 'f'.repeat(32) });
    const e = await expired.zs.queryZone({}).catch((x) => x);
    t.match(e, { code: 'ID.1001', httpStatus: 401 });
    t.equal(expired.proxy.requests.length, 1, 'a 401 without credentials to log in again is final');
  });

  t.test('connection refused (nothing sent) is retried for any method until the server is up', async (t) => {
    const port = await freePort();
    const errors: ErrorEvent[] = [];
    const zs = new ZStackClient({
      endpoint: `http://127.0.0.1:${port}`,
      retry: { retries: 6, baseDelayMs: 50, maxDelayMs: 400 },
      hooks: { onError: (e) => errors.push(e) },
    });
    let proxy: Awaited<ReturnType<typeof startFaultProxy>> | undefined;
    const up = new Promise<void>((resolve) =>
      setTimeout(async () => {
        proxy = await startFaultProxy(s.url, () => 'pass', { port });
        resolve();
      }, 250),
    );
    const reply = await zs.getVersion({}); // a PUT: safe only because it never left
    await up;
    t.teardown(() => proxy?.close());
    t.ok(reply.success);
    t.ok(errors.length >= 1 && errors.every((e) => e.willRetry), `${errors.length} refused connections retried`);
    t.equal(proxy!.requests.length, 1, 'the server got the PUT once');

    const never = new ZStackClient({ endpoint: `http://127.0.0.1:${await freePort()}`, retry: { retries: 2, baseDelayMs: 10 } });
    const e = await never.queryZone({}).catch((x) => x);
    t.match(e, { code: 'SDK.1000', httpStatus: 0, isConnection: true });
    t.match(e.details, /ECONNREFUSED.*3 attempts|3 attempts.*ECONNREFUSED/);
  });

  t.test('a request held by the network is cancelled by the AbortSignal', async (t) => {
    // The proxy holds the answer far longer than the test may run: only the abort can end the call.
    const { proxy, zs } = await through(() => ({ delayMs: 600_000 }));
    const ac = new AbortController();
    const call = zs.queryZone({}, { signal: ac.signal }).catch((x) => x);
    await until('the proxy holds the request', () => proxy.requests.length === 1);
    ac.abort();
    const e = await call;
    t.equal(e?.name, 'AbortError');
    t.ok(await until('the client closed the connection', () => proxy.requests[0].clientClosed), 'the connection was closed by the client');
  });

  t.test('a 503 with Retry-After is honoured (capped by maxDelayMs)', async (t) => {
    const { proxy, zs, errors } = await through(first(1, { status: 503, headers: { 'retry-after': '0.1' }, body: 'busy' }));
    await zs.queryZone({ count: true });
    t.equal(errors[0].delayMs, 100);
    t.equal(proxy.requests.length, 2);
  });
});

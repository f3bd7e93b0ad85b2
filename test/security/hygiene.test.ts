// Error hygiene: one request can never fail another that shares its statement, and no reply, job or log line
// carries SQL, parameters, stack traces, other callers' session uuids or secrets. Internal errors are SYS.1000
// with a correlation id the server log records with the cause; PostgreSQL error classes map to ZStack codes.
import t from 'tap';
import pg from 'pg';
import { startServer, http, pollJob } from '../lib/harness.js';
import { sha512 } from '../../server/src/identity/passwords.js';
import { toApiError, scrubText } from '../../server/src/core/errors.js';
import { newUuid } from '../../server/src/core/ids.js';

/** Everything console.error prints while `fn` runs. */
async function capturingLog<T>(fn: () => Promise<T>): Promise<{ result: T; lines: string[] }> {
  const lines: string[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => void lines.push(args.map((a) => (typeof a === 'string' ? a : String((a as Error)?.stack ?? a))).join(' '));
  try {
    return { result: await fn(), lines };
  } finally {
    console.error = original;
  }
}

t.test('a poisoned batch: 20 honest concurrent callers all succeed, nothing of anyone leaks', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const admin = await s.client.login();
  // Honest callers: 20 sessions of 4 Normal accounts.
  const passwords = new Map<string, string>();
  for (let i = 0; i < 4; i++) {
    const pw = sha512(`secret-password-${i}-${newUuid()}`);
    passwords.set(`tenant${i}`, pw);
    await s.client.createAccount({ name: `tenant${i}`, password: pw });
  }
  const sessions: string[] = [];
  for (let i = 0; i < 20; i++) {
    const res = await http(s.url, 'PUT', '/zstack/v1/accounts/login', {
      body: { logInByAccount: { accountName: `tenant${i % 4}`, password: passwords.get(`tenant${i % 4}`) } },
    });
    t.equal(res.status, 200);
    sessions.push(res.json.inventory.uuid);
  }
  const sshPassword = `ssh-${newUuid()}`;
  const adminAccountPw = sha512(`admin-made-${newUuid()}`);
  const adminAuth = { Authorization: `OAuth ${admin}` };

  for (let round = 0; round < 3; round++) {
    const honest = sessions.map((session, i) =>
      // (Normal accounts may create offerings, not zones: see README "Accounts, ownership, permissions".)
      http(s.url, 'POST', '/zstack/v1/instance-offerings', {
        body: { params: { name: `offering-${round}-${i}`, cpuNum: 1, memorySize: 134217728, description: `private-${session}` } },
        headers: { Authorization: `OAuth ${session}` },
      }),
    );
    const poisons = [
      http(s.url, 'POST', '/zstack/v1/zones', { body: { params: { name: 'nul\u0000byte' } }, headers: adminAuth }),
      http(s.url, 'POST', '/zstack/v1/zones', { rawBody: '{"params":{"name":"lone\\ud800surrogate"}}', headers: adminAuth }),
      http(s.url, 'POST', '/zstack/v1/zones', { body: { params: { name: 'timeout' } }, headers: { ...adminAuth, 'X-API-Timeout': '1e100' } }),
      http(s.url, 'POST', '/zstack/v1/zones', { body: { params: { name: 'huge-timeout' } }, headers: { ...adminAuth, 'X-API-Timeout': '99999999999' } }),
      http(s.url, 'POST', '/zstack/v1/instance-offerings', {
        body: { params: { name: 'o', cpuNum: 1, memorySize: 134217728, description: 'x\u0000' } },
        headers: { Authorization: `OAuth ${sessions[0]}` },
      }),
      http(s.url, 'POST', '/zstack/v1/accounts', { body: { params: { name: `made-${round}`, password: adminAccountPw } }, headers: adminAuth }),
    ];
    const [answers, bad] = await Promise.all([Promise.all(honest), Promise.all(poisons)]);
    for (const [i, a] of answers.entries()) {
      t.equal(a.status, 202, `honest caller ${i} accepted`);
      const done = await pollJob(a.json.location);
      t.equal(done.status, 200, `honest caller ${i}'s job succeeded`);
      t.equal(done.json.inventory.name, `offering-${round}-${i}`);
      const text = JSON.stringify(done.json) + a.text;
      for (const [j, other] of sessions.entries()) if (j !== i) t.notOk(text.includes(other), `caller ${i} sees nothing of caller ${j}`);
      t.notOk(text.includes(adminAccountPw) || text.includes(admin), 'nor of the admin');
    }
    for (const [i, b] of bad.slice(0, 5).entries()) {
      t.equal(b.status, 400, `poison ${i}: 400 (${b.json?.error?.details})`);
      t.equal(b.json?.error?.code, 'SYS.1007');
      for (const session of sessions) t.notOk(b.text.includes(session), `poison ${i} sees no session`);
      t.notOk(b.text.includes(admin), 'nor the admin session');
      t.notMatch(b.text, /INSERT|SELECT|unnest|params:|\bat .*\.ts/);
    }
    t.equal(bad[5].status, 202, 'the admin call sharing the batch went through');
    t.equal((await pollJob(bad[5].json.location)).status, 200);
  }
  // The stored jobs never hold a password in clear.
  const db = new pg.Client({ connectionString: s.databaseUrl });
  await db.connect();
  t.teardown(() => db.end());
  const { rows } = await db.query(`SELECT request::text AS r FROM api_jobs WHERE api_name = 'CreateAccount'`);
  t.ok(rows.length >= 7);
  for (const r of rows) {
    t.notOk(
      [...passwords.values(), adminAccountPw].some((pw) => r.r.includes(pw)),
      'no password digest in a stored job',
    );
    t.match(r.r, /"password": "\*\*\*\*\*"/);
  }
  void sshPassword;
});

t.test('a statement that still fails in a batch is retried item by item: only its bad item fails', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  // Straight to the job batcher, past submit's own checks: one NUL (PostgreSQL refuses it in jsonb) among 30.
  const inserts = (s.app.jobs as unknown as { inserts: { add(i: unknown): Promise<unknown>; batches: number } }).inserts;
  const item = (request: unknown) => ({
    uuid: newUuid(),
    apiName: 'CreateZone',
    request,
    timeoutMs: 60_000,
    deadline: new Date(Date.now() + 60_000),
    sessionUuid: null,
    webHook: null,
  });
  const outcomes = await Promise.allSettled(
    Array.from({ length: 30 }, (_, i) => inserts.add(item(i === 7 ? { name: 'a\u0000b', secret: 'hunter2' } : { name: `ok${i}` }))),
  );
  t.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 29, 'every honest insert went in');
  const failed = outcomes[7];
  t.equal(failed.status, 'rejected', 'the bad one failed');
  const { result: apiError, lines } = await capturingLog(async () => toApiError((failed as PromiseRejectedResult).reason));
  t.equal(apiError.error.code, 'SYS.1007', 'a value PostgreSQL cannot store is an argument error');
  t.notMatch(JSON.stringify(apiError.error), /hunter2|INSERT|unnest|ok1/);
  t.same(lines, []);
});

t.test('internal errors: SYS.1000 with a correlation id; the log has the cause, without SQL or parameters', async (t) => {
  const failure = Object.assign(new Error('Failed query: INSERT INTO secrets VALUES ($1)\nparams: hunter2'), {
    cause: Object.assign(new Error('connection terminated'), { code: '08006', severity: 'FATAL' }),
  });
  const { result, lines } = await capturingLog(async () => [toApiError(failure), toApiError(failure)]);
  const [e1, e2] = result;
  t.equal(e1.error.code, 'SYS.1000');
  t.equal(e1.httpStatus, 500);
  const id = (e1.error.opaque as { correlationId: string }).correlationId;
  t.match(id, /^[0-9a-f]{32}$/);
  t.match(e1.error.details, id, 'the reply names the correlation id');
  t.notMatch(JSON.stringify(e1.error), /hunter2|INSERT|connection terminated/, 'and nothing else');
  t.equal(e2, e1, 'the same error keeps its id');
  t.equal(lines.length, 1, 'logged once');
  const record = JSON.parse(lines[0]);
  t.equal(record.correlationId, id);
  t.equal(record.pgCode, '08006');
  t.equal(record.pgMessage, 'connection terminated');
  t.notMatch(lines[0], /hunter2|INSERT INTO/, 'no SQL or parameters in the log');
  t.ok(Array.isArray(record.stack) && record.stack.length > 0, 'the stack frames are in the log');

  const pgError = (code: string, extra: object = {}) => Object.assign(new Error('x'), { code, severity: 'ERROR', ...extra });
  const cases: Array<[string, string, RegExp]> = [
    ['23505', 'SYS.1007', /same name already exists/],
    ['23503', 'SYS.1007', /does not exist/],
    ['22003', 'SYS.1007', /out of range/],
    ['22P05', 'SYS.1007', /cannot be stored/],
    ['40001', 'SYS.1006', /concurrent/],
    ['40P01', 'SYS.1006', /deadlock/],
  ];
  for (const [code, zcode, details] of cases) {
    const e = toApiError(new Error('Failed query: select 1', { cause: pgError(code, { detail: 'Key (name)=(alice) already exists.' }) }));
    t.equal(e.error.code, zcode, `${code} → ${zcode}`);
    t.match(e.error.details, details);
    t.notMatch(e.error.details, /alice|select/);
  }
  t.equal(scrubText('Failed query: select * from accounts\nparams: x'), '[statement omitted]');
});

t.test('a unique violation in a race is the argument error the check would give, with no hash in any job', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const admin = await s.client.login();
  const pw = sha512('race-password');
  const calls = await Promise.all(
    Array.from({ length: 8 }, () =>
      http(s.url, 'POST', '/zstack/v1/accounts', { body: { params: { name: 'racer', password: pw } }, headers: { Authorization: `OAuth ${admin}` } }),
    ),
  );
  const outcomes = await Promise.all(calls.map((c) => (c.status === 202 ? pollJob(c.json.location) : Promise.resolve({ status: c.status, json: c.json }))));
  t.equal(outcomes.filter((o) => o.status === 200).length, 1, 'one account created');
  for (const o of outcomes.filter((o) => o.status !== 200)) {
    t.equal(o.json.error.code, 'SYS.1007', o.json.error.details);
    t.match(o.json.error.details, /already exists/);
    t.notMatch(JSON.stringify(o.json), /scrypt|INSERT|params|\$\d/);
  }
});

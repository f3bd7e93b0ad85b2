// Structured logs (core/log.ts): one pino line per API call with operation, status, duration, job uuid and account,
// never a password, session uuid or body; ZSTACK_LOG_LEVEL; pretty lines on a terminal, JSON otherwise.
import t from 'tap';
import { PassThrough } from 'node:stream';
import { startServer } from '../../test/lib/harness.js';
import { ZStackClient, ZStackError } from '../../sdk/src/index.js';
import { loggerOptions, prettyLine } from '../src/core/log.js';

t.test('loggerOptions: level from ZSTACK_LOG_LEVEL, pretty on a terminal', async (t) => {
  const tty = Object.assign(new PassThrough(), { isTTY: true });
  const pipe = new PassThrough();
  t.equal(loggerOptions({}, pipe).level, 'info', 'info by default');
  t.equal(loggerOptions({ ZSTACK_LOG_LEVEL: 'DEBUG' }, pipe).level, 'debug');
  t.throws(() => loggerOptions({ ZSTACK_LOG_LEVEL: 'chatty' }, pipe), /ZSTACK_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent/);
  t.equal(loggerOptions({}, pipe).stream, pipe, 'JSON lines straight to a pipe');
  t.not(loggerOptions({}, tty).stream, tty, 'a pretty stream in front of a terminal');
  t.equal(loggerOptions({ ZSTACK_LOG_FORMAT: 'json' }, tty).stream, tty, 'ZSTACK_LOG_FORMAT=json forces JSON');
  t.not(loggerOptions({ ZSTACK_LOG_FORMAT: 'pretty' }, pipe).stream, pipe, 'ZSTACK_LOG_FORMAT=pretty forces pretty');

  const out: string[] = [];
  const sink = Object.assign(new PassThrough(), { isTTY: true });
  sink.on('data', (d) => out.push(String(d)));
  const pretty = loggerOptions({}, sink).stream;
  pretty.write(
    `${JSON.stringify({ level: 30, time: Date.UTC(2026, 0, 2, 3, 4, 5, 6), pid: 1, hostname: 'h', reqId: 'req-1', msg: 'api', op: 'CreateZone', status: 200, ms: 12, job: 'ab'.repeat(16) })}\n`,
  );
  await new Promise((r) => setImmediate(r));
  t.equal(out.join(''), `03:04:05.006 INFO  api op=CreateZone status=200 ms=12 job=${'ab'.repeat(16)}\n`);
  t.equal(prettyLine('not json'), 'not json');
  t.equal(prettyLine(JSON.stringify({ level: 50, msg: 'x', err: { a: 1 } })), ' ERROR x err={"a":1}');
});

t.test('one line per API call, no secrets', async (t) => {
  const stream = new PassThrough();
  const lines: Record<string, unknown>[] = [];
  let raw = '';
  stream.on('data', (d) => {
    raw += String(d);
    for (const l of String(d).split('\n')) if (l.trim()) lines.push(JSON.parse(l));
  });
  const s = await startServer({ app: { logger: { level: 'info', stream } } });
  t.teardown(() => s.close());
  const zs = new ZStackClient({ endpoint: s.url, accountName: 'admin', password: 'password', env: false });
  const zone = (await zs.createZone({ name: 'logged' })).inventory;
  await zs.queryZone({ q: { uuid: zone.uuid } });
  await t.rejects(zs.call('DeleteZone', { uuid: 'nope' }), ZStackError);
  const before = lines.length;
  await fetch(`${s.url}/zstack/v1/zones`, { headers: { 'X-ZStack-Errors': 'direct' } }); // no session → 401
  await new Promise((r) => setImmediate(r));

  const api = lines.filter((l) => l.msg === 'api');
  const ops = api.map((l) => `${l.op} ${l.status}`);
  t.ok(ops.includes('LogInByAccount 200'), ops.join(', '));
  const create = api.find((l) => l.op === 'CreateZone');
  t.match(create, { status: 200, ms: Number, job: /^[0-9a-f]{32}$/, account: /^[0-9a-f]{32}$/, level: 30, time: Number });
  t.match(
    api.find((l) => l.op === 'QueryZone'),
    { status: 200, account: create?.account },
  );
  t.match(
    api.find((l) => l.op === 'DeleteZone'),
    { status: 400 },
  );
  t.match(
    lines.slice(before).find((l) => l.msg === 'api'),
    { op: 'QueryZone', status: 401, account: undefined },
  );
  t.equal(api.filter((l) => l.op === 'CreateZone').length, 1, 'one line per call');
  t.notOk(raw.includes(zs.sessionUuid!), 'no session uuid in the log');
  t.notOk(/password|authorization/i.test(raw), 'no password or Authorization header in the log');
  t.notOk(
    lines.some((l) => l.req || l.res),
    'no request/response dumps',
  );
});

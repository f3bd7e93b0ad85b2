// Dates and request ids: upstream's zone-less dates read as UTC (`parseZStackDate`) or rewritten to ISO 8601 with
// the zone (`dates: 'iso'`) in every date field the spec declares; each call carries an X-Request-Id that the server
// logs as its reqId and echoes, and an error of a call without a job (synchronous APIs, refusals) names it.
import t from 'tap';
import { PassThrough } from 'node:stream';
import { startServer } from '../../test/lib/harness.js';
import { until } from '../../test/lib/wait.js';
import { DATE_FIELDS, ZStackClient, ZStackError, hashPassword, isoDates, parseZStackDate } from '../src/index.js';
import { loadSpec } from '../../server/src/core/spec.js';

t.test('parseZStackDate reads the server format as UTC', async (t) => {
  t.equal(parseZStackDate('Jan 30, 2016 3:01:03 PM')?.toISOString(), '2016-01-30T15:01:03.000Z');
  t.equal(parseZStackDate('Dec 6, 2026 12:05:09 AM')?.toISOString(), '2026-12-06T00:05:09.000Z', 'midnight hour');
  t.equal(parseZStackDate('Dec 6, 2026 12:05:09 PM')?.toISOString(), '2026-12-06T12:05:09.000Z', 'noon hour');
  for (const bad of ['', '2016-01-30T15:01:03Z', 'Foo 30, 2016 3:01:03 PM', 'Jan 30, 2016 13:01:03 PM'])
    t.equal(parseZStackDate(bad), undefined, `not a date: ${JSON.stringify(bad)}`);
  t.same(
    isoDates({ inventory: { createDate: 'Jan 30, 2016 3:01:03 PM', name: 'Jan 30, 2016 3:01:03 PM' } }),
    { inventory: { createDate: '2016-01-30T15:01:03.000Z', name: 'Jan 30, 2016 3:01:03 PM' } },
    'only date fields change',
  );
});

t.test('DATE_FIELDS are the properties the spec types as Date', async (t) => {
  const spec = JSON.stringify(loadSpec().components.schemas);
  for (const name of DATE_FIELDS) t.match(spec, new RegExp(`"${name}":\\{"\\$ref":"#/components/schemas/Date"`), name);
  t.ok(DATE_FIELDS.has('createDate') && DATE_FIELDS.has('expiredDate'));
});

t.test('against a live server', async (t) => {
  const log = new PassThrough();
  const lines: any[] = [];
  log.on('data', (chunk) =>
    String(chunk)
      .split('\n')
      .filter(Boolean)
      .forEach((l) => lines.push(JSON.parse(l))),
  );
  const s = await startServer({ app: { logger: { level: 'info', stream: log } } });
  t.teardown(() => s.close());

  t.test("dates: 'iso' rewrites every date field of replies, job results and queries included", async (t) => {
    const iso = new ZStackClient({ endpoint: s.url, accountName: 'admin', password: 'password', dates: 'iso' });
    const { inventory: zone } = await iso.createZone({ name: 'dated' });
    const [asSent] = (await s.client.queryZone({ q: { uuid: zone.uuid } })).inventories!;
    t.match(asSent.createDate, /^[A-Z][a-z]{2} \d{1,2}, \d{4} \d{1,2}:\d{2}:\d{2} [AP]M$/, 'by default: as the server sends it');
    t.equal(zone.createDate, parseZStackDate(asSent.createDate)!.toISOString(), 'the job result: ISO with zone, same instant');
    t.equal(new Date(zone.lastOpDate).getTime(), parseZStackDate(asSent.lastOpDate)!.getTime());
    const [queried] = (await iso.queryZone({ q: { uuid: zone.uuid } })).inventories!;
    t.equal(queried.createDate, zone.createDate, 'a query reply too');
    const session = await iso.logInByAccount({ accountName: 'admin', password: hashPassword('password') });
    t.match(session.inventory.expiredDate, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000Z$/, 'a synchronous reply too');
  });

  t.test('an error of a synchronous call names its request id, which the server logged and echoed', async (t) => {
    const zs = new ZStackClient({ endpoint: s.url, accountName: 'admin', password: 'password' });
    const error: ZStackError = await zs.queryZone({ q: ['noSuchField=1'] }).then(
      () => t.fail('no error') as never,
      (e) => e,
    );
    t.ok(error instanceof ZStackError);
    t.equal(error.code, 'SYS.1007');
    t.match(error.requestId, /^[0-9a-f]{32}$/);
    t.match(error.message, new RegExp(`^QueryZone, request ${error.requestId}: SYS\\.1007`));
    t.equal(error.toJSON().requestId, error.requestId);
    await until('the log line of the failed call', () => lines.some((l) => l.reqId === error.requestId && l.op === 'QueryZone' && l.status === 400));
    t.pass('the server logged the call under the same id');

    const echoed: string[] = [];
    zs.http.interceptors.response.use((res) => (echoed.push(String(res.headers['x-request-id']), String(res.config.headers.get('X-Request-Id'))), res));
    await zs.getVersion();
    t.equal(echoed[0], echoed[1], 'the server echoes the id it was sent');
    const bad = await fetch(`${s.url}/zstack/v1/zones`, { headers: { 'x-request-id': 'not a token; '.repeat(9) } });
    t.match(bad.headers.get('x-request-id'), /^[0-9a-f]{32}$/, 'a malformed id is replaced');
  });
});

// The spec-driven fuzz (test/lib/fuzz.ts) of every operation in openapi/dist/openapi.json, fixed seed: no 5xx but
// the 503s of failed operations, every error in the ZStack shape, no internal error in any job, and afterwards
// the server still answers, logs in, and Object.prototype is untouched. (bench/fuzz runs the same at ≥ 10,000.)
import t from 'tap';
import { startServer, http } from '../lib/harness.js';
import { fuzz } from '../lib/fuzz.js';

const REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 3000);
const SEED = Number(process.env.FUZZ_SEED ?? 20261206);
// 3,000 requests take 4-6 min on 2 busy cores: more than tap's default 5 min per file (a bound, not a timing goal).
t.setTimeout(900_000);

t.test(`fuzz: ${REQUESTS} requests over every operation, seed ${SEED}`, async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const session = await s.client.login();
  // A few real resources, so some mutated requests reach past "not found".
  const zone = (await s.client.createZone({ name: 'fuzz-zone' })).inventory;
  const cluster = (await s.client.createCluster({ name: 'fuzz-cluster', zoneUuid: zone.uuid, hypervisorType: 'KVM' })).inventory;
  const offering = (await s.client.createInstanceOffering({ name: 'fuzz-offering', cpuNum: 1, memorySize: 1 << 30 })).inventory;
  const protoKeys = Object.getOwnPropertyNames(Object.prototype).sort();

  // Left out: ReconnectConsoleProxyAgent — a reconnect cut short by its timeout (the fuzz sends X-API-Timeout: 3)
  // leaves a console proxy agent child process running after the server closed, which keeps the test process alive
  // (a defect of the console module, reported; not hidden: bench/fuzz runs every operation).
  const report = await fuzz({
    url: s.url,
    session,
    requests: REQUESTS,
    seed: SEED,
    concurrency: 6,
    knownUuids: [zone.uuid, cluster.uuid, offering.uuid],
    exclude: ['ReconnectConsoleProxyAgent'],
  });
  t.comment(JSON.stringify({ ...report, findings: report.findings.length }));
  t.equal(report.requests, REQUESTS, 'every request was answered');
  t.ok(report.operations >= 100, `${report.operations} operations covered`);
  t.same(report.findings.slice(0, 20), [], 'no 5xx (but failed operations’ 503), every error in the ZStack shape, no internal error');

  // Invariants afterwards.
  t.same(Object.getOwnPropertyNames(Object.prototype).sort(), protoKeys, 'Object.prototype untouched');
  t.equal(({} as Record<string, unknown>).polluted, undefined);
  const zones = await http(s.url, 'GET', '/zstack/v1/zones?q=name=fuzz-zone', { headers: { Authorization: `OAuth ${session}` } });
  t.equal(zones.status, 200, 'the server still answers queries');
  t.ok(Array.isArray(zones.json.inventories), 'a well-formed reply (the zone itself may have been renamed or deleted by the fuzz)');
  const fresh = await s.client.createZone({ name: 'after-fuzz' });
  t.equal(fresh.inventory.name, 'after-fuzz', 'and runs jobs');
  const t0 = Date.now();
  await s.app.jobs.drain();
  t.comment(`every job and rollback ended ${Date.now() - t0} ms after the fuzz`);
});

// The spec-driven fuzz at scale (the same fuzzer as test/security/fuzz.test.ts: test/lib/fuzz.ts): every operation
// of openapi/dist/openapi.json, valid examples mutated, fixed seeds, against a server on a fresh PostgreSQL database
// (the test harness: in-process server + simulator agent). Prints one JSON line per seed: requests, answers by
// status, mutations, jobs started and how they ended, findings (5xx other than a failed operation's 503, an error
// not in the ZStack shape, a stack trace or SQL in an answer, a job failed with SYS.1000), and whether the server
// still answers afterwards.
//
//   npx tsx bench/fuzz/run.ts [--requests 10000] [--seeds 1,2,3] [--concurrency 8]
import { startServer, http } from '../../test/lib/harness.js';
import { fuzz } from '../../test/lib/fuzz.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const REQUESTS = Number(arg('requests', '10000'));
const SEEDS = arg('seeds', '20261206').split(',').map(Number);
const CONCURRENCY = Number(arg('concurrency', '8'));

// The wire layer's "unknown query parameter ignored" warnings would be most of the output.
const warn = console.warn;
console.warn = () => undefined;
let internalLogLines = 0;
const error = console.error;
console.error = (...args: unknown[]) => {
  if (String(args[0]).includes('"msg":"internal error"')) internalLogLines++;
  else error(...args);
};

for (const seed of SEEDS) {
  const s = await startServer();
  try {
    const session = await s.client.login();
    const zone = (await s.client.createZone({ name: 'fuzz-zone' })).inventory;
    const cluster = (await s.client.createCluster({ name: 'fuzz-cluster', zoneUuid: zone.uuid, hypervisorType: 'KVM' })).inventory;
    const offering = (await s.client.createInstanceOffering({ name: 'fuzz-offering', cpuNum: 1, memorySize: 1 << 30 })).inventory;
    const protoBefore = Object.getOwnPropertyNames(Object.prototype).join();
    const cpu0 = process.cpuUsage();
    const report = await fuzz({
      url: s.url,
      session,
      requests: REQUESTS,
      seed,
      concurrency: CONCURRENCY,
      knownUuids: [zone.uuid, cluster.uuid, offering.uuid],
    });
    const cpu = process.cpuUsage(cpu0);
    const after = await http(s.url, 'GET', '/zstack/v1/zones?q=name=fuzz-zone', { headers: { Authorization: `OAuth ${session}` } });
    const relogin = await s.client.createZone({ name: 'after-fuzz' }).then(
      () => true,
      () => false,
    );
    console.log(
      JSON.stringify({
        seed,
        requests: report.requests,
        operations: report.operations,
        durationS: +(report.durationMs / 1000).toFixed(1),
        reqPerS: Math.round(report.requests / (report.durationMs / 1000)),
        processCpuS: +((cpu.user + cpu.system) / 1e6).toFixed(1),
        byStatus: report.byStatus,
        byMutation: report.byMutation,
        jobs: report.jobs,
        jobFailures: report.jobFailures,
        findings: report.findings.length,
        firstFindings: report.findings.slice(0, 5),
        internalErrorsLogged: internalLogLines,
        serverAnswersAfter: after.status === 200 && Array.isArray(after.json.inventories),
        jobsRunAfter: relogin,
        prototypeUntouched: Object.getOwnPropertyNames(Object.prototype).join() === protoBefore,
        rssMB: Math.round(process.memoryUsage().rss / 2 ** 20),
      }),
    );
  } finally {
    await s.close();
  }
}
console.warn = warn;
console.error = error;
// A console proxy agent child a cut-short ReconnectConsoleProxyAgent left behind would keep the process alive.
process.exit(0);

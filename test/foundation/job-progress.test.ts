// A running job's poll says how far it got: the step of the API's flow running now and the count of steps, for the
// REST poll, the SDK's onProgress and (on a terminal) the CLI's spinner line.
import t from 'tap';
import { startServer, http } from '../lib/harness.js';
import { buildWorld } from '../lib/world.js';
import { until } from '../lib/wait.js';
import type { JobProgress } from '../../sdk/src/index.js';

t.test('the poll of a running CreateVmInstance reports the step it is in', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const zs = s.client;
  const w = await buildWorld(zs, { virtualRouter: false });
  // The hypervisor's start answers slowly, so the flow is seen in that step.
  for (const uuid of w.hostUuids) await zs.updateSimulatorHost({ uuid, commandDelays: { '/vm/start': 1500 } });
  const params = { instanceOfferingUuid: w.instanceOfferingUuid, imageUuid: w.imageUuid, l3NetworkUuids: [w.l3NetworkUuid] };

  const job = await zs.startCreateVmInstance({ name: 'slow-1', ...params });
  const seen = await until('the poll names the hypervisor step', async () => {
    const res = await http(s.url, 'GET', `/zstack/v1/api-jobs/${job.jobUuid}`);
    if (res.status === 503) throw new Error(`the job failed: ${res.text}`);
    return res.status === 202 && /start-on-hypervisor$/.test(res.json.progress?.step ?? '') ? res.json.progress : undefined;
  });
  t.ok(seen.stepsTotal > seen.stepsDone, `step ${seen.stepsDone + 1} of ${seen.stepsTotal}`);
  t.equal((await zs.waitJob(job)).inventory.state, 'Running');

  const reports: JobProgress[] = [];
  const vm = await zs.createVmInstance({ name: 'slow-2', ...params }, { onProgress: (p) => reports.push(p) });
  t.equal(vm.inventory.state, 'Running');
  t.ok(
    reports.some((p) => p.step?.endsWith('/start-on-hypervisor') && p.stepsTotal! > 0),
    `onProgress saw the step: ${[...new Set(reports.map((p) => p.step))].join(', ')}`,
  );
  const done = reports.map((p) => p.stepsDone ?? 0);
  t.same(
    done,
    [...done].sort((a, b) => a - b),
    'steps only move forward',
  );
});

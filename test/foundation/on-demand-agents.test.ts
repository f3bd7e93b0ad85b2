// `npm start`'s agents start when first needed, not with the server: an idle server runs neither the simulator nor the
// console proxy agent; adding simulated resources starts the simulator, the first console request the console proxy
// agent (real agents, as their own processes). A simulator that died is started again by the next call that needs it,
// and after a restart with simulated hosts in the database; a stopped server leaves no agent behind.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ZStackClient } from '../../sdk/src/index.js';
import { createDatabase } from '../lib/harness.js';
import { alive, commandOf, processTree, spawnServer, type ServerProcess } from '../lib/processes.js';
import { freePort } from '../lib/sshd.js';
import { until } from '../lib/wait.js';
import { buildWorld } from '../lib/world.js';

const agentsOf = (s: ServerProcess, kind: 'simulator' | 'console-proxy') =>
  processTree(s.child.pid!).filter((p) => p !== s.child.pid && commandOf(p).includes(` ${kind} `));

async function stopped(s: ServerProcess): Promise<number | string> {
  if (s.child.exitCode === null) s.child.kill('SIGTERM');
  return s.exited;
}

t.test('agents start when first needed and stop with the server', async (t) => {
  const db = await createDatabase();
  const dataDir = mkdtempSync(join(tmpdir(), 'zstack-on-demand-'));
  t.teardown(async () => {
    await db.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const env = { DATABASE_URL: db.url, ZSTACK_DATA_DIR: dataDir, ZSTACK_PORT: String(await freePort()) };
  const a = spawnServer(env);
  t.teardown(() => stopped(a));
  const zs = new ZStackClient({ endpoint: await a.ready, accountName: 'admin', password: 'password', pollIntervalMs: 20 });

  t.same(agentsOf(a, 'simulator'), [], 'ready: no simulator agent runs');
  t.same(agentsOf(a, 'console-proxy'), [], 'ready: no console proxy agent runs');
  const [agent] = (await zs.queryConsoleProxyAgent({})).inventories!;
  t.equal(agent?.status, 'Disconnected', 'the console proxy agent is not started yet');

  const world = await buildWorld(zs, { hosts: 1, virtualRouter: false });
  const [sim] = agentsOf(a, 'simulator');
  t.ok(sim, 'adding simulated resources started the simulator agent');
  t.equal(agentsOf(a, 'simulator').length, 1, 'one simulator agent for all of them');
  const { inventory: vm } = await zs.createVmInstance({
    name: 'vm1',
    instanceOfferingUuid: world.instanceOfferingUuid,
    imageUuid: world.imageUuid,
    l3NetworkUuids: [world.l3NetworkUuid],
  });
  t.same(agentsOf(a, 'console-proxy'), [], 'no console proxy agent before a console request');

  const [first, second] = await Promise.all([zs.requestConsoleAccess({ vmInstanceUuid: vm.uuid }), zs.requestConsoleAccess({ vmInstanceUuid: vm.uuid })]);
  t.ok(first.inventory.token && second.inventory.token, 'two concurrent first console requests both answered');
  t.equal(agentsOf(a, 'console-proxy').length, 1, 'one console proxy agent started for them');
  t.equal((await zs.queryConsoleProxyAgent({})).inventories![0]?.status, 'Connected');

  // A simulator that dies comes back with the next call that needs it.
  process.kill(sim!, 'SIGKILL');
  await until('the killed simulator to be gone', () => !alive(sim!), 30_000);
  const { inventory: host } = await zs.reconnectHost({ uuid: world.hostUuids[0]! });
  t.equal(host.status, 'Connected', 'ReconnectHost after the simulator died');
  t.equal(agentsOf(a, 'simulator').length, 1, 'a new simulator agent runs');

  const kids = processTree(a.child.pid!).filter((p) => p !== a.child.pid);
  t.equal(await stopped(a), 0, 'SIGTERM: a clean exit');
  await until('every agent of the stopped server to exit', () => kids.every((p) => !alive(p)), 60_000);

  await t.test('after a restart with simulated hosts, the simulator comes back when needed', async (t) => {
    const b = spawnServer(env);
    t.teardown(() => stopped(b));
    const zs2 = new ZStackClient({ endpoint: await b.ready, accountName: 'admin', password: 'password', pollIntervalMs: 20 });
    const { inventory: h } = await zs2.reconnectHost({ uuid: world.hostUuids[0]! });
    t.equal(h.status, 'Connected', 'ReconnectHost reaches a simulator again');
    t.equal(agentsOf(b, 'simulator').length, 1, 'the simulator agent runs again');
    const kids2 = processTree(b.child.pid!).filter((p) => p !== b.child.pid);
    b.child.kill('SIGKILL');
    await b.exited;
    await until('every agent of the killed server to exit', () => kids2.every((p) => !alive(p)), 60_000);
  });
});

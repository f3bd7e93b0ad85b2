// The runnable examples work against a live server: the tryout, and the §9 migration script.
import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startServer } from './lib/harness.js';
import { buildWorld } from './lib/world.js';

const run = promisify(execFile);
const root = new URL('..', import.meta.url).pathname;
const example = (file: string, url: string, args: string[] = []) =>
  run(process.execPath, ['--import', 'tsx', `examples/${file}`, ...args], { cwd: root, env: { ...process.env, ZSTACK_ENDPOINT: url }, timeout: 120_000 });

t.test('examples/tryout.ts: from nothing to running VMs, hot-plugging a volume and a NIC', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const { stdout } = await example('tryout.ts', s.url);
  t.match(stdout, /tryout-vm1 is Running/);
  t.match(stdout, /L3 network [0-9a-f]{32} are ready/, 'the L3 uuid is printed for the next commands');
  t.match(stdout, /second NIC at run time: 10\.20\.0\./);
  t.match(stdout, /stopped and started again/);
  const vms = await s.client.queryVmInstance({ q: ['name~=tryout-vm%', 'state=Running'] });
  t.equal(vms.inventories!.length, 2);
});

t.test('examples/section9-migration.ts moves the L3 to the Flat provider', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const w = await buildWorld(s.client);
  await s.client.createVmInstance({ name: 'vm1', instanceOfferingUuid: w.instanceOfferingUuid, imageUuid: w.imageUuid, l3NetworkUuids: [w.l3NetworkUuid] });
  const { stdout } = await example('section9-migration.ts', s.url, [w.l3NetworkUuid]);
  t.match(stdout, /1\. VirtualRouter provides (DHCP, DNS|DNS, DHCP)/);
  t.match(stdout, /7\. destroyed virtual router/);
  const refs = (await s.client.queryNetworkServiceL3NetworkRef({ q: [`l3NetworkUuid=${w.l3NetworkUuid}`] })).inventories!;
  t.same(refs.map((r) => [r.networkServiceProviderUuid, r.networkServiceType]).sort(), [[w.flatProviderUuid, 'DHCP'], [w.flatProviderUuid, 'Userdata']]);
  const again = await example('section9-migration.ts', s.url, [w.l3NetworkUuid]);
  t.match(again.stdout, /VirtualRouter provides nothing/, 'running it twice is harmless');
});

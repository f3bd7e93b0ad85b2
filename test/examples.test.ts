// The runnable examples work against a live server: the tryout builds the release notes' §9 starting point and the
// §9 migration script takes it from there, with the command the tryout prints.
import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startServer } from './lib/harness.js';

const run = promisify(execFile);
const root = new URL('..', import.meta.url).pathname;
const example = (file: string, url: string, args: string[] = []) =>
  run(process.execPath, ['--import', 'tsx', `examples/${file}`, ...args], { cwd: root, env: { ...process.env, ZSTACK_ENDPOINT: url }, timeout: 120_000 });

t.test("examples/tryout.ts builds §9's starting point, then examples/section9-migration.ts moves it to Flat", async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const { stdout } = await example('tryout.ts', s.url);
  t.match(stdout, /tryout-vm1 is Running/);
  t.match(stdout, /L3 network [0-9a-f]{32} are ready/, 'the L3 uuid is printed for the next commands');
  t.match(stdout, /virtual router [0-9a-f]{32} is Running/, 'a virtual router VM serves the L3');
  t.match(stdout, /second NIC at run time: 10\.20\.0\./);
  t.match(stdout, /stopped and started again/);
  const vms = await s.client.queryVmInstance({ q: ['name~=tryout-vm%', 'state=Running'] });
  t.equal(vms.inventories!.length, 2);

  // The tryout's last line is the next command, with the L3's uuid.
  const l3NetworkUuid = /section9-migration\.ts ([0-9a-f]{32})$/m.exec(stdout)?.[1];
  t.ok(l3NetworkUuid, 'the tryout names the next command');
  const providers = (await s.client.queryNetworkServiceProvider({})).inventories!;
  const uuidOf = (type: string) => providers.find((p) => p.type === type)!.uuid;
  const servicesOf = async () =>
    (await s.client.queryNetworkServiceL3NetworkRef({ q: [`l3NetworkUuid=${l3NetworkUuid}`] }))
      .inventories!.map((r) => [r.networkServiceProviderUuid, r.networkServiceType])
      .sort();
  t.same(
    await servicesOf(),
    [
      [uuidOf('VirtualRouter'), 'DHCP'],
      [uuidOf('VirtualRouter'), 'DNS'],
    ].sort(),
    "§9's start: VirtualRouter DHCP and DNS",
  );

  const migrated = await example('section9-migration.ts', s.url, [l3NetworkUuid!]);
  t.match(migrated.stdout, /1\. VirtualRouter provides (DHCP, DNS|DNS, DHCP)/);
  t.match(migrated.stdout, /7\. destroyed virtual router/);
  t.same(await servicesOf(), [
    [uuidOf('Flat'), 'DHCP'],
    [uuidOf('Flat'), 'Userdata'],
  ]);
  t.equal((await s.client.queryVirtualRouterVm({ q: [`name=virtualRouter.l3.${l3NetworkUuid}`] })).inventories!.length, 0, 'its router VM is gone');
  const again = await example('section9-migration.ts', s.url, [l3NetworkUuid!]);
  t.match(again.stdout, /VirtualRouter provides nothing/, 'running it twice is harmless');
});

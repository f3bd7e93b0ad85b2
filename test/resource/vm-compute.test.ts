// The compute, host and identity APIs of issue #19 through the SDK, on one server with three simulated hosts:
// UpdateVmInstance, ChangeInstanceOffering (capacity before/after, a running VM's pending change), ISO attach/detach
// (what the simulated host holds, a failed attach leaves nothing), boot order (tag round trip, what /vm/start gets),
// migration candidates (not the current host, not a full one), console address, KvmRunShell (per host, a failing
// host, refused for a tenant, the script never stored), UpdateKVMHost refused for a simulated host, and the batch
// policy attach/detach.
import t from 'tap';
import { eq } from 'drizzle-orm';
import { AGENT_SECRET, startServer, type TestServer } from '../lib/harness.js';
import { buildWorld, type World } from '../lib/world.js';
import { ZStackClient, ZStackError } from '../../sdk/src/index.js';
import { sha512 } from '../../server/src/identity/passwords.js';
import { apiJobs, userPolicyRefs } from '../../server/src/db/schema/index.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;

async function fails(p: Promise<unknown>, code: string, details?: RegExp): Promise<ZStackError> {
  const e = await p.then(
    () => undefined,
    (x) => x,
  );
  if (!(e instanceof ZStackError)) throw new Error(`expected ${code}, got ${e === undefined ? 'success' : String(e)}`);
  if (e.code !== code) throw new Error(`expected ${code}, got ${e.code}: ${e.details}`);
  if (details && !details.test(e.details ?? '')) throw new Error(`expected details ${details}, got ${e.details}`);
  return e;
}

async function sim(s: TestServer, path: string, body: object): Promise<any> {
  const res = await fetch(s.sim.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${AGENT_SECRET}` },
    body: JSON.stringify(body),
  });
  return res.json();
}

const s = await startServer();
t.teardown(() => s.close());
const zs = s.client;
const world: World = await buildWorld(zs, { hosts: 3, virtualRouter: false, hostCpu: 8, hostMemory: 8 * GiB });
const [host1, host2, host3] = world.hostUuids;

const vm = async (name: string, extra: Record<string, unknown> = {}) =>
  (
    await zs.createVmInstance({
      name,
      instanceOfferingUuid: world.instanceOfferingUuid,
      imageUuid: world.imageUuid,
      l3NetworkUuids: [world.l3NetworkUuid],
      ...extra,
    } as never)
  ).inventory;
const simVm = async (hostUuid: string, vmUuid: string) => (await sim(s, '/simulator/vms', { hostUuid })).vms.find((v: any) => v.uuid === vmUuid);
const capacity = async () => {
  const hosts = (await zs.queryHost({})).inventories!;
  return { cpu: hosts.reduce((n, h) => n + h.availableCpuCapacity!, 0), memory: hosts.reduce((n, h) => n + h.availableMemoryCapacity!, 0) };
};
const tags = async (vmUuid: string, like: string) =>
  (await zs.querySystemTag({ q: [`resourceUuid=${vmUuid}`, `tag~=${like}`] })).inventories!.map((x) => x.tag);
const failOn = (hostUuid: string, failCommands: string[]) => zs.updateSimulatorHost({ uuid: hostUuid, failCommands });

t.test('UpdateVmInstance: fields, validation, the state correction', async (t) => {
  const v = await vm('upd', { hostUuid: host1 });
  const updated = (await zs.updateVmInstance({ uuid: v.uuid, name: 'upd-2', description: 'd', platform: 'Windows', defaultL3NetworkUuid: world.l3NetworkUuid }))
    .inventory;
  t.match(updated, { name: 'upd-2', description: 'd', platform: 'Windows', defaultL3NetworkUuid: world.l3NetworkUuid, state: 'Running' });
  await fails(zs.updateVmInstance({ uuid: v.uuid, defaultL3NetworkUuid: '0'.repeat(32) }), 'SYS.1007', /has no NIC on L3 network/);
  await fails(zs.updateVmInstance({ uuid: v.uuid, platform: 'BeOS' } as never), 'SYS.1007', /platform/);
  await fails(zs.updateVmInstance({ uuid: v.uuid, name: 'x'.repeat(256) }), 'SYS.1007', /name/);
  await fails(zs.updateVmInstance({ uuid: '0'.repeat(32), name: 'x' }), 'SYS.1003');

  const before = await capacity();
  const stopped = (await zs.updateVmInstance({ uuid: v.uuid, state: 'Stopped' })).inventory;
  t.equal(stopped.state, 'Stopped', 'the recorded state is corrected');
  t.notOk(stopped.hostUuid, 'no host any more');
  t.same(await capacity(), { cpu: before.cpu + 1, memory: before.memory + 128 * MiB }, 'its host capacity is given back');
  await fails(zs.updateVmInstance({ uuid: v.uuid, state: 'Running' }), 'SYS.1006', /StartVmInstance/);
  await zs.destroyVmInstance({ uuid: v.uuid });
  await fails(zs.updateVmInstance({ uuid: v.uuid, state: 'Stopped' }), 'VM.1000');
  t.equal((await zs.updateVmInstance({ uuid: v.uuid, name: 'gone' })).inventory.name, 'gone', 'a destroyed VM can still be renamed');
});

t.test('ChangeInstanceOffering: stopped at once, running pending until the next start; capacity follows', async (t) => {
  const big = (await zs.createInstanceOffering({ name: 'big', cpuNum: 2, memorySize: 512 * MiB })).inventory;
  const v = await vm('co', { hostUuid: host1 });
  const idle = await capacity();

  // Running: the VM keeps what it runs with; the change is pending.
  const running = (await zs.changeInstanceOffering({ vmInstanceUuid: v.uuid, instanceOfferingUuid: big.uuid })).inventory;
  t.match(running, { instanceOfferingUuid: big.uuid, cpuNum: 1, memorySize: 128 * MiB, state: 'Running' });
  t.same(await tags(v.uuid, 'pendingCapacityChange::%'), [`pendingCapacityChange::cpuNum::2::cpuSpeed::0::memory::${512 * MiB}`]);
  t.same(await capacity(), idle, 'nothing re-accounted while it runs');

  await zs.stopVmInstance({ uuid: v.uuid });
  t.same(await capacity(), { cpu: idle.cpu + 1, memory: idle.memory + 128 * MiB }, 'stop gives back the old figures');
  const started = (await zs.startVmInstance({ uuid: v.uuid })).inventory;
  t.match(started, { cpuNum: 2, memorySize: 512 * MiB, state: 'Running' }, 'the start applies the pending change');
  t.same(await capacity(), { cpu: idle.cpu - 1, memory: idle.memory - 384 * MiB }, 'and reserves the new figures');
  t.same(await tags(v.uuid, 'pendingCapacityChange::%'), [], 'the pending change is gone');
  t.match(await simVm(started.hostUuid!, v.uuid), { cpuNum: 2, memory: 512 * MiB }, 'the host runs it with the new figures');

  // Stopped: at once, reserved at the next start.
  await zs.stopVmInstance({ uuid: v.uuid });
  const small = (await zs.changeInstanceOffering({ vmInstanceUuid: v.uuid, instanceOfferingUuid: world.instanceOfferingUuid })).inventory;
  t.match(small, { instanceOfferingUuid: world.instanceOfferingUuid, cpuNum: 1, memorySize: 128 * MiB, state: 'Stopped' });
  await zs.startVmInstance({ uuid: v.uuid });
  t.same(await capacity(), idle, 'back to the first figures');

  await fails(zs.changeInstanceOffering({ vmInstanceUuid: v.uuid, instanceOfferingUuid: '0'.repeat(32) }), 'SYS.1003', /InstanceOfferingVO/);
  await zs.destroyVmInstance({ uuid: v.uuid });
  await fails(zs.changeInstanceOffering({ vmInstanceUuid: v.uuid, instanceOfferingUuid: big.uuid }), 'VM.1000', /ChangeInstanceOffering/);
  t.same(await capacity(), { cpu: idle.cpu + 1, memory: idle.memory + 128 * MiB });
});

t.test('ISO: attach and detach on a running VM, a failed attach leaves nothing, a stopped VM boots with it', async (t) => {
  const iso = (
    await zs.addImage({
      name: 'installer',
      url: 'http://example.org/installer.iso',
      format: 'iso',
      mediaType: 'ISO',
      backupStorageUuids: [world.backupStorageUuid],
    })
  ).inventory;
  const v = await vm('iso', { hostUuid: host2 });

  await fails(zs.attachIsoToVmInstance({ vmInstanceUuid: v.uuid, isoUuid: world.imageUuid }), 'SYS.1007', /not an ISO/);
  await fails(zs.attachIsoToVmInstance({ vmInstanceUuid: v.uuid, isoUuid: '0'.repeat(32) }), 'SYS.1003', /ImageVO/);

  await failOn(host2, ['/vm/iso/attach']);
  await fails(zs.attachIsoToVmInstance({ vmInstanceUuid: v.uuid, isoUuid: iso.uuid }), 'SYS.1006', /simulated failure of \/vm\/iso\/attach/);
  await failOn(host2, []);
  t.same(await tags(v.uuid, 'iso::%'), [], 'a failed attach records nothing');
  t.notOk((await simVm(host2, v.uuid)).iso, 'and the drive is empty');

  await zs.attachIsoToVmInstance({ vmInstanceUuid: v.uuid, isoUuid: iso.uuid });
  t.same(await tags(v.uuid, 'iso::%'), [`iso::${iso.uuid}`]);
  t.match((await simVm(host2, v.uuid)).iso, { imageUuid: iso.uuid, path: new RegExp(`/imagecache/iso/${iso.uuid}/${iso.uuid}\\.iso$`) }, 'the host has it');
  await fails(zs.attachIsoToVmInstance({ vmInstanceUuid: v.uuid, isoUuid: iso.uuid }), 'SYS.1006', /already has an ISO/);

  await failOn(host2, ['/vm/iso/detach']);
  await fails(zs.detachIsoFromVmInstance({ vmInstanceUuid: v.uuid }), 'SYS.1006');
  t.same(await tags(v.uuid, 'iso::%'), [`iso::${iso.uuid}`], 'a failed detach keeps the tag (the drive still holds it)');
  await failOn(host2, []);
  await zs.detachIsoFromVmInstance({ vmInstanceUuid: v.uuid });
  t.same(await tags(v.uuid, 'iso::%'), []);
  t.notOk((await simVm(host2, v.uuid)).iso, 'the drive is empty again');
  await zs.detachIsoFromVmInstance({ vmInstanceUuid: v.uuid }); // nothing attached: succeeds

  // Two attaches at once: serialized on the VM, one wins, the other is refused; one ISO in the drive.
  const iso2 = (
    await zs.addImage({ name: 'tools', url: 'http://example.org/tools.iso', format: 'iso', mediaType: 'ISO', backupStorageUuids: [world.backupStorageUuid] })
  ).inventory;
  const race = await Promise.allSettled([iso.uuid, iso2.uuid].map((isoUuid) => zs.attachIsoToVmInstance({ vmInstanceUuid: v.uuid, isoUuid })));
  t.same(race.map((r) => r.status).sort(), ['fulfilled', 'rejected'], 'one of two concurrent attaches wins');
  const winner = race[0].status === 'fulfilled' ? iso.uuid : iso2.uuid;
  t.match((race.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason, { code: 'SYS.1006', details: /already has an ISO/ });
  t.same(await tags(v.uuid, 'iso::%'), [`iso::${winner}`]);
  t.equal((await simVm(host2, v.uuid)).iso.imageUuid, winner, 'the drive holds the winner');
  await zs.detachIsoFromVmInstance({ vmInstanceUuid: v.uuid });

  // Stopped: the tag only; the next start boots with it, in the boot order set.
  await zs.stopVmInstance({ uuid: v.uuid });
  await zs.attachIsoToVmInstance({ vmInstanceUuid: v.uuid, isoUuid: iso.uuid });
  t.same((await zs.getVmBootOrder({ uuid: v.uuid })).order, ['HardDisk'], 'default boot order');
  t.same((await zs.setVmBootOrder({ uuid: v.uuid, bootOrder: ['CdRom', 'HardDisk'] })).inventory.uuid, v.uuid);
  t.same((await zs.getVmBootOrder({ uuid: v.uuid })).order, ['CdRom', 'HardDisk'], 'boot order round trip');
  t.same(await tags(v.uuid, 'bootOrder::%'), ['bootOrder::CdRom,HardDisk']);
  const started = (await zs.startVmInstance({ uuid: v.uuid })).inventory;
  t.match(await simVm(started.hostUuid!, v.uuid), { bootDev: ['cdrom', 'hd'], iso: { imageUuid: iso.uuid } }, '/vm/start carried them');

  await fails(zs.setVmBootOrder({ uuid: v.uuid, bootOrder: ['Floppy'] }), 'SYS.1007', /invalid boot device\[Floppy\]/);
  await zs.setVmBootOrder({ uuid: v.uuid });
  t.same((await zs.getVmBootOrder({ uuid: v.uuid })).order, ['HardDisk'], 'no bootOrder: back to the default');
  await fails(zs.getVmBootOrder({ uuid: '0'.repeat(32) }), 'SYS.1003');
  await zs.destroyVmInstance({ uuid: v.uuid });
  await fails(zs.attachIsoToVmInstance({ vmInstanceUuid: v.uuid, isoUuid: iso.uuid }), 'VM.1000');
});

t.test('migration candidates and console address', async (t) => {
  const v = await vm('mig', { hostUuid: host1 });
  const candidates = async () => (await zs.getVmMigrationCandidateHosts({ vmInstanceUuid: v.uuid })).inventories!.map((h) => h.uuid).sort();
  t.same(await candidates(), [host2, host3].sort(), 'every other host of the cluster');

  // host3 full: a VM takes all its free memory.
  const h3 = (await zs.queryHost({ q: [`uuid=${host3}`] })).inventories![0];
  const filler = (await zs.createInstanceOffering({ name: 'filler', cpuNum: 1, memorySize: h3.availableMemoryCapacity! })).inventory;
  const hog = await vm('hog', { hostUuid: host3, instanceOfferingUuid: filler.uuid });
  t.same(await candidates(), [host2], 'a full host is no candidate');
  await zs.changeHostState({ uuid: host2, stateEvent: 'disable' });
  t.same(await candidates(), [], 'none left: an empty list');
  await zs.changeHostState({ uuid: host2, stateEvent: 'enable' });
  await zs.migrateVm({ vmInstanceUuid: v.uuid });
  t.same(await candidates(), [host1], 'after migrating to host2, host1 is the candidate');

  const addr = await zs.getVmConsoleAddress({ uuid: v.uuid });
  t.match(addr, { hostIp: '127.0.0.1', protocol: 'vnc' });
  t.ok(addr.port > 0, 'a port');
  t.equal((await simVm(host2, v.uuid)).vncPort, addr.port, 'the port the host listens on');

  await zs.stopVmInstance({ uuid: v.uuid });
  await fails(zs.getVmMigrationCandidateHosts({ vmInstanceUuid: v.uuid }), 'VM.1000');
  await fails(zs.getVmConsoleAddress({ uuid: v.uuid }), 'VM.1000');
  await zs.destroyVmInstance({ uuid: v.uuid });
  await zs.destroyVmInstance({ uuid: hog.uuid });
});

t.test('KvmRunShell: one result per host, a failing host, refused for a tenant, the script never stored', async (t) => {
  const script = 'echo secret-token-1234 | wc -c';
  await failOn(host2, ['/host/shell']);
  const r = await zs.kvmRunShell({ hostUuids: [host1, host2], script });
  await failOn(host2, []);
  t.same(Object.keys(r.inventory).sort(), [host1, host2].sort());
  t.match(r.inventory[host1], { returnCode: 0, stdout: '', stderr: '' });
  t.match(r.inventory[host2], { errorCode: { code: 'SYS.1006' } });
  const records = (await sim(s, '/simulator/hosts/records', { hostUuid: host1 })).records.filter((x: any) => x.path === '/host/shell');
  t.same(
    records.map((x: any) => x.body.script),
    [script],
    'the host got the script',
  );
  const jobs = await s.app.db.select().from(apiJobs).where(eq(apiJobs.apiName, 'KvmRunShell'));
  t.equal(jobs.length, 1);
  t.notMatch(JSON.stringify(jobs), /secret-token-1234/, 'the stored job does not keep the script');

  await fails(zs.kvmRunShell({ hostUuids: [host1, '0'.repeat(32)], script: 'true' }), 'SYS.1003', /HostVO/);
  await fails(zs.kvmRunShell({ hostUuids: [], script: 'true' }), 'SYS.1007', /hostUuids/);
  await zs.createAccount({ name: 'tenant', password: sha512('pw') });
  const tenant = new ZStackClient({ endpoint: s.url, accountName: 'tenant', password: 'pw', pollIntervalMs: 20 });
  const refused = await fails(tenant.kvmRunShell({ hostUuids: [host1], script: 'true' }), 'ID.1002');
  t.equal(refused.httpStatus, 403);
  t.equal((await sim(s, '/simulator/hosts/records', { hostUuid: host1 })).records.filter((x: any) => x.path === '/host/shell').length, 1, 'nothing ran');
  await fails(tenant.updateVmInstance({ uuid: (await vm('theirs')).uuid, name: 'mine' }), 'ID.1002');

  // A tenant's VM cannot outgrow its quota by a bigger offering.
  const account = (await zs.queryAccount({ q: ['name=tenant'] })).inventories![0];
  await zs.shareResource({ resourceUuids: [world.imageUuid, world.instanceOfferingUuid, world.l3NetworkUuid], toPublic: true });
  const huge = (await zs.createInstanceOffering({ name: 'huge', cpuNum: 4, memorySize: 128 * MiB })).inventory;
  await zs.shareResource({ resourceUuids: [huge.uuid], toPublic: true });
  await zs.updateQuota({ identityUuid: account.uuid, name: 'vm.cpuNum', value: 3 });
  const own = (
    await tenant.createVmInstance({
      name: 'own',
      instanceOfferingUuid: world.instanceOfferingUuid,
      imageUuid: world.imageUuid,
      l3NetworkUuids: [world.l3NetworkUuid],
    })
  ).inventory;
  await fails(tenant.changeInstanceOffering({ vmInstanceUuid: own.uuid, instanceOfferingUuid: huge.uuid }), 'ID.1003', /vm\.cpuNum/);
  await zs.updateQuota({ identityUuid: account.uuid, name: 'vm.cpuNum', value: 4 });
  t.equal((await tenant.changeInstanceOffering({ vmInstanceUuid: own.uuid, instanceOfferingUuid: huge.uuid })).inventory.instanceOfferingUuid, huge.uuid);
});

t.test("UpdateKVMHost is for KVM hosts: a simulated host's login is not there to change", async () => {
  await fails(zs.updateKVMHost({ uuid: host1, username: 'root' }), 'SYS.1007', /not a KVM host/);
  await fails(zs.updateKVMHost({ uuid: '0'.repeat(32), username: 'root' }), 'SYS.1003');
});

t.test('AttachPoliciesToUser / DetachPoliciesFromUser: all or nothing, then detached', async (t) => {
  const user = (await zs.createUser({ name: 'ops', password: sha512('pw') })).inventory;
  const policy = async (name: string) => (await zs.createPolicy({ name, statements: [{ effect: 'Allow', actions: [`vm:${name}`] }] } as never)).inventory.uuid;
  const [p1, p2, p3] = [await policy('StartVmInstance'), await policy('StopVmInstance'), await policy('RebootVmInstance')];
  const attached = async () => (await s.app.db.select().from(userPolicyRefs).where(eq(userPolicyRefs.userUuid, user.uuid))).map((r) => r.policyUuid).sort();

  await fails(zs.attachPoliciesToUser({ userUuid: user.uuid, policyUuids: [p1, '0'.repeat(32)] }), 'SYS.1003', /PolicyVO/);
  t.same(await attached(), [], 'a missing policy attaches none');
  await zs.attachPoliciesToUser({ userUuid: user.uuid, policyUuids: [p1, p2, p3, p1] });
  t.same(await attached(), [p1, p2, p3].sort());
  await zs.attachPoliciesToUser({ userUuid: user.uuid, policyUuids: [p1] }); // already attached: kept
  await zs.detachPoliciesFromUser({ userUuid: user.uuid, policyUuids: [p1, p3] });
  t.same(await attached(), [p2]);
  await fails(zs.attachPoliciesToUser({ userUuid: user.uuid, policyUuids: [] }), 'SYS.1007', /policyUuids/);
});

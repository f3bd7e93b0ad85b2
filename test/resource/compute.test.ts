// Clusters, hosts and offerings through the SDK on real PostgreSQL and the simulator agent: each API's lifecycle
// and validation, the host status machine under faults (ping → Disconnected → back to Connected), HOST.1010 fast
// failure, maintenance, capacity reservation under concurrency, and the deletion cascade.
import t from 'tap';
import { createHash } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { startServer } from '../lib/harness.js';
import { freePort } from '../lib/sshd.js';
import { ZStackClient, ZStackError } from '../../sdk/src/index.js';
import { clusters, hosts, instanceOfferings, l2Networks, l3Networks } from '../../server/src/db/schema/index.js';
import { newUuid } from '../../server/src/core/ids.js';
import type { EventMap } from '../../server/src/core/events.js';
import { ApiError } from '../../server/src/core/errors.js';
import { fails } from '../lib/fails.js';

const GiB = 1024 ** 3;
const DATE = /^[A-Z][a-z]{2} \d{1,2}, \d{4} \d{1,2}:\d{2}:\d{2} [AP]M$/;

/** Expects a failure: a ZStackError from the SDK, or an ApiError thrown by a service called directly. */

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

t.test('clusters, hosts and offerings', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const zs = s.client;
  const { inventory: zone } = await zs.createZone({ name: 'zone1' });

  t.test('clusters: lifecycle and validation', async (t) => {
    const { inventory: c } = await zs.createCluster({ zoneUuid: zone.uuid, name: 'c1', hypervisorType: 'Simulator', description: 'd' });
    t.match(c, { name: 'c1', zoneUuid: zone.uuid, state: 'Enabled', hypervisorType: 'Simulator', type: 'zstack', description: 'd' });
    t.match(c.createDate, DATE);
    const up = await zs.updateCluster({ uuid: c.uuid, name: 'c1-renamed' });
    t.equal(up.inventory.name, 'c1-renamed');
    t.equal((await zs.changeClusterState({ uuid: c.uuid, stateEvent: 'disable' })).inventory.state, 'Disabled');
    t.equal((await zs.changeClusterState({ uuid: c.uuid, stateEvent: 'enable' })).inventory.state, 'Enabled');

    await fails(t, zs.createCluster({ zoneUuid: newUuid(), name: 'x', hypervisorType: 'KVM' }), 404, 'SYS.1003', /zoneUuid/);
    await fails(t, zs.createCluster({ zoneUuid: zone.uuid, hypervisorType: 'KVM' } as never), 400, 'SYS.1007', /name/);
    await fails(t, zs.createCluster({ zoneUuid: zone.uuid, name: 'x', hypervisorType: 'Xen' } as never), 400, 'SYS.1007', /hypervisorType/);
    await fails(t, zs.createCluster({ zoneUuid: 'not-a-uuid', name: 'x', hypervisorType: 'KVM' }), 400, 'SYS.1007', /zoneUuid/);
    await fails(t, zs.updateCluster({ uuid: newUuid(), name: 'x' }), 404, 'SYS.1003', /ClusterVO/);
    await fails(t, zs.changeClusterState({ uuid: c.uuid, stateEvent: 'maintain' } as never), 400, 'SYS.1007', /stateEvent/);

    t.same(await zs.deleteCluster({ uuid: c.uuid }), { success: true });
    t.same((await zs.queryCluster({ q: [`uuid=${c.uuid}`] })).inventories, []);
    t.same(await zs.deleteCluster({ uuid: c.uuid }), { success: true }, 'deleting a missing cluster succeeds');
  });

  const { inventory: cluster } = await zs.createCluster({ zoneUuid: zone.uuid, name: 'sim', hypervisorType: 'Simulator' });
  const { inventory: kvmCluster } = await zs.createCluster({ zoneUuid: zone.uuid, name: 'kvm', hypervisorType: 'KVM' });

  t.test('simulated hosts: add, query, update, capacity', async (t) => {
    const events: Array<EventMap['host.status']> = [];
    const off = s.app.events.on('host.status', (e) => void events.push(e));
    const { inventory: h } = await zs.addSimulatorHost({
      name: 'h1',
      managementIp: '10.0.0.1',
      clusterUuid: cluster.uuid,
      cpuCapacity: 8,
      memoryCapacity: 16 * GiB,
    });
    off();
    t.match(h, {
      name: 'h1',
      managementIp: '10.0.0.1',
      clusterUuid: cluster.uuid,
      zoneUuid: zone.uuid,
      hypervisorType: 'Simulator',
      state: 'Enabled',
      status: 'Connected',
      cpuNum: 8,
      totalCpuCapacity: 80,
      availableCpuCapacity: 80,
      totalMemoryCapacity: 16 * GiB,
      availableMemoryCapacity: 16 * GiB,
    });
    t.notOk('username' in h, 'no KVM fields on a simulated host');
    await new Promise((r) => setTimeout(r, 20)); // events are delivered detached
    t.same(
      events.filter((e) => e.hostUuid === h.uuid).map((e) => `${e.oldStatus}>${e.newStatus}`),
      ['Connecting>Connected'],
    );

    t.same(
      (await zs.queryHost({ q: [`clusterUuid=${cluster.uuid}`, 'status=Connected'] })).inventories!.map((x) => x.uuid),
      [h.uuid],
    );

    const ratio = await zs.addSimulatorHost({ name: 'h-default', managementIp: 'sim-host.local', clusterUuid: cluster.uuid });
    t.equal(ratio.inventory.cpuNum, 32, "the simulator's default CPU count");
    t.equal(ratio.inventory.totalCpuCapacity, 320, 'physical CPUs × host/cpu.overProvisioning.ratio (10)');

    await fails(
      t,
      zs.addSimulatorHost({ name: 'x', managementIp: '10.0.0.9', clusterUuid: kvmCluster.uuid }),
      400,
      'SYS.1007',
      /clusterUuid.*Simulator cluster/,
    );
    await fails(t, zs.addSimulatorHost({ name: 'x', managementIp: '10.0.0.9', clusterUuid: newUuid() }), 404, 'SYS.1003', /clusterUuid/);
    await fails(t, zs.addSimulatorHost({ name: 'x', managementIp: 'bad ip!', clusterUuid: cluster.uuid }), 400, 'SYS.1007', /managementIp/);
    await fails(t, zs.addSimulatorHost({ name: 'x', managementIp: '10.0.0.9', clusterUuid: cluster.uuid, cpuCapacity: 0 }), 400, 'SYS.1007', /cpuCapacity/);

    const renamed = await zs.updateHost({ uuid: h.uuid, name: 'h1b', managementIp: '10.0.0.2' });
    t.match(renamed.inventory, { name: 'h1b', managementIp: '10.0.0.2' });
    await fails(t, zs.updateHost({ uuid: ratio.inventory.uuid, managementIp: '10.0.0.2' }), 400, 'SYS.1007', /managementIp.*10\.0\.0\.2/);
    await fails(t, zs.updateHost({ uuid: newUuid(), name: 'x' }), 404, 'SYS.1003', /HostVO/);

    const cap = await zs.getCpuMemoryCapacity({ clusterUuids: [cluster.uuid] });
    t.match(cap, { totalCpu: 400, availableCpu: 400, managedCpuNum: 40, totalMemory: 16 * GiB + 64 * GiB, resourceType: 'ClusterVO' });
    t.same(
      cap.capacityData.map((d) => d.resourceUuid),
      [cluster.uuid],
    );
    const perHost = await zs.getCpuMemoryCapacity({ hostUuids: [h.uuid, ratio.inventory.uuid] });
    t.equal(perHost.resourceType, 'HostVO');
    t.same(perHost.capacityData.map((d) => d.totalCpu).sort(), [320, 80]);
    t.equal((await zs.getCpuMemoryCapacity({ all: true })).totalCpu, 400);
    await fails(t, zs.getCpuMemoryCapacity({}), 400, 'SYS.1007', /zoneUuids, clusterUuids or hostUuids/);

    t.same(await zs.deleteHost({ uuid: ratio.inventory.uuid }), { success: true });
    t.same(await zs.deleteHost({ uuid: ratio.inventory.uuid }), { success: true }, 'deleting a missing host succeeds');
    t.same((await zs.queryHost({ q: [`uuid=${ratio.inventory.uuid}`] })).inventories, []);
  });

  // Dotted conditions join through the expansions (and the ref inventories behind the aliases).
  t.test('expanded queries', async (t) => {
    t.same(
      (await zs.queryCluster({ q: ['zone.name=zone1', 'name=sim'] })).inventories!.map((x) => x.uuid),
      [cluster.uuid],
    );
    t.same(
      (await zs.queryCluster({ q: ['host.managementIp=10.0.0.2'] })).inventories!.map((c) => c.uuid),
      [cluster.uuid],
    );
    t.ok((await zs.queryHost({ q: ['cluster.name=sim', 'zone.name=zone1'] })).inventories!.length > 0);
  });

  t.test('AddKVMHost is validated; a failed deploy leaves nothing behind', async (t) => {
    await fails(
      t,
      zs.addKVMHost({ name: 'k', managementIp: '10.1.0.1', clusterUuid: cluster.uuid, username: 'root', password: 'p' } as never),
      400,
      'SYS.1007',
      /KVM cluster/,
    );
    await fails(
      t,
      zs.addKVMHost({ name: 'k', managementIp: '10.1.0.1', clusterUuid: kvmCluster.uuid, username: 'root' } as never),
      400,
      'SYS.1007',
      /password|sshKey/,
    );
    // The deploy fails at once (nothing listens on the port): HOST.1003 naming the task; the host is removed again.
    const closed = await freePort();
    await fails(
      t,
      zs.addKVMHost({ name: 'k', managementIp: '127.0.0.1', sshPort: closed, clusterUuid: kvmCluster.uuid, username: 'root', password: 'p' } as never),
      503,
      'HOST.1003',
      /task connect failed on host 127\.0\.0\.1: .*connection refused/,
    );
    t.same((await zs.queryHost({ q: ['managementIp=127.0.0.1'] })).inventories, [], 'nothing left behind');
    // managementIp is unique among hosts (a KVM host row written directly: adding one for real is test/kvm's).
    const kvm = newUuid();
    await s.app.db.insert(hosts).values({
      uuid: kvm,
      zoneUuid: zone.uuid,
      clusterUuid: kvmCluster.uuid,
      name: 'k0',
      managementIp: '10.1.0.7',
      hypervisorType: 'KVM',
      username: 'root',
      sshPort: 22,
      credential: 'sealed',
    });
    await fails(
      t,
      zs.addKVMHost({ name: 'k', managementIp: '10.1.0.7', clusterUuid: kvmCluster.uuid, username: 'root', password: 'p' } as never),
      400,
      'SYS.1007',
      /managementIp.*10\.1\.0\.7/,
    );
    const [k0] = (await zs.queryHost({ q: [`uuid=${kvm}`] })).inventories!;
    t.match(k0, { hypervisorType: 'KVM', username: 'root', sshPort: 22 }, 'KVM hosts carry their SSH fields');
    t.notOk('credential' in k0 || 'password' in k0, 'never the credential');
    await zs.deleteHost({ uuid: kvm });
  });

  t.test('host state: disable, enable, maintain', async (t) => {
    const { inventory: h } = await zs.addSimulatorHost({ name: 'hs', managementIp: '10.0.1.1', clusterUuid: cluster.uuid });
    t.equal((await zs.changeHostState({ uuid: h.uuid, stateEvent: 'disable' })).inventory.state, 'Disabled');
    t.equal((await zs.changeHostState({ uuid: h.uuid, stateEvent: 'enable' })).inventory.state, 'Enabled');
    const seen: string[] = [];
    s.app.services.hosts.beforeMaintenance(async (host) => void (host.uuid === h.uuid && seen.push(host.state)));
    t.equal((await zs.changeHostState({ uuid: h.uuid, stateEvent: 'maintain' })).inventory.state, 'Maintenance');
    t.same(seen, ['PreMaintenance'], 'the maintenance hooks run while PreMaintenance');
    t.equal((await zs.changeHostState({ uuid: h.uuid, stateEvent: 'enable' })).inventory.state, 'Enabled');
    await fails(t, zs.changeHostState({ uuid: h.uuid, stateEvent: 'reboot' } as never), 400, 'SYS.1007', /stateEvent/);
    await fails(t, zs.changeHostState({ uuid: newUuid(), stateEvent: 'enable' }), 404, 'SYS.1003', /HostVO/);
    await zs.deleteHost({ uuid: h.uuid });
  });

  t.test('faults: ping marks Disconnected, HOST.1010 without an agent call, the host comes back', async (t) => {
    const { inventory: h } = await zs.addSimulatorHost({ name: 'hf', managementIp: '10.0.2.1', clusterUuid: cluster.uuid });
    const events: Array<EventMap['host.status']> = [];
    const off = s.app.events.on('host.status', (e) => void (e.hostUuid === h.uuid && events.push(e)));
    t.teardown(off);
    await zs.updateGlobalConfig({ category: 'host', name: 'ping.interval', value: '1' });
    t.teardown(() => zs.updateGlobalConfig({ category: 'host', name: 'ping.interval', value: '60' }));

    const knobs = await zs.updateSimulatorHost({ uuid: h.uuid, connected: false });
    t.equal(knobs.inventory.uuid, h.uuid);
    await until('Disconnected', async () => (await zs.queryHost({ q: [`uuid=${h.uuid}`, 'status=Disconnected'] })).inventories!.length === 1);

    // Refused by the host's status, without calling the agent (which no longer answers: a call would wait for its
    // timeout and fail otherwise). How fast is a benchmark matter, not this test's.
    await fails(t, s.app.services.hosts.call(h.uuid, '/host/capacity', {}), 503, 'HOST.1010', /Disconnected/);
    await fails(t, s.app.services.hosts.requireConnected(h.uuid), 503, 'HOST.1010', /Disconnected, not Connected/);
    await fails(t, zs.changeHostState({ uuid: h.uuid, stateEvent: 'maintain' }), 409, 'SYS.1005', /Disconnected/);
    const re = await fails(t, zs.reconnectHost({ uuid: h.uuid }), 503, 'HOST.1002', /failed to connect/);
    t.equal(re?.errorCode.cause?.code, 'SYS.1015', 'the cause is the unreachable agent');

    await zs.updateSimulatorHost({ uuid: h.uuid, connected: true });
    await until('Connected again', async () => (await zs.queryHost({ q: [`uuid=${h.uuid}`, 'status=Connected'] })).inventories!.length === 1);
    // The status event follows the committed status: it may come a moment after the query sees it.
    await until('reconnect announced', async () => events.at(-1)?.newStatus === 'Connected');
    const transitions = events.map((e) => `${e.oldStatus}>${e.newStatus}`);
    t.ok(transitions.includes('Connected>Disconnected'), 'ping failure announced');
    t.equal(transitions.at(-1), 'Connecting>Connected', 'reconnect announced');
    t.same((await zs.reconnectHost({ uuid: h.uuid })).inventory.status, 'Connected');

    // An agent call that finds the agent gone marks the host Disconnected itself.
    await zs.updateGlobalConfig({ category: 'host', name: 'ping.interval', value: '60' });
    await zs.updateSimulatorHost({ uuid: h.uuid, connected: false });
    await fails(t, s.app.services.hosts.call(h.uuid, '/host/capacity', {}), 503, 'HOST.1010', /unreachable/);
    t.equal((await s.app.services.hosts.get(h.uuid))?.status, 'Disconnected');
    await zs.updateSimulatorHost({ uuid: h.uuid, connected: true });
    await zs.reconnectHost({ uuid: h.uuid });

    // failCommands: the agent answers success:false → the connect fails with the agent's reason.
    await zs.updateSimulatorHost({ uuid: h.uuid, failCommands: ['/host/capacity'] });
    await fails(t, zs.reconnectHost({ uuid: h.uuid }), 503, 'HOST.1002', /simulated failure of \/host\/capacity/);
    await zs.updateSimulatorHost({ uuid: h.uuid, failCommands: [] });
    t.equal((await zs.reconnectHost({ uuid: h.uuid })).inventory.status, 'Connected');

    // The API's timeout reaches the agent calls: a slow agent fails the reconnect with SYS.1001 (not HOST.1002).
    await zs.updateSimulatorHost({ uuid: h.uuid, commandDelays: { '/host/connect': 5000 } });
    await fails(t, zs.reconnectHost({ uuid: h.uuid }, { timeoutMs: 1000 }), 503, 'SYS.1001', /API\[ReconnectHost\] timed out/);
    t.equal((await s.app.services.hosts.get(h.uuid))?.status, 'Disconnected');
    await zs.updateSimulatorHost({ uuid: h.uuid, commandDelays: { '/host/connect': 0 } });
    t.equal((await zs.reconnectHost({ uuid: h.uuid })).inventory.status, 'Connected');
  });

  t.test('UpdateSimulatorHost is admin-only and for simulated hosts', async (t) => {
    const { inventory: h } = await zs.addSimulatorHost({ name: 'ha', managementIp: '10.0.3.1', clusterUuid: cluster.uuid });
    const sha = (p: string) => createHash('sha512').update(p).digest('hex');
    await zs.createAccount({ name: 'bob', password: sha('secret') });
    const bob = new ZStackClient({ endpoint: s.url, accountName: 'bob', password: 'secret', pollIntervalMs: 20 });
    await fails(t, bob.updateSimulatorHost({ uuid: h.uuid, connected: false }), 403, 'ID.1002', /admin/);
    await fails(t, zs.updateSimulatorHost({ uuid: h.uuid, failCommands: ['no-slash'] }), 400, 'SYS.1007', /failCommands/);
    await fails(t, zs.updateSimulatorHost({ uuid: newUuid(), connected: false }), 404, 'SYS.1003', /HostVO/);
    await zs.updateSimulatorHost({ uuid: h.uuid, commandDelays: { '/host/capacity': 300 } });
    const started = Date.now();
    await zs.reconnectHost({ uuid: h.uuid });
    t.ok(Date.now() - started >= 300, 'the delay applies');
    await zs.updateSimulatorHost({ uuid: h.uuid, commandDelays: { '/host/capacity': 0 } });
    await zs.deleteHost({ uuid: h.uuid });
  });

  t.test('capacity reservation under concurrency', async (t) => {
    const { inventory: h } = await zs.addSimulatorHost({
      name: 'hc',
      managementIp: '10.0.4.1',
      clusterUuid: cluster.uuid,
      cpuCapacity: 8,
      memoryCapacity: 16 * GiB,
    });
    const svc = s.app.services.hosts;
    // 80 vCPUs, 16 GiB: 50 callers each want 3 vCPUs and 1 GiB → memory runs out after exactly 16.
    const results = await Promise.all(Array.from({ length: 50 }, () => s.app.db.transaction((tx) => svc.reserveCapacity(tx, h.uuid, 3, GiB))));
    t.equal(results.filter(Boolean).length, 16);
    let row = (await svc.get(h.uuid))!;
    t.equal(row.availableMemoryCapacity, 0);
    t.equal(row.availableCpuCapacity, 80 - 16 * 3);
    t.notOk(await svc.reserveCapacity(s.app.db, h.uuid, 1, 1), 'nothing left');

    // Reconnecting recomputes the capacity from the VMs holding it (reconciliation): these reservations name no VM.
    await zs.reconnectHost({ uuid: h.uuid });
    row = (await svc.get(h.uuid))!;
    t.equal(row.availableCpuCapacity, 80);
    t.equal(row.availableMemoryCapacity, 16 * GiB);

    await Promise.all(results.filter(Boolean).map(() => s.app.db.transaction((tx) => svc.releaseCapacity(tx, h.uuid, 3, GiB))));
    row = (await svc.get(h.uuid))!;
    t.equal(row.availableCpuCapacity, 80);
    t.equal(row.availableMemoryCapacity, 16 * GiB);
    await svc.releaseCapacity(s.app.db, h.uuid, 5, GiB);
    t.equal((await svc.get(h.uuid))!.availableCpuCapacity, 80, 'never above the total');

    // A rolled-back transaction gives nothing away.
    await s.app.db
      .transaction(async (tx) => {
        t.ok(await svc.reserveCapacity(tx, h.uuid, 10, GiB));
        throw new Error('rollback');
      })
      .catch(() => undefined);
    t.equal((await svc.get(h.uuid))!.availableCpuCapacity, 80);
    t.same(await svc.inventories([(await svc.get(h.uuid))!]).then((l) => (l[0] as { uuid: string }).uuid), h.uuid);

    // A new over-provisioning ratio applies at once, keeping what is held.
    t.ok(await svc.reserveCapacity(s.app.db, h.uuid, 30, GiB));
    await zs.updateGlobalConfig({ category: 'host', name: 'cpu.overProvisioning.ratio', value: '5' });
    await until('ratio applied', async () => (await svc.get(h.uuid))!.totalCpuCapacity === 40);
    t.equal((await svc.get(h.uuid))!.availableCpuCapacity, 10);
    await zs.updateGlobalConfig({ category: 'host', name: 'cpu.overProvisioning.ratio', value: '10' });
    await until('ratio restored', async () => (await svc.get(h.uuid))!.totalCpuCapacity === 80);
    t.equal((await svc.get(h.uuid))!.availableCpuCapacity, 50);
    await svc.releaseCapacity(s.app.db, h.uuid, 30, GiB);
  });

  t.test('offerings', async (t) => {
    const { inventory: io } = await zs.createInstanceOffering({ name: 'small', cpuNum: 1, memorySize: GiB });
    t.match(io, { name: 'small', cpuNum: 1, memorySize: GiB, type: 'UserVm', state: 'Enabled', allocatorStrategy: 'LeastVmPreferredHostAllocatorStrategy' });
    t.equal((await s.app.services.offerings.instanceOffering(io.uuid))?.name, 'small');
    const { inventory: dof } = await zs.createDiskOffering({ name: 'd10', diskSize: 10 * GiB, allocationStrategy: 'DefaultPrimaryStorageAllocationStrategy' });
    t.match(dof, { name: 'd10', diskSize: 10 * GiB, type: 'zstack', state: 'Enabled', allocatorStrategy: 'DefaultPrimaryStorageAllocationStrategy' });
    t.equal((await s.app.services.offerings.diskOffering(dof.uuid))?.diskSize, 10 * GiB);
    await fails(t, zs.createInstanceOffering({ name: 'x', cpuNum: 0, memorySize: GiB }), 400, 'SYS.1007', /cpuNum/);
    await fails(t, zs.createInstanceOffering({ name: 'x', cpuNum: 1 } as never), 400, 'SYS.1007', /memorySize/);
    await fails(
      t,
      zs.createInstanceOffering({ name: 'x', cpuNum: 1, memorySize: GiB, allocatorStrategy: 'Nope' } as never),
      400,
      'SYS.1007',
      /allocatorStrategy/,
    );
    await fails(t, zs.createDiskOffering({ name: 'x', diskSize: 0 }), 400, 'SYS.1007', /diskSize/);

    // A management network and an image, written directly (their APIs belong to other modules' tests).
    const l2 = newUuid();
    const l3 = newUuid();
    await s.app.db.insert(l2Networks).values({ uuid: l2, name: 'l2', zoneUuid: zone.uuid, physicalInterface: 'eth0', type: 'L2NoVlanNetwork' });
    await s.app.db.insert(l3Networks).values({ uuid: l3, name: 'mgmt', zoneUuid: zone.uuid, l2NetworkUuid: l2 });
    const { images } = await import('../../server/src/db/schema/index.js');
    const image = newUuid();
    const iso = newUuid();
    await s.app.db.insert(images).values([
      { uuid: image, name: 'vr', url: 'http://x/vr.qcow2', status: 'Ready' },
      { uuid: iso, name: 'iso', url: 'http://x/a.iso', status: 'Ready', mediaType: 'ISO', format: 'iso' },
    ]);
    const vr = (p: Record<string, unknown>) =>
      zs.createVirtualRouterOffering({
        name: 'vr',
        cpuNum: 1,
        memorySize: GiB / 2,
        zoneUuid: zone.uuid,
        managementNetworkUuid: l3,
        imageUuid: image,
        ...p,
      } as never);
    const { inventory: vr1 } = await vr({ isDefault: true });
    t.match(vr1, { type: 'VirtualRouter', zoneUuid: zone.uuid, managementNetworkUuid: l3, publicNetworkUuid: l3, imageUuid: image, isDefault: true });
    const { inventory: vr2 } = await vr({ name: 'vr2', isDefault: true });
    t.equal((await s.app.services.offerings.defaultVirtualRouterOffering(zone.uuid))?.uuid, vr2.uuid, 'the newest default wins');
    t.same(
      (await zs.queryVirtualRouterOffering({ q: ['isDefault=true'] })).inventories!.map((o) => o.uuid),
      [vr2.uuid],
    );
    t.same((await zs.queryVirtualRouterOffering({})).inventories!.length, 2, 'only virtual router offerings');
    const all = await zs.queryInstanceOffering({ sort: 'createDate' });
    t.same(
      all.inventories!.map((o) => o.type),
      ['UserVm', 'VirtualRouter', 'VirtualRouter'],
      'virtual router offerings are instance offerings too',
    );
    t.same(
      (await zs.queryInstanceOffering({ q: ['type=UserVm'] })).inventories!.map((o) => o.uuid),
      [io.uuid],
    );
    t.same(
      (await zs.queryDiskOffering({ q: ['diskSize>1'] })).inventories!.map((o) => o.uuid),
      [dof.uuid],
    );
    await fails(t, vr({ zoneUuid: newUuid() }), 404, 'SYS.1003', /zoneUuid/);
    await fails(t, vr({ managementNetworkUuid: newUuid() }), 404, 'SYS.1003', /managementNetworkUuid/);
    await fails(t, vr({ publicNetworkUuid: newUuid() }), 404, 'SYS.1003', /publicNetworkUuid/);
    await fails(t, vr({ imageUuid: newUuid() }), 404, 'SYS.1003', /imageUuid/);
    await fails(t, vr({ imageUuid: iso }), 400, 'SYS.1007', /imageUuid.*ISO/);

    for (const uuid of [io.uuid, vr1.uuid]) t.same(await zs.deleteInstanceOffering({ uuid }), { success: true });
    t.same(await zs.deleteDiskOffering({ uuid: dof.uuid }), { success: true });
    t.same(await zs.deleteDiskOffering({ uuid: dof.uuid }), { success: true }, 'missing = success');
    t.same(await zs.deleteInstanceOffering({ uuid: io.uuid }), { success: true }, 'missing = success');
    t.same(
      (await zs.queryInstanceOffering({})).inventories!.map((o) => o.uuid),
      [vr2.uuid],
    );
    // Deleting the image takes its virtual router offerings along (upstream's cascade edge).
    await s.app.cascade.delete('image', [image]);
    t.same(await s.app.db.select().from(instanceOfferings).where(eq(instanceOfferings.uuid, vr2.uuid)), []);
    await s.app.db.delete(images);
    await s.app.db.delete(l3Networks).where(eq(l3Networks.uuid, l3));
    await s.app.db.delete(l2Networks).where(eq(l2Networks.uuid, l2));
  });

  t.test('deleting a zone takes its clusters and hosts', async (t) => {
    const { inventory: z } = await zs.createZone({ name: 'doomed' });
    const { inventory: c } = await zs.createCluster({ zoneUuid: z.uuid, name: 'dc', hypervisorType: 'Simulator' });
    const added = await Promise.all([1, 2, 3].map((i) => zs.addSimulatorHost({ name: `d${i}`, managementIp: `10.9.0.${i}`, clusterUuid: c.uuid })));
    const deleted: string[] = [];
    const off = s.app.events.on('host.deleted', (e) => void deleted.push(e.hostUuid));
    t.same(await zs.deleteZone({ uuid: z.uuid }), { success: true });
    off();
    t.same(await s.app.db.select().from(clusters).where(eq(clusters.zoneUuid, z.uuid)), []);
    t.same(await s.app.db.select().from(hosts).where(eq(hosts.zoneUuid, z.uuid)), []);
    await new Promise((r) => setTimeout(r, 20));
    t.same(deleted.sort(), added.map((a) => a.inventory.uuid).sort(), 'host.deleted for each');
  });

  // Last: it replaces the server. A connect or a download cut short by a crash must not stay stuck.
  t.test('a restarted server un-sticks hosts left Connecting and images left Downloading', async (t) => {
    const { images } = await import('../../server/src/db/schema/index.js');
    const { inventory: h } = await zs.addSimulatorHost({ name: 'hr', managementIp: '10.0.5.1', clusterUuid: cluster.uuid });
    const image = newUuid();
    await s.app.db.insert(images).values({ uuid: image, name: 'half-done', url: 'http://x/y.qcow2', status: 'Downloading', progress: '40%' });
    await s.app.db.update(hosts).set({ status: 'Connecting' }).where(eq(hosts.uuid, h.uuid));
    await s.app.close();
    const peer = await s.startPeer();
    const [img] = await peer.db.select().from(images).where(eq(images.uuid, image));
    t.equal(img.status, 'Error');
    await until('reconnected by the ping tracker', async () => (await peer.services.hosts.get(h.uuid))?.status === 'Connected');
    t.pass('the host is Connected again');
  });
});

// The kvm simulator: many hosts in one process, VM lifecycle with sensible state rules, primary storage.
import t from 'tap';
import { call, fastClient, start, startCmd } from './helpers.js';

const GiB = 1024 ** 3;

t.test('hosts are created by /host/connect and keep their own capacity', async (t) => {
  const agent = await start({ kind: 'simulator' });
  t.teardown(() => agent.close());

  const before = await call(agent, '/host/ping', {}, { target: 'h1' });
  t.same(before.body, { success: true }, 'a host never connected reports no hostUuid (upstream: triggers a reconnect)');

  const connect = await call(agent, '/host/connect', { hostUuid: 'h1', sendCommandUrl: 'http://mn/x', simulatorCpuNum: 8, simulatorMemory: 16 * GiB });
  t.equal(connect.body.success, true);
  t.ok(connect.body.libvirtVersion && connect.body.qemuVersion);
  await call(agent, '/host/connect', { hostUuid: 'h2' });

  t.same((await call(agent, '/host/ping', {}, { target: 'h1' })).body, { success: true, hostUuid: 'h1' });
  const cap1 = (await call(agent, '/host/capacity', {}, { target: 'h1' })).body;
  t.same(cap1, { success: true, cpuNum: 8, cpuSpeed: 2600, totalMemory: 16 * GiB, usedCpu: 0, usedMemory: 0 });
  const cap2 = (await call(agent, '/host/capacity', {}, { target: 'h2' })).body;
  t.same(cap2, { success: true, cpuNum: 32, cpuSpeed: 2600, totalMemory: 64 * GiB, usedCpu: 0, usedMemory: 0 }, 'defaults');

  const fact = (await call(agent, '/host/fact', {}, { target: 'h1' })).body;
  t.equal(fact.hvmCpuFlag, 'vmx');
  t.ok(fact.qemuImgVersion);
});

t.test('VM lifecycle and state rules', async (t) => {
  const agent = await start({ kind: 'simulator' });
  t.teardown(() => agent.close());
  const h = { target: 'h1' };
  await call(agent, '/host/connect', { hostUuid: 'h1' });

  t.equal((await call(agent, '/vm/start', startCmd('vm1'), h)).body.success, true);
  t.equal((await call(agent, '/vm/start', startCmd('vm1'), h)).body.success, true, 'starting a running VM succeeds');
  await call(agent, '/vm/start', startCmd('vm2', { cpuNum: 4, memory: 2 * GiB }), h);

  t.same((await call(agent, '/vm/vmsync', {}, h)).body.states, { vm1: 'Running', vm2: 'Running' });
  const cap = (await call(agent, '/host/capacity', {}, h)).body;
  t.equal(cap.usedMemory, 3 * GiB);
  t.equal(cap.usedCpu, 2 * 2000 + 4 * 2000);

  t.equal((await call(agent, '/vm/stop', { uuid: 'vm2', timeout: 120 }, h)).body.success, true);
  t.same((await call(agent, '/vm/vmsync', {}, h)).body.states, { vm1: 'Running' }, 'vmsync lists only live VMs');
  const states = (await call(agent, '/vm/checkstate', { vmUuids: ['vm1', 'vm2', 'ghost'], hostUuid: 'h1' }, h)).body.states;
  t.same(states, { vm1: 'Running', vm2: 'Shutdown', ghost: 'Shutdown' });
  t.equal((await call(agent, '/vm/stop', { uuid: 'vm2' }, h)).body.success, true, 'stopping a stopped VM succeeds');
  t.equal((await call(agent, '/vm/stop', { uuid: 'ghost' }, h)).body.success, true, 'stopping an absent VM succeeds');

  const reboot = await call(agent, '/vm/reboot', { uuid: 'vm2' }, h);
  t.equal(reboot.body.success, false);
  t.match(reboot.body.error, /vm2 is stopped/);
  t.equal((await call(agent, '/vm/reboot', { uuid: 'vm1' }, h)).body.success, true);

  const vol = { installPath: '/ps/data1.qcow2', deviceId: 1, volumeUuid: 'data1' };
  const toAbsent = await call(agent, '/vm/attachdatavolume', { vmInstanceUuid: 'ghost', volume: vol }, h);
  t.equal(toAbsent.body.success, false);
  t.match(toAbsent.body.error, /ghost not found/);
  const toStopped = await call(agent, '/vm/attachdatavolume', { vmInstanceUuid: 'vm2', volume: vol }, h);
  t.equal(toStopped.body.success, false, 'hot-plug needs a running VM');
  t.equal((await call(agent, '/vm/attachdatavolume', { vmInstanceUuid: 'vm1', volume: vol }, h)).body.success, true);
  t.equal((await call(agent, '/vm/attachdatavolume', { vmInstanceUuid: 'vm1', volume: vol }, h)).body.success, true, 'same volume again');
  const clash = await call(agent, '/vm/attachdatavolume', { vmInstanceUuid: 'vm1', volume: { ...vol, volumeUuid: 'data2' } }, h);
  t.match(clash.body.error, /device id 1 is already used/);

  const nic = {
    mac: 'fa:00:00:00:00:01',
    uuid: 'nic1',
    deviceId: 0,
    bridgeName: 'br_eth0',
    ip: '10.0.0.5',
    netmask: '255.255.255.0',
    gateway: '10.0.0.1',
    l3NetworkUuid: 'l3',
  };
  t.equal((await call(agent, '/vm/attachnic', { vmUuid: 'vm1', nic }, h)).body.success, true);
  t.equal((await call(agent, '/vm/attachnic', { vmUuid: 'vm1', nic: { ...nic, mac: 'fa:00:00:00:00:02', uuid: 'nic2' } }, h)).body.success, false);
  let vm1 = (await call(agent, '/simulator/vms', { hostUuid: 'h1' })).body.vms.find((v: { uuid: string }) => v.uuid === 'vm1');
  t.same(
    vm1.dataVolumes.map((v: { volumeUuid: string }) => v.volumeUuid),
    ['data1'],
  );
  t.same(
    vm1.nics.map((n: { mac: string }) => n.mac),
    ['fa:00:00:00:00:01'],
  );

  t.equal((await call(agent, '/vm/detachdatavolume', { vmInstanceUuid: 'vm1', volume: vol }, h)).body.success, true);
  t.equal((await call(agent, '/vm/detachdatavolume', { vmInstanceUuid: 'vm1', volume: vol }, h)).body.success, true, 'detaching twice is fine');
  t.equal((await call(agent, '/vm/detachnic', { vmUuid: 'vm1', nic }, h)).body.success, true);
  t.equal((await call(agent, '/vm/detachnic', { vmUuid: 'ghost', nic }, h)).body.success, false);
  vm1 = (await call(agent, '/simulator/vms', { hostUuid: 'h1' })).body.vms.find((v: { uuid: string }) => v.uuid === 'vm1');
  t.same([vm1.dataVolumes, vm1.nics], [[], []]);

  t.equal((await call(agent, '/vm/destroy', { uuid: 'vm1' }, h)).body.success, true);
  t.equal((await call(agent, '/vm/destroy', { uuid: 'vm1' }, h)).body.success, true, 'destroying an absent VM succeeds');
  const left = (await call(agent, '/simulator/vms', { hostUuid: 'h1' })).body;
  t.same(
    left.vms.map((v: { uuid: string; state: string }) => [v.uuid, v.state]),
    [['vm2', 'Stopped']],
  );
  t.equal(left.connected, true);

  t.equal((await call(agent, '/vm/start', startCmd('vm2'), h)).body.success, true, 'a stopped VM starts again');
  t.same((await call(agent, '/vm/vmsync', {}, h)).body.states, { vm2: 'Running' });
});

t.test('the simulator can change VM state behind the management server', async (t) => {
  const agent = await start({ kind: 'simulator' });
  t.teardown(() => agent.close());
  const h = { target: 'h1' };
  await call(agent, '/host/connect', { hostUuid: 'h1' });
  await call(agent, '/vm/start', startCmd('vm1'), h);
  await call(agent, '/vm/start', startCmd('vm2'), h);
  t.equal((await call(agent, '/simulator/vms/update', { hostUuid: 'h1', vmUuid: 'vm1', state: 'Paused' })).body.success, true);
  t.equal((await call(agent, '/simulator/vms/update', { hostUuid: 'h1', vmUuid: 'vm2', state: 'Absent' })).body.success, true);
  t.same((await call(agent, '/vm/vmsync', {}, h)).body.states, { vm1: 'Paused' });
  t.equal((await call(agent, '/vm/start', startCmd('vm1'), h)).body.success, true, 'start resumes a paused VM');
  t.same((await call(agent, '/vm/checkstate', { vmUuids: ['vm1'] }, h)).body.states, { vm1: 'Running' });
  t.equal((await call(agent, '/simulator/vms/update', { hostUuid: 'h1', vmUuid: 'nope', state: 'Running' })).body.success, false);
  t.equal((await call(agent, '/simulator/vms', { hostUuid: 'unknown' })).body.success, false);
});

t.test('migration moves the VM to the destination simulated host', async (t) => {
  const agent = await start({ kind: 'simulator' });
  t.teardown(() => agent.close());
  await call(agent, '/host/connect', { hostUuid: 'src' });
  await call(agent, '/host/connect', { hostUuid: 'dst' });
  await call(agent, '/vm/start', startCmd('vm1'), { target: 'src' });

  const noDest = await call(agent, '/vm/migrate', { vmUuid: 'vm1', destHostIp: '10.0.0.2' }, { target: 'src' });
  t.equal(noDest.status, 400);
  t.match(noDest.body.error, /destHostUuid/);
  const unknownDest = await call(agent, '/vm/migrate', { vmUuid: 'vm1', destHostIp: '10.0.0.9', destHostUuid: 'nowhere' }, { target: 'src' });
  t.match(unknownDest.body.error, /not a connected simulated host/);

  await call(agent, '/simulator/hosts/config', { hostUuid: 'dst', connected: false });
  const unreachable = await call(agent, '/vm/migrate', { vmUuid: 'vm1', destHostIp: '10.0.0.2', destHostUuid: 'dst' }, { target: 'src' });
  t.match(unreachable.body.error, /cannot reach destination/);
  await call(agent, '/simulator/hosts/config', { hostUuid: 'dst', connected: true });

  const ok = await call(agent, '/vm/migrate', { vmUuid: 'vm1', destHostIp: '10.0.0.2', srcHostIp: '10.0.0.1', destHostUuid: 'dst' }, { target: 'src' });
  t.equal(ok.body.success, true);
  t.same((await call(agent, '/vm/vmsync', {}, { target: 'src' })).body.states, {});
  t.same((await call(agent, '/vm/vmsync', {}, { target: 'dst' })).body.states, { vm1: 'Running' });
});

t.test('primary storage volumes on a simulated host', async (t) => {
  const agent = await start({ kind: 'simulator' });
  t.teardown(() => agent.close());
  const h = { target: 'h1' };
  await call(agent, '/simulator/hosts/config', { hostUuid: 'h1', primaryStorageCapacity: 100 * GiB });
  t.same((await call(agent, '/primarystorage/capacity', {}, h)).body, { success: true, totalCapacity: 100 * GiB, availableCapacity: 100 * GiB });

  const created = await call(agent, '/primarystorage/volume/create', { installPath: '/ps/v1.qcow2', size: 40 * GiB, imageInstallPath: '/ps/image.qcow2' }, h);
  t.same(created.body, { success: true, installPath: '/ps/v1.qcow2', size: 40 * GiB, totalCapacity: 100 * GiB, availableCapacity: 60 * GiB });
  t.equal((await call(agent, '/primarystorage/volume/create', { installPath: '/ps/v1.qcow2', size: 40 * GiB }, h)).body.success, true, 'idempotent');
  t.equal((await call(agent, '/primarystorage/volume/create', { installPath: '/ps/v1.qcow2', size: 1 }, h)).body.success, false);
  const full = await call(agent, '/primarystorage/volume/create', { installPath: '/ps/v2.qcow2', size: 61 * GiB }, h);
  t.match(full.body.error, /not enough space/);

  const deleted = await call(agent, '/primarystorage/volume/delete', { installPath: '/ps/v1.qcow2' }, h);
  t.same(deleted.body, { success: true, totalCapacity: 100 * GiB, availableCapacity: 100 * GiB });
  t.equal((await call(agent, '/primarystorage/volume/delete', { installPath: '/ps/v1.qcow2' }, h)).body.success, true, 'absent = success');
});

t.test('10,000 VMs on 100 simulated hosts in one process', async (t) => {
  const agent = await start({ kind: 'simulator', recordLimit: 10 });
  t.teardown(() => agent.close());
  const began = Date.now();
  const hosts = Array.from({ length: 100 }, (_, i) => `host-${i}`);
  await Promise.all(hosts.map((h) => call(agent, '/host/connect', { hostUuid: h })));
  const client = fastClient(agent);
  t.teardown(() => client.close());
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < 10_000; i = next++) {
      const res = await client.post('/vm/start', startCmd(`vm-${i}`), hosts[i % 100]);
      if (!res.body.success) throw new Error(res.body.error);
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
  const states = (await call(agent, '/vm/vmsync', {}, { target: 'host-7' })).body.states;
  t.equal(Object.keys(states).length, 100);
  const used = (await call(agent, '/host/capacity', {}, { target: 'host-7' })).body.usedMemory;
  t.equal(used, 100 * GiB);
  t.equal(agent.simulator?.hosts?.vnc.portOf('vm-7'), undefined, 'no VNC listener until asked');
  t.comment(`10,000 VM starts took ${Date.now() - began} ms`);
});

t.test('security group rule sets per VM NIC: apply, delete chain, refresh, gone with the VM or NIC', async (t) => {
  const agent = await start({ kind: 'simulator' });
  t.teardown(() => agent.close());
  const h = { target: 'h1' };
  await call(agent, '/host/connect', { hostUuid: 'h1' });
  const nic = (uuid: string, deviceId: number) => ({ uuid, mac: `fa:00:00:00:00:0${deviceId}`, deviceId });
  await call(agent, '/vm/start', startCmd('vm1', { nics: [nic('n1', 1), nic('n2', 2)] }), h);
  const rule = { type: 'Ingress', protocol: 'TCP', startPort: 22, endPort: 22, allowedCidr: '0.0.0.0/0' };
  const set = (vmNicUuid: string, rules = [rule]) => ({ vmNicUuid, actionCode: 'applyRule', rules });
  const applied = async () => (await call(agent, '/simulator/hosts/securitygroup', { hostUuid: 'h1' })).body.ruleSets;

  t.equal((await call(agent, '/securitygroup/applyrules', { ruleTOs: [set('n1'), set('n2')] }, h)).body.success, true);
  t.same(
    (await applied()).map((r: { vmNicUuid: string }) => r.vmNicUuid),
    ['n1', 'n2'],
  );
  await call(agent, '/securitygroup/applyrules', { ruleTOs: [set('n1', []), { vmNicUuid: 'n2', actionCode: 'deleteChain', rules: [] }] }, h);
  t.same(await applied(), [set('n1', [])], "a rule set replaces the NIC's; deleteChain removes it");
  const bad = await call(agent, '/securitygroup/applyrules', { ruleTOs: [{ vmNicUuid: 'n1', actionCode: 'drop', rules: [] }] }, h);
  t.equal(bad.status, 400, 'an unknown action code is refused by the schema');

  await call(agent, '/securitygroup/refreshrulesonhost', { ruleTOs: [set('n2')] }, h);
  t.same(await applied(), [set('n2')], 'refresh replaces the whole table');
  await call(agent, '/vm/detachnic', { vmUuid: 'vm1', nic: nic('n2', 2) }, h);
  t.same(await applied(), [], 'a detached NIC loses its chain');
  await call(agent, '/securitygroup/applyrules', { ruleTOs: [set('n1')] }, h);
  await call(agent, '/vm/destroy', { uuid: 'vm1' }, h);
  t.same(await applied(), [], 'so do the NICs of a destroyed VM');
  const records = (await call(agent, '/simulator/hosts/records', { hostUuid: 'h1' })).body.records;
  t.ok(
    records.some((r: { path: string }) => r.path === '/securitygroup/refreshrulesonhost'),
    'commands are recorded',
  );
});

// The whole path to a real VM through the management server: AddKVMHost over SSH (as root, to this machine) deploys
// the kvm agent with the libvirt backend, an SFTP backup storage takes the tryout image by file:// URL, an L2NoVlan
// network on a veth interface (its bridge made by the agent) with a Flat-DHCP L3, CreateVmInstance boots the image:
// its serial console shows the DHCP lease of the address the server allocated; StopVmInstance is an ACPI shutdown.
// Run by real-vms.test.ts.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Test } from 'tap';
import { freePort, startSshd } from '../lib/sshd.js';
import { startServer } from '../lib/harness.js';
import { FlatDhcpServer, deleteBridge } from '../../agents/src/network/host-network.js';
import { consoleText, tryoutImage, waitConsole } from '../lib/realvm.js';

const sh = promisify(execFile);

/** AddKVMHost (libvirt) → CreateVmInstance boots the tryout image with the allocated address */
export async function serverSuite(t: Test): Promise<void> {
  const tag = randomBytes(3).toString('hex');
  const phys = `zsrp${tag}`;
  const bridgeName = `br_${phys}`;
  const net = `10.${150 + (parseInt(tag.slice(0, 2), 16) % 40)}.${parseInt(tag.slice(2, 4), 16)}`;
  const kvmRoot = mkdtemp();
  const image = await tryoutImage();
  const sshd = await startSshd({ rootByKey: true });
  const s = await startServer();
  let vmUuid = '';
  let l3Uuid = '';
  t.teardown(async () => {
    await s.close();
    try {
      process.kill(Number(readFileSync(join(kvmRoot, 'run', 'agent.pid'), 'utf8')), 'SIGTERM'); // the root agent we deployed
    } catch {
      /* not started */
    }
    await sshd.stop();
    if (vmUuid) await sh('virsh', ['destroy', vmUuid]).catch(() => undefined);
    if (l3Uuid) await new FlatDhcpServer({ l3NetworkUuid: l3Uuid, bridgeName, serverIp: `${net}.1`, prefixLength: 24 }).destroy().catch(() => undefined);
    await deleteBridge({ bridgeName }).catch(() => undefined);
    await sh('ip', ['link', 'del', phys]).catch(() => undefined);
    rmSync(kvmRoot, { recursive: true, force: true });
  });
  // The L2's "physical" interface: one end of a veth pair, so the bridge reaches no real network.
  await sh('ip', ['link', 'add', phys, 'type', 'veth', 'peer', 'name', `zsrq${tag}`]);

  const zs = s.client;
  const setting = (category: string, name: string, value: string) => zs.updateGlobalConfig({ category, name, value });
  await setting('kvm', 'agent.installRoot', kvmRoot);
  await setting('kvm', 'agent.port', String(await freePort()));
  await setting('kvm', 'agent.backend', 'libvirt');
  await setting('sftpBackupStorage', 'agent.installRoot', join(sshd.home, 'bs-agent'));
  await setting('sftpBackupStorage', 'agent.port', String(await freePort()));

  const { inventory: zone } = await zs.createZone({ name: 'real' });
  const { inventory: cluster } = await zs.createCluster({ zoneUuid: zone.uuid, name: 'kvm', hypervisorType: 'KVM' });
  const { inventory: host } = await zs.addKVMHost({
    name: 'this-machine', managementIp: sshd.host, username: 'root', sshKey: sshd.privateKey, sshPort: sshd.port, clusterUuid: cluster.uuid,
  } as never);
  t.match(host, { status: 'Connected' }, 'the kvm agent deployed as root over SSH');

  const { inventory: bs } = await zs.addSftpBackupStorage({ name: 'bs', hostname: sshd.host, username: sshd.username, password: sshd.password, sshPort: sshd.port, url: join(sshd.home, 'bs') });
  await zs.attachBackupStorageToZone({ zoneUuid: zone.uuid, backupStorageUuid: bs.uuid });
  const imageFile = join(sshd.home, 'tryout.qcow2'); // where the backup storage agent (the test user) can read it
  copyFileSync(image, imageFile);
  chmodSync(imageFile, 0o644);
  const { inventory: img } = await zs.addImage({ name: 'tryout', url: `file://${imageFile}`, format: 'qcow2', platform: 'Linux', backupStorageUuids: [bs.uuid] } as never);
  t.equal(img.status, 'Ready');

  const { inventory: ps } = await zs.addLocalPrimaryStorage({ name: 'local', zoneUuid: zone.uuid, url: join(kvmRoot, 'ps') });
  await zs.attachPrimaryStorageToCluster({ clusterUuid: cluster.uuid, primaryStorageUuid: ps.uuid });
  const { inventory: offering } = await zs.createInstanceOffering({ name: 'tiny', cpuNum: 1, memorySize: 128 * 2 ** 20 });
  const { inventory: l2 } = await zs.createL2NoVlanNetwork({ name: 'l2', zoneUuid: zone.uuid, physicalInterface: phys });
  await zs.attachL2NetworkToCluster({ l2NetworkUuid: l2.uuid, clusterUuid: cluster.uuid });
  const { inventory: l3 } = await zs.createL3Network({ name: 'flat', l2NetworkUuid: l2.uuid });
  l3Uuid = l3.uuid;
  await zs.addIpRange({ l3NetworkUuid: l3.uuid, name: 'r', startIp: `${net}.10`, endIp: `${net}.20`, netmask: '255.255.255.0', gateway: `${net}.1` });
  const flat = (await zs.queryNetworkServiceProvider({ q: ['type=Flat'] })).inventories![0];
  await zs.attachNetworkServiceToL3Network({ l3NetworkUuid: l3.uuid, networkServices: { [flat.uuid]: ['DHCP'] } });

  const started = Date.now();
  const { inventory: vm } = await zs.createVmInstance({ name: 'real-vm', instanceOfferingUuid: offering.uuid, imageUuid: img.uuid, l3NetworkUuids: [l3.uuid] } as never);
  vmUuid = vm.uuid;
  t.match(vm, { state: 'Running', hostUuid: host.uuid });
  const nic = vm.vmNics[0];
  const log = `/var/log/zstack-ts/console/${vm.uuid}.log`;
  const lease = await waitConsole(log, new RegExp(`lease eth0 ${nic.mac} (\\S+)/`), 180_000);
  t.equal(lease[1], nic.ip, 'the guest leased the address the server allocated');
  t.comment(`CreateVmInstance to DHCP lease: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  t.match(consoleText(log), /zstack-tryout: booted/);

  const from = consoleText(log).length;
  const { inventory: stopped } = await zs.stopVmInstance({ uuid: vm.uuid });
  t.equal(stopped.state, 'Stopped');
  t.match(consoleText(log).slice(from), /zstack-tryout: poweroff \(acpi\)/, 'StopVmInstance pressed the ACPI power button');
  await zs.destroyVmInstance({ uuid: vm.uuid });
}

function mkdtemp(): string {
  const dir = mkdtempSync('/var/tmp/zstack-realvm-srv-');
  chmodSync(dir, 0o755); // QEMU (libvirt-qemu) must reach the volumes inside
  return dir;
}

// The tryout's real mode: a real VM on this machine through a running `npm start` server. AddKVMHost as root over
// SSH to this machine (the kvm agent's libvirt backend), an SFTP backup storage on it holding the tryout image
// (agents/scripts/build-tryout-image.sh), local primary storage, an L2NoVlan network on a dummy (or veth) interface (its
// bridge reaches no real network), an L3 with the Flat provider's DHCP, and CreateVmInstance. It prints the VM's
// address (once the guest leased it from our DHCP), the command reaching it from the L3's DHCP namespace and the
// noVNC console URL. Run as root on Debian 12 with the packages of README "Real VMs" installed:
//   npx tsx examples/tryout-real.ts --ssh-password <root's password>
// Options: --interface (default zstryout0), --network (a /24 prefix, default 10.77.0). Running it again reuses what
// exists. test/realvm/server-suite.ts runs realTryout() below.
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { FlatDhcpServer } from '../agents/src/network/host-network.js';
import { ZStackClient } from '../sdk/src/index.js';

const sh = promisify(execFile);

export interface RealTryoutOptions {
  /** SSH login of this machine for AddKVMHost (root: the agent runs VMs). */
  host: { managementIp: string; username: string; password?: string; sshKey?: string; sshPort?: number };
  /** SSH login and directory of the SFTP backup storage (a password: AddSftpBackupStorage takes no key). */
  backupStorage: { hostname: string; username: string; password: string; sshPort?: number; url: string };
  /** file:// URL of the tryout image, readable by the backup storage's user. */
  imageUrl: string;
  /** Directory of the local primary storage; QEMU (libvirt-qemu) must reach it. */
  primaryStorageUrl: string;
  /** The L2's physical interface (the agent puts it on the bridge br_<interface>). */
  physicalInterface: string;
  /** The L3's /24, as its first three octets: the gateway (the DHCP namespace) is .1, VMs get .10–.20. */
  network: string;
}

export interface RealTryout {
  zoneUuid: string;
  clusterUuid: string;
  hostUuid: string;
  imageUuid: string;
  instanceOfferingUuid: string;
  l3NetworkUuid: string;
  vm: { uuid: string; state: string; hostUuid?: string; vmNics: Array<{ ip: string; mac: string }> };
  /** The Flat DHCP namespace of the L3 (`zsdhcp-…`): it holds the gateway address and reaches the VM. */
  namespace: string;
}

const NAME = 'tryout-real';

/** Creates (or finds, by name) everything a real VM needs and a running VM on it. */
export async function realTryout(zs: ZStackClient, o: RealTryoutOptions, log: (line: string) => void = () => undefined): Promise<RealTryout> {
  await zs.updateGlobalConfig({ category: 'kvm', name: 'agent.backend', value: 'libvirt' });
  const first = async <T>(found: Promise<{ inventories?: T[] }>): Promise<T | undefined> => (await found).inventories?.[0];
  const byName = [`name=${NAME}`];

  const zone = (await first(zs.queryZone({ q: byName }))) ?? (await zs.createZone({ name: NAME })).inventory;
  const cluster =
    (await first(zs.queryCluster({ q: [...byName, `zoneUuid=${zone.uuid}`] }))) ??
    (await zs.createCluster({ zoneUuid: zone.uuid, name: NAME, hypervisorType: 'KVM' })).inventory;
  let host = await first(zs.queryHost({ q: [`managementIp=${o.host.managementIp}`] }));
  if (!host) {
    log(`adding this machine as a KVM host (the agent is deployed as ${o.host.username} over SSH)…`);
    host = (await zs.addKVMHost({ name: NAME, clusterUuid: cluster.uuid, ...o.host } as never)).inventory;
  }
  log(`host ${host.uuid} is ${host.status}`);

  let bs = await first(zs.queryBackupStorage({ q: byName }));
  if (!bs) bs = (await zs.addSftpBackupStorage({ name: NAME, ...o.backupStorage })).inventory;
  if (!bs.attachedZoneUuids.includes(zone.uuid)) await zs.attachBackupStorageToZone({ zoneUuid: zone.uuid, backupStorageUuid: bs.uuid });
  const image =
    (await first(zs.queryImage({ q: [...byName, 'status=Ready'] }))) ??
    (await zs.addImage({ name: NAME, url: o.imageUrl, format: 'qcow2', platform: 'Linux', backupStorageUuids: [bs.uuid] } as never)).inventory;
  log(`image ${image.uuid} is ${image.status} on backup storage ${bs.uuid}`);

  let ps = await first(zs.queryPrimaryStorage({ q: [...byName, `zoneUuid=${zone.uuid}`] }));
  if (!ps) ps = (await zs.addLocalPrimaryStorage({ name: NAME, zoneUuid: zone.uuid, url: o.primaryStorageUrl })).inventory;
  if (!ps.attachedClusterUuids.includes(cluster.uuid)) await zs.attachPrimaryStorageToCluster({ clusterUuid: cluster.uuid, primaryStorageUuid: ps.uuid });
  const offering =
    (await first(zs.queryInstanceOffering({ q: byName }))) ?? (await zs.createInstanceOffering({ name: NAME, cpuNum: 1, memorySize: 128 * 2 ** 20 })).inventory;

  let l2 = await first(zs.queryL2Network({ q: [...byName, `zoneUuid=${zone.uuid}`] }));
  if (!l2) l2 = (await zs.createL2NoVlanNetwork({ name: NAME, zoneUuid: zone.uuid, physicalInterface: o.physicalInterface })).inventory;
  if (!l2.attachedClusterUuids.includes(cluster.uuid)) await zs.attachL2NetworkToCluster({ l2NetworkUuid: l2.uuid, clusterUuid: cluster.uuid });
  let l3 = await first(zs.queryL3Network({ q: [...byName, `l2NetworkUuid=${l2.uuid}`] }));
  if (!l3) {
    l3 = (await zs.createL3Network({ name: NAME, l2NetworkUuid: l2.uuid })).inventory;
    const gateway = `${o.network}.1`;
    await zs.addIpRange({ l3NetworkUuid: l3.uuid, name: NAME, startIp: `${o.network}.10`, endIp: `${o.network}.20`, netmask: '255.255.255.0', gateway });
    const flat = (await zs.queryNetworkServiceProvider({ q: ['type=Flat'] })).inventories![0];
    await zs.attachNetworkServiceToL3Network({ l3NetworkUuid: l3.uuid, networkServices: { [flat.uuid]: ['DHCP'] } });
  }
  log(`L3 network ${l3.uuid} (${o.network}.0/24 on ${l2.physicalInterface}) has the Flat provider's DHCP`);

  let vm = await first(zs.queryVmInstance({ q: [...byName, 'state!=Destroyed'] }));
  if (!vm) {
    log('creating the VM (booting takes ~10 s with KVM, longer under TCG emulation)…');
    vm = (await zs.createVmInstance({ name: NAME, instanceOfferingUuid: offering.uuid, imageUuid: image.uuid, l3NetworkUuids: [l3.uuid] } as never)).inventory;
  } else if (vm.state === 'Stopped') {
    vm = (await zs.startVmInstance({ uuid: vm.uuid })).inventory;
  }
  const { namespace } = new FlatDhcpServer({
    l3NetworkUuid: l3.uuid,
    bridgeName: `br_${l2.physicalInterface}`,
    serverIp: `${o.network}.1`,
    prefixLength: 24,
  });
  return {
    zoneUuid: zone.uuid,
    clusterUuid: cluster.uuid,
    hostUuid: host.uuid,
    imageUuid: image.uuid,
    instanceOfferingUuid: offering.uuid,
    l3NetworkUuid: l3.uuid,
    vm,
    namespace,
  };
}

/** The noVNC page of a RequestConsoleAccess answer (its ready `url`, titled), or built from its fields. */
export function consoleUrl(endpoint: string, access: { token: string; hostname: string; port: number; url?: string }, title: string): string {
  const base = access.url ?? `${endpoint}/zstack/console?token=${access.token}&host=${access.hostname}&port=${access.port}`;
  return `${base}&title=${encodeURIComponent(title)}`;
}

/** Where the kvm agent logs a VM's serial console (the tryout image prints its DHCP lease there). */
export const consoleLog = (vmUuid: string) => `/var/log/zstack-ts/console/${vmUuid}.log`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'ssh-password': { type: 'string' },
      'ssh-port': { type: 'string', default: '22' },
      interface: { type: 'string', default: 'zstryout0' },
      network: { type: 'string', default: '10.77.0' },
    },
  });
  const password = values['ssh-password'];
  if (!password) {
    console.error("usage: npx tsx examples/tryout-real.ts --ssh-password <root's password> [--ssh-port 22] [--interface zstryout0] [--network 10.77.0]");
    process.exit(2);
  }
  const endpoint = process.env.ZSTACK_ENDPOINT ?? 'http://127.0.0.1:8080';
  const zs = new ZStackClient({ endpoint, accountName: process.env.ZSTACK_ACCOUNT_NAME ?? 'admin', password: process.env.ZSTACK_PASSWORD ?? 'password' });
  const say = (line: string) => console.log('•', line);

  const script = join(dirname(fileURLToPath(import.meta.url)), '..', 'agents', 'scripts', 'build-tryout-image.sh');
  say('building (or finding) the tryout image…');
  const image = (await sh(script, [], { maxBuffer: 1 << 20 })).stdout.trim();
  // A dummy interface as the L2's "physical" one (a veth pair where the kernel has no dummy module, as in many
  // containers): the bridge and the VM reach no real network.
  const physical = values.interface!;
  await sh('ip', ['link', 'show', physical]).catch(() =>
    sh('ip', ['link', 'add', physical, 'type', 'dummy']).catch(() => sh('ip', ['link', 'add', physical, 'type', 'veth', 'peer', 'name', `${physical}p`])),
  );
  const dir = '/var/lib/zstack-ts/tryout-real';
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const root = { username: 'root', password, sshPort: Number(values['ssh-port']) };
  const r = await realTryout(
    zs,
    {
      host: { managementIp: '127.0.0.1', ...root },
      backupStorage: { hostname: '127.0.0.1', ...root, url: join(dir, 'bs') },
      imageUrl: `file://${image}`,
      primaryStorageUrl: join(dir, 'ps'),
      physicalInterface: values.interface!,
      network: values.network!,
    },
    say,
  );
  const nic = r.vm.vmNics[0];
  say(`VM ${r.vm.uuid} is ${r.vm.state} with IP ${nic.ip}; waiting for its DHCP lease on the serial console…`);
  const lease = new RegExp(`lease eth0 ${nic.mac} ${nic.ip.replace(/\./g, '\\.')}/`);
  for (let i = 0; i < 360 && !lease.test(readConsole(r.vm.uuid)); i++) await new Promise((ok) => setTimeout(ok, 500));
  say(lease.test(readConsole(r.vm.uuid)) ? `the guest leased ${nic.ip} from our DHCP` : `no lease seen yet: see ${consoleLog(r.vm.uuid)}`);
  say(`reach it from its L3's DHCP namespace: ip netns exec ${r.namespace} busybox ping -c 3 ${nic.ip}`);
  const { inventory: access } = await zs.requestConsoleAccess({ vmInstanceUuid: r.vm.uuid });
  say(`its console (root, no password) in the noVNC page: ${consoleUrl(endpoint, access, NAME)}`);
  say(`serial console log: ${consoleLog(r.vm.uuid)}`);
}

function readConsole(vmUuid: string): string {
  try {
    return readFileSync(consoleLog(vmUuid), 'utf8');
  } catch {
    return '';
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) await main();

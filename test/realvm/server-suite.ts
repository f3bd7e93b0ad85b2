// The whole path to a real VM through the management server: AddKVMHost over SSH (as root, to this machine) deploys
// the kvm agent with the libvirt backend, an SFTP backup storage takes the tryout image by file:// URL, an L2NoVlan
// network on a veth interface (its bridge made by the agent) with a Flat-DHCP L3, CreateVmInstance boots the image:
// its serial console shows the DHCP lease of the address the server allocated; its console in the noVNC page shows
// text; StopVmInstance is an ACPI shutdown. Then the release notes' §9 on real networks: a VM on an L3 served by the
// VirtualRouter provider (the router: a namespace with a public NIC, SNAT to a namespace standing for the internet)
// leases from the router and reaches the public side; the L3 moves to the Flat provider as §9 prints it (detach the
// router's services, attach Flat to the L2 and L3, delete the router, reconnect the host): the guest renews and
// keeps its address, now from the Flat namespace. Run by real-vms.test.ts.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Test } from 'tap';
import { freePort, startSshd } from '../lib/sshd.js';
import { startServer } from '../lib/harness.js';
import { FlatDhcpServer, deleteBridge, ensureAddress, ensureBridge, ensureNamespace, ensureVeth } from '../../agents/src/network/host-network.js';
import { RouterNamespace } from '../../agents/src/network/router-namespace.js';
import { SerialShell, consoleText, qemuRss, tryoutImage, waitConsole } from '../lib/realvm.js';
import { checkConsoleScreen, chromiumMissing } from './console-screen.js';
import { consoleLog, consoleUrl, realTryout } from '../../examples/tryout-real.js';

const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');

const sh = promisify(execFile);

/** AddKVMHost (libvirt) → CreateVmInstance boots the tryout image with the allocated address */
export async function serverSuite(t: Test): Promise<void> {
  const tag = randomBytes(3).toString('hex');
  const phys = `zsrp${tag}`;
  const bridgeName = `br_${phys}`;
  const net = `10.${150 + (parseInt(tag.slice(0, 2), 16) % 40)}.${parseInt(tag.slice(2, 4), 16)}`;
  // §9's networks: the router's guest L3 and its public L3 (whose gateway lives in the "internet" namespace).
  const guestPhys = `zsrg${tag}`;
  const publicPhys = `zsru${tag}`;
  const internet = `zsinet-${tag}`;
  const guest = `10.${190 + (parseInt(tag.slice(0, 2), 16) % 40)}.${parseInt(tag.slice(4, 6), 16)}`;
  const pub = `10.${230 + (parseInt(tag.slice(2, 4), 16) % 20)}.${parseInt(tag.slice(4, 6), 16)}`;
  const cleanups: Array<() => Promise<unknown>> = [];
  const kvmRoot = mkdtemp();
  const image = await tryoutImage();
  const sshd = await startSshd({ rootByKey: true });
  const s = await startServer();
  let vmUuid = '';
  let l3Uuid = '';
  t.teardown(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
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

  // The README's real tryout, step for step (examples/tryout-real.ts), with the test's sshd, veth and addresses.
  const imageFile = join(sshd.home, 'tryout.qcow2'); // where the backup storage agent (the test user) can read it
  copyFileSync(image, imageFile);
  chmodSync(imageFile, 0o644);
  const started = Date.now();
  const tryoutOptions = {
    host: { managementIp: sshd.host, username: 'root', sshKey: sshd.privateKey, sshPort: sshd.port },
    backupStorage: { hostname: sshd.host, username: sshd.username, password: sshd.password, sshPort: sshd.port, url: join(sshd.home, 'bs') },
    imageUrl: `file://${imageFile}`,
    primaryStorageUrl: join(kvmRoot, 'ps'),
    physicalInterface: phys,
    network: net,
  };
  const tryout = await realTryout(zs, tryoutOptions);
  l3Uuid = tryout.l3NetworkUuid;
  const zone = { uuid: tryout.zoneUuid };
  const cluster = { uuid: tryout.clusterUuid };
  const offering = { uuid: tryout.instanceOfferingUuid };
  const img = (await zs.queryImage({ q: [`uuid=${tryout.imageUuid}`] })).inventories![0];
  const host = (await zs.queryHost({ q: [`uuid=${tryout.hostUuid}`] })).inventories![0];
  t.match(host, { status: 'Connected' }, 'the kvm agent deployed as root over SSH');
  const deployLog = (await zs.queryHostDeployLog({ q: [`resourceUuid=${host.uuid}`, 'task=check-runtime'] })).inventories as Array<{
    status: string;
    details?: string;
  }>;
  t.match(
    deployLog.find((l) => l.status !== 'start'),
    { status: 'skip', details: /packages present: qemu-system-x86 .*dnsmasq-base/ },
    "the deployer checked a libvirt host's packages (all present here: nothing installed)",
  );
  t.equal(img.status, 'Ready');

  const vm = tryout.vm;
  vmUuid = vm.uuid;
  t.match(vm, { state: 'Running', hostUuid: host.uuid });
  const again = await realTryout(zs, tryoutOptions);
  t.same(
    [again.vm.uuid, again.hostUuid, again.imageUuid, again.l3NetworkUuid],
    [vm.uuid, host.uuid, img.uuid, tryout.l3NetworkUuid],
    'run again, the tryout reuses what exists',
  );
  const nic = vm.vmNics[0];
  const log = consoleLog(vm.uuid);
  const lease = await waitConsole(log, new RegExp(`lease eth0 ${nic.mac} (\\S+)/`), 180_000);
  t.equal(lease[1], nic.ip, 'the guest leased the address the server allocated');
  t.comment(`the tryout's steps (AddKVMHost … CreateVmInstance) to DHCP lease: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const ping = await sh('ip', ['netns', 'exec', tryout.namespace, 'busybox', 'ping', '-c', '1', '-W', '5', nic.ip]).catch((e: { stdout?: string }) => e);
  t.match(ping, { stdout: / 0% packet loss/ }, "the VM answers from its L3's DHCP namespace (the tryout prints this command)");
  t.match(consoleText(log), /zstack-tryout: booted/);

  await t.test("RequestConsoleAccess: the noVNC page shows the VM's screen", { skip: chromiumMissing }, async (t) => {
    await waitConsole(log, /login:/, 60_000);
    const { inventory: c } = await zs.requestConsoleAccess({ vmInstanceUuid: vm.uuid });
    await checkConsoleScreen(t, consoleUrl(s.url, c, 'real-vm'), join(ARTIFACTS, 'console-real-vm.png'));
  });

  const from = consoleText(log).length;
  const { inventory: stopped } = await zs.stopVmInstance({ uuid: vm.uuid });
  t.equal(stopped.state, 'Stopped');
  t.match(consoleText(log).slice(from), /zstack-tryout: poweroff \(acpi\)/, 'StopVmInstance pressed the ACPI power button');
  await zs.destroyVmInstance({ uuid: vm.uuid });
  vmUuid = '';

  await t.test('§9 on real networks: from the virtual router to the Flat provider', async (t) => {
    // The L2s' "physical" interfaces: veth ends going nowhere; the public bridge also holds the internet namespace.
    for (const phys of [guestPhys, publicPhys]) {
      await sh('ip', ['link', 'add', phys, 'type', 'veth', 'peer', 'name', `${phys}p`]);
      cleanups.push(
        () => deleteBridge({ bridgeName: `br_${phys}` }),
        () => sh('ip', ['link', 'del', phys]),
      );
    }
    await ensureBridge({ bridgeName: `br_${publicPhys}`, physicalInterface: publicPhys });
    await ensureNamespace(internet);
    cleanups.push(
      () => sh('ip', ['netns', 'del', internet]),
      () => sh('ip', ['link', 'del', `zsiq${tag}`]),
    );
    await ensureVeth({ hostEnd: `zsiq${tag}`, nsEnd: 'eth0', namespace: internet, bridgeName: `br_${publicPhys}` });
    await ensureAddress(internet, 'eth0', `${pub}.1/24`);

    const network = async (name: string, phys: string, prefix: string) => {
      const { inventory: l2 } = await zs.createL2NoVlanNetwork({ name: `l2-${name}`, zoneUuid: zone.uuid, physicalInterface: phys });
      await zs.attachL2NetworkToCluster({ l2NetworkUuid: l2.uuid, clusterUuid: cluster.uuid });
      const { inventory: l3 } = await zs.createL3Network({ name, l2NetworkUuid: l2.uuid });
      await zs.addIpRange({
        l3NetworkUuid: l3.uuid,
        name: 'r',
        startIp: `${prefix}.10`,
        endIp: `${prefix}.20`,
        netmask: '255.255.255.0',
        gateway: `${prefix}.1`,
      });
      return { l2, l3 };
    };
    const publicNet = await network('public', publicPhys, pub);
    const guestNet = await network('l3-vr', guestPhys, guest);
    await zs.addDnsToL3Network({ l3NetworkUuid: guestNet.l3.uuid, dns: `${pub}.1` });
    cleanups.push(() =>
      new FlatDhcpServer({ l3NetworkUuid: guestNet.l3.uuid, bridgeName: `br_${guestPhys}`, serverIp: `${guest}.1`, prefixLength: 24 }).destroy(),
    );
    const vrProvider = (await zs.queryNetworkServiceProvider({ q: ['type=VirtualRouter'] })).inventories![0];
    await zs.attachNetworkServiceProviderToL2Network({ l2NetworkUuid: guestNet.l2.uuid, networkServiceProviderUuid: vrProvider.uuid });
    await zs.attachNetworkServiceToL3Network({ l3NetworkUuid: guestNet.l3.uuid, networkServices: { [vrProvider.uuid]: ['DHCP', 'DNS'] } });
    await zs.createVirtualRouterOffering({
      name: 'vr',
      cpuNum: 1,
      memorySize: 128 * 2 ** 20,
      zoneUuid: zone.uuid,
      imageUuid: img.uuid,
      managementNetworkUuid: publicNet.l3.uuid,
      publicNetworkUuid: publicNet.l3.uuid,
      isDefault: true,
    } as never);

    const started = Date.now();
    const { inventory: vm2 } = await zs.createVmInstance({
      name: 'vm-on-vr',
      instanceOfferingUuid: offering.uuid,
      imageUuid: img.uuid,
      l3NetworkUuids: [guestNet.l3.uuid],
    } as never);
    vmUuid = vm2.uuid;
    const router = (await zs.queryVirtualRouterVm({})).inventories![0];
    cleanups.push(() => new RouterNamespace(router.uuid).destroy());
    t.match(router, { state: 'Running', status: 'Connected', hostUuid: host.uuid }, 'the virtual router runs on the host (as a namespace)');
    t.equal(await new RouterNamespace(router.uuid).exists(), true);
    const routerGuestIp = router.vmNics.find((n: { l3NetworkUuid: string }) => n.l3NetworkUuid === guestNet.l3.uuid)!.ip;
    t.equal(routerGuestIp, `${guest}.1`, "the router holds the guest L3's gateway");

    const nic2 = vm2.vmNics[0];
    const log2 = `/var/log/zstack-ts/console/${vm2.uuid}.log`;
    const lease = await waitConsole(log2, new RegExp(`lease eth0 ${nic2.mac} (\\S+)/\\S+ router (\\S+)`), 180_000);
    t.equal(lease[1], nic2.ip, 'the guest leased its allocated address from the router');
    t.equal(lease[2], `${guest}.1`, 'the router is its gateway');
    t.comment(
      `CreateVmInstance (with a new virtual router) to lease: ${((Date.now() - started) / 1000).toFixed(1)} s; QEMU RSS ${((qemuRss(vm2.uuid) ?? 0) / 2 ** 20).toFixed(0)} MiB`,
    );
    await waitConsole(log2, /login:/, 60_000);
    const shell = await SerialShell.login(vm2.uuid, log2);
    t.teardown(() => shell.close());
    const ping = await shell.run(`ping -c 2 -W 3 ${pub}.1`);
    t.equal(ping.code, 0, `the guest reaches the public side through the router's SNAT:\n${ping.output}`);

    // §9 steps 1-2: detach the router's services from the L3.
    await zs.detachNetworkServiceFromL3Network({ l3NetworkUuid: guestNet.l3.uuid, networkServices: { [vrProvider.uuid]: ['DHCP', 'DNS'] } });
    // Steps 3-6: the Flat provider on the L2 and the L3.
    const flat2 = (await zs.queryNetworkServiceProvider({ q: ['type=Flat'] })).inventories![0];
    await zs.attachNetworkServiceProviderToL2Network({ l2NetworkUuid: guestNet.l2.uuid, networkServiceProviderUuid: flat2.uuid });
    await zs.attachNetworkServiceToL3Network({ l3NetworkUuid: guestNet.l3.uuid, networkServices: { [flat2.uuid]: ['DHCP', 'Userdata'] } });
    // Step 7: delete the virtual router: its namespace goes.
    await zs.destroyVmInstance({ uuid: router.uuid });
    t.equal(await new RouterNamespace(router.uuid).exists(), false, "the router's namespace is gone");
    // Step 8: reconnect the host: it serves the L3's DHCP from the Flat namespace now.
    const { inventory: reconnected } = await zs.reconnectHost({ uuid: host.uuid });
    t.equal(reconnected.status, 'Connected');
    const flatDhcp = new FlatDhcpServer({ l3NetworkUuid: guestNet.l3.uuid, bridgeName: `br_${guestPhys}`, serverIp: `${guest}.1`, prefixLength: 24 });
    t.same(
      (await flatDhcp.leases()).map((l) => [l.mac, l.ip]),
      [[nic2.mac, nic2.ip]],
      "the Flat namespace holds the VM's lease",
    );

    // The guest renews (udhcpc: SIGUSR1) and keeps its address, now from the Flat provider.
    const from2 = consoleText(log2).length;
    await shell.run('kill -USR1 $(cat /var/run/udhcpc.eth0.pid)');
    const renewed = await waitConsole(log2, new RegExp(`lease eth0 ${nic2.mac} (\\S+)/`), 60_000, from2);
    t.equal(renewed[1], nic2.ip, 'the renewed lease keeps the address');
    t.match(consoleText(flatDhcp.leaseLog), new RegExp(`DHCPACK\\(\\S+\\) ${nic2.ip.replace(/\./g, '\\.')} ${nic2.mac}`), 'acknowledged by the Flat namespace');
    const { inventory: after } = await zs.stopVmInstance({ uuid: vm2.uuid });
    t.equal(after.state, 'Stopped', 'StopVmInstance (ACPI) after §9');
    await zs.destroyVmInstance({ uuid: vm2.uuid });
    vmUuid = '';
  });
}

function mkdtemp(): string {
  const dir = mkdtempSync('/var/tmp/zstack-realvm-srv-');
  chmodSync(dir, 0o755); // QEMU (libvirt-qemu) must reach the volumes inside
  return dir;
}

// The virtual router on a real host, over the agent protocol: /vm/start of a VirtualRouter appliance makes its
// namespace (a public NIC on the "public" bridge, a guest NIC on the guest bridge); /virtualrouter/* makes it serve:
// a real VM on the guest bridge leases its address from the router's dnsmasq (with the router as gateway), and
// reaches the public side through the router's SNAT (ping from the guest's serial shell to an address that exists
// only in a namespace standing for the internet). Run by real-vms.test.ts.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import { call, start } from '../../agents/test/helpers.js';
import { deleteBridge, ensureAddress, ensureBridge, ensureNamespace, ensureVeth } from '../../agents/src/network/host-network.js';
import { RouterNamespace } from '../../agents/src/network/router-namespace.js';
import { run } from '../../agents/src/lib/exec.js';
import { SerialShell, qemuRss, tryoutImage, waitConsole } from '../lib/realvm.js';

/** a virtual router as a namespace: DHCP from its dnsmasq, SNAT to the public side */
export async function routerSuite(t: Test): Promise<void> {
  const tag = randomBytes(3).toString('hex');
  const hostUuid = `host${tag}`;
  const routerUuid = randomBytes(16).toString('hex');
  const vmUuid = randomBytes(16).toString('hex');
  const dir = mkdtempSync('/var/tmp/zstack-realvm-vr-');
  chmodSync(dir, 0o755);
  const guestBridge = `zsgb${tag}`;
  const publicBridge = `zspb${tag}`;
  const internet = `zsinet-${tag}`; // stands for the world beyond the public network
  const octet = parseInt(tag.slice(0, 2), 16);
  const guest = `10.${100 + (octet % 40)}.${parseInt(tag.slice(2, 4), 16)}`;
  const pub = `10.${140 + (octet % 40)}.${parseInt(tag.slice(4, 6), 16)}`;
  const mac = (last: string) => `52:54:00:${tag.slice(0, 2)}:${tag.slice(2, 4)}:${last}`;
  const [routerPublicMac, routerGuestMac, vmMac] = [mac('a0'), mac('a1'), mac('20')];

  const image = await tryoutImage();
  let agent = await start({ kind: 'kvm', backend: 'libvirt', storageRoot: dir });
  const kvm = (path: string, body: unknown, target = hostUuid, timeoutMs = 120_000) => call(agent, path, body, { target, timeoutMs }).then((r) => r.body);
  const vr = (path: string, body: unknown) => kvm(path, body, routerUuid);
  t.teardown(async () => {
    await kvm('/vm/destroy', { uuid: vmUuid }).catch(() => undefined);
    await kvm('/vm/destroy', { uuid: routerUuid }).catch(() => undefined);
    await agent.close();
    await new RouterNamespace(routerUuid).destroy().catch(() => undefined);
    await run('ip', ['netns', 'del', internet]).catch(() => undefined);
    await run('ip', ['link', 'del', `zsiq${tag}`]).catch(() => undefined);
    for (const bridgeName of [guestBridge, publicBridge]) await deleteBridge({ bridgeName }).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  t.equal((await kvm('/host/connect', { hostUuid })).success, true);
  // The "internet": a namespace on the public bridge holding the public network's gateway address.
  await ensureBridge({ bridgeName: publicBridge });
  await ensureNamespace(internet);
  await ensureVeth({ hostEnd: `zsiq${tag}`, nsEnd: 'eth0', namespace: internet, bridgeName: publicBridge });
  await ensureAddress(internet, 'eth0', `${pub}.1/24`);

  const router = new RouterNamespace(routerUuid);
  const started = await kvm('/vm/start', {
    vmInstanceUuid: routerUuid,
    vmName: 'vr',
    memory: 128 << 20,
    cpuNum: 1,
    applianceVmType: 'VirtualRouter',
    rootVolume: { installPath: join(dir, 'vr-root.qcow2'), deviceId: 0, volumeUuid: `vrroot${tag}` },
    nics: [
      { mac: routerPublicMac, uuid: `vrn0${tag}`, deviceId: 0, bridgeName: publicBridge, metaData: '3' },
      { mac: routerGuestMac, uuid: `vrn1${tag}`, deviceId: 1, bridgeName: guestBridge, metaData: '4' },
    ],
  });
  t.equal(started.success, true, started.error);
  t.same((await kvm('/vm/checkstate', { vmUuids: [routerUuid] })).states, { [routerUuid]: 'Running' }, 'the router namespace counts as a running VM');
  t.equal((await kvm('/vm/vmsync', {})).states?.[routerUuid], 'Running', 'and is listed for reconciliation');

  for (const [path, body] of [
    ['/virtualrouter/init', { uuid: routerUuid }],
    [
      '/virtualrouter/configurenic',
      {
        nics: [
          { mac: routerPublicMac, ip: `${pub}.10`, netmask: '255.255.255.0', gateway: `${pub}.1`, isDefaultRoute: true },
          { mac: routerGuestMac, ip: `${guest}.1`, netmask: '255.255.255.0', gateway: `${guest}.1`, isDefaultRoute: false },
        ],
      },
    ],
    [
      '/virtualrouter/adddhcp',
      {
        dhcpEntries: [
          { ip: `${guest}.10`, mac: vmMac, netmask: '255.255.255.0', gateway: `${guest}.1`, dns: [`${guest}.1`], isDefaultL3Network: true, hostname: 'vm1' },
        ],
        rebuild: true,
      },
    ],
    ['/virtualrouter/setdns', { dns: [{ dnsAddress: `${pub}.1`, nicMac: routerGuestMac }] }],
  ] as const) {
    const reply = await vr(path, body);
    t.equal(reply.success, true, `${path}: ${reply.error ?? 'ok'}`);
  }
  t.same(await router.snatRules(), [{ packets: 0, source: `${guest}.0/24`, toSource: `${pub}.10` }], 'SNAT of the guest network to the public address');
  await run('ip', ['netns', 'exec', router.namespace, 'ping', '-c', '1', '-W', '2', `${pub}.1`]).catch(() =>
    run('ip', ['netns', 'exec', router.namespace, 'busybox', 'ping', '-c', '1', '-W', '2', `${pub}.1`]),
  );
  t.pass('the router reaches the public gateway');
  t.equal(
    (await vr('/virtualrouter/configurenic', { nics: [{ mac: '52:54:00:ff:ff:ff', ip: `${guest}.2`, netmask: '255.255.255.0' }] })).success,
    false,
    'a NIC the router does not have is refused (and not kept)',
  );

  const ps = join(dir, 'ps');
  const root = join(ps, 'rootVolumes', `${vmUuid}.qcow2`);
  t.equal(
    (
      await kvm('/primarystorage/volume/create', {
        installPath: root,
        size: 64 << 20,
        imageInstallPath: join(ps, 'imagecache', 'tryout.qcow2'),
        backupStorageInstallPath: image,
      })
    ).success,
    true,
  );
  const log = `/var/log/zstack-ts/console/${vmUuid}.log`;
  const booted = Date.now();
  const vmStart = await kvm('/vm/start', {
    vmInstanceUuid: vmUuid,
    vmName: 'vm1',
    memory: 128 << 20,
    cpuNum: 1,
    hostManagementIp: '127.0.0.1',
    rootVolume: { installPath: root, deviceId: 0, volumeUuid: `root${tag}` },
    nics: [{ mac: vmMac, uuid: `nic${tag}`, deviceId: 0, bridgeName: guestBridge, ip: `${guest}.10`, netmask: '255.255.255.0', gateway: `${guest}.1` }],
  });
  t.equal(vmStart.success, true, vmStart.error);

  const lease = await waitConsole(log, new RegExp(`lease eth0 ${vmMac} (\\S+)/\\S+ router (\\S+)`), 180_000);
  t.equal(lease[1], `${guest}.10`, "the guest leased its address from the router's dnsmasq");
  t.equal(lease[2], `${guest}.1`, 'with the router as its gateway');
  t.comment(`boot to lease from the router: ${((Date.now() - booted) / 1000).toFixed(1)} s; QEMU RSS ${((qemuRss(vmUuid) ?? 0) / 2 ** 20).toFixed(0)} MiB`);
  t.match(
    readFileSync(router.dnsmasq.log, 'utf8'),
    new RegExp(`DHCPACK\\(eth1\\) ${guest.replace(/\./g, '\\.')}\\.10 ${vmMac}`),
    'dnsmasq in the router namespace acknowledged it',
  );

  await waitConsole(log, /login:/, 60_000);
  const shell = await SerialShell.login(vmUuid, log);
  t.teardown(() => shell.close());
  const ping = await shell.run(`ping -c 2 -W 3 ${pub}.1`);
  t.equal(ping.code, 0, `the guest pings the public side through the router:\n${ping.output}`);
  const [rule] = await router.snatRules();
  t.ok(rule.packets > 0, `the SNAT rule translated its traffic (${rule.packets} packets)`);
  const resolv = await shell.run('cat /etc/resolv.conf');
  t.match(resolv.output, `nameserver ${guest}.1`, 'the router is its DNS server');

  // A restarted agent keeps building on what the router was last told (a change must not drop the other entries).
  await agent.close();
  agent = await start({ kind: 'kvm', backend: 'libvirt', storageRoot: dir });
  t.equal((await vr('/virtualrouter/setdns', { dns: [{ dnsAddress: `${pub}.2`, nicMac: routerGuestMac }] })).success, true);
  const conf = readFileSync(join(router.dir, 'dnsmasq.conf'), 'utf8');
  t.match(conf, `dhcp-host=${vmMac}`, 'after an agent restart the DHCP entries are still served');
  t.match(conf, `server=${pub}.1\nserver=${pub}.2`, 'and the DNS servers told before and after');

  const removed = await vr('/virtualrouter/removedhcp', { dhcpEntries: [{ ip: `${guest}.10`, mac: vmMac }] });
  t.equal(removed.success, true, removed.error);
  t.notMatch(readFileSync(join(router.dir, 'dnsmasq.conf'), 'utf8'), vmMac, 'the removed entry left the DHCP server');

  t.equal((await kvm('/vm/destroy', { uuid: vmUuid })).success, true);
  t.equal((await kvm('/vm/stop', { uuid: routerUuid })).success, true, 'stopping the router removes its namespace');
  t.equal(await router.exists(), false);
  t.notOk((await kvm('/vm/vmsync', {})).states?.[routerUuid], 'no longer listed');
  t.same((await kvm('/vm/checkstate', { vmUuids: [routerUuid] })).states, { [routerUuid]: 'Shutdown' });
}

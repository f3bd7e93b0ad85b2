// A real VM through the kvm agent's libvirt backend, over the agent protocol: the tryout image booted by QEMU
// (TCG here, KVM where the CPU allows), on a Linux bridge whose Flat DHCP server is dnsmasq in a namespace: the
// guest's serial console shows it booted and its lease equals the static lease we gave; the namespace pings it; a
// data volume and a NIC are hot-plugged and unplugged (the guest sees both ways, the new NIC gets its own lease); a
// console-proxy token opens a WebSocket delivering the VM's real framebuffer; /vm/stop is a graceful ACPI
// shutdown. Run by real-vms.test.ts.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Test } from 'tap';
import { call, start } from '../../agents/test/helpers.js';
import { openWs, rfbHandshake } from '../../agents/test/console-proxy-helpers.js';
import { FlatDhcpServer, deleteBridge } from '../../agents/src/network/host-network.js';
import { consoleText, qemuRss, tryoutImage, waitConsole } from '../lib/realvm.js';

const sh = promisify(execFile);

/** a real VM through the kvm agent (libvirt backend) */
export async function agentSuite(t: Test): Promise<void> {
  const tag = randomBytes(3).toString('hex');
  const hostUuid = `host${tag}`;
  const vmUuid = randomBytes(16).toString('hex');
  const dir = mkdtempSync('/var/tmp/zstack-realvm-');
  chmodSync(dir, 0o755); // QEMU runs as libvirt-qemu: it must reach the volumes
  const bridgeName = `zsbr${tag}`;
  const net = `10.${200 + (parseInt(tag.slice(0, 2), 16) % 50)}.${parseInt(tag.slice(2, 4), 16)}`;
  const mac0 = `52:54:00:${tag.slice(0, 2)}:${tag.slice(2, 4)}:10`;
  const mac1 = `52:54:00:${tag.slice(0, 2)}:${tag.slice(2, 4)}:11`;
  const l3NetworkUuid = `l3-${tag}`;
  // The same L3 → the same namespace and files as the agent's own server: for pinging and cleaning up.
  const dhcp = new FlatDhcpServer({ l3NetworkUuid, bridgeName, serverIp: `${net}.1`, gateway: `${net}.1`, prefixLength: 24 });
  const nicOf = (mac: string, deviceId: number, ip: string) => ({
    mac,
    uuid: `nic${deviceId}${tag}`,
    deviceId,
    bridgeName,
    nicInternalName: `zv${tag}.${deviceId}`,
    l3NetworkUuid,
    ip,
    netmask: '255.255.255.0',
    gateway: `${net}.1`,
    flatDhcp: true,
  });

  const image = await tryoutImage();
  const agent = await start({ kind: 'kvm', backend: 'libvirt', storageRoot: dir });
  const proxy = await start({ kind: 'console-proxy' });
  const kvm = (path: string, body: unknown, timeoutMs = 120_000) =>
    call(agent, path, body, { target: hostUuid, timeoutMs }).then(
      (r) => r.body,
      (err: Error) => {
        throw new Error(`${path}: ${err.message} (${String((err as { cause?: unknown }).cause)})`);
      },
    );
  t.teardown(async () => {
    await kvm('/vm/destroy', { uuid: vmUuid }).catch(() => undefined);
    await proxy.close();
    await agent.close();
    await dhcp.destroy().catch(() => undefined);
    await deleteBridge({ bridgeName }).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  const connected = await kvm('/host/connect', { hostUuid });
  t.equal(connected.success, true, connected.error);
  t.match(connected, { libvirtVersion: /^\d+\.\d+/, qemuVersion: /^\d+\.\d+/ });
  const hvm = (await kvm('/host/fact', {})).hvmCpuFlag;
  t.equal(connected.domainType, hvm ? 'kvm' : 'qemu', 'kvm only when the CPU has vmx/svm, else TCG');

  const ps = join(dir, 'ps');
  const root = join(ps, 'rootVolumes', `${vmUuid}.qcow2`);
  const created = await kvm('/primarystorage/volume/create', {
    installPath: root,
    size: 64 << 20,
    imageInstallPath: join(ps, 'imagecache', 'tryout.qcow2'),
    backupStorageInstallPath: image,
  });
  t.equal(created.success, true, created.error);
  t.ok(created.totalCapacity > 0, 'capacity of the primary storage in the reply');

  const log = `/var/log/zstack-ts/console/${vmUuid}.log`;
  const started = Date.now();
  const startReply = await kvm(
    '/vm/start',
    {
      vmInstanceUuid: vmUuid,
      vmName: 'tryout',
      memory: 128 << 20,
      cpuNum: 1,
      hostManagementIp: '127.0.0.1',
      rootVolume: { installPath: root, deviceId: 0, volumeUuid: `root${tag}` },
      nics: [nicOf(mac0, 0, `${net}.10`)],
    },
    60_000,
  );
  t.equal(startReply.success, true, startReply.error);
  t.same((await kvm('/vm/checkstate', { vmUuids: [vmUuid] })).states, { [vmUuid]: 'Running' });
  t.equal(
    (await kvm('/vm/start', { vmInstanceUuid: vmUuid, memory: 128 << 20, cpuNum: 1, rootVolume: { installPath: root, deviceId: 0, volumeUuid: 'r' } })).success,
    true,
    'starting a running VM succeeds',
  );

  await t.test('the guest boots and takes the lease we allocated', async (t) => {
    await waitConsole(log, /zstack-tryout: booted/, 180_000);
    const lease = await waitConsole(log, new RegExp(`lease eth0 ${mac0} (\\S+)/`), 120_000);
    t.equal(lease[1], `${net}.10`, 'DHCP lease = the address of the start command (the Flat DHCP static lease)');
    t.comment(`boot to lease: ${((Date.now() - started) / 1000).toFixed(1)} s; QEMU RSS ${((qemuRss(vmUuid) ?? 0) / 2 ** 20).toFixed(0)} MiB`);
    await waitConsole(log, /login:/, 60_000);
    // The DHCP namespace reaches the guest (retried: the guest's ARP may lag its lease by a moment).
    let pinged = false;
    for (let i = 0; i < 20 && !pinged; i++) {
      pinged = await sh('ip', ['netns', 'exec', dhcp.namespace, 'busybox', 'ping', '-c', '1', '-W', '1', `${net}.10`]).then(
        () => true,
        () => false,
      );
    }
    t.ok(pinged, 'the L3 namespace pings the VM');
    t.same((await kvm('/vm/vmsync', {})).states?.[vmUuid], 'Running', 'vmsync lists it');
  });

  await t.test('a data volume is hot-plugged and unplugged', async (t) => {
    const data = join(ps, 'dataVolumes', `d${tag}.qcow2`);
    t.equal((await kvm('/primarystorage/volume/create', { installPath: data, size: 32 << 20 })).success, true);
    const volume = { installPath: data, deviceId: 1, volumeUuid: `data${tag}` };
    const from = consoleText(log).length;
    const attached = await kvm('/vm/attachdatavolume', { vmInstanceUuid: vmUuid, volume });
    t.equal(attached.success, true, attached.error);
    t.match((await waitConsole(log, /disk add vdb (\d+)/, 30_000, from))[1], String((32 << 20) / 512), 'the guest sees a 32 MiB vdb');
    t.equal((await kvm('/vm/attachdatavolume', { vmInstanceUuid: vmUuid, volume })).success, true, 'attaching it again succeeds');
    const detached = await kvm('/vm/detachdatavolume', { vmInstanceUuid: vmUuid, volume });
    t.equal(detached.success, true, detached.error);
    await waitConsole(log, /disk remove vdb/, 30_000, from);
    t.equal((await kvm('/vm/detachdatavolume', { vmInstanceUuid: vmUuid, volume })).success, true, 'detaching it again succeeds');
  });

  await t.test('a NIC is hot-plugged (its own lease) and unplugged', async (t) => {
    const nic = nicOf(mac1, 1, `${net}.11`);
    const from = consoleText(log).length;
    const attached = await kvm('/vm/attachnic', { vmUuid, nic });
    t.equal(attached.success, true, attached.error);
    const lease = await waitConsole(log, new RegExp(`lease (eth\\d) ${mac1} (\\S+)/`), 60_000, from).catch((e: Error) => {
      throw new Error(`${e.message}\ndnsmasq said:\n${consoleText(dhcp.leaseLog).slice(-3000)}`);
    });
    t.equal(lease[2], `${net}.11`, 'the hot-plugged NIC leased its static address');
    t.equal((await kvm('/vm/attachnic', { vmUuid, nic })).success, true, 'the same MAC again succeeds');
    const detached = await kvm('/vm/detachnic', { vmUuid, nic });
    t.equal(detached.success, true, detached.error);
    await waitConsole(log, new RegExp(`nic remove ${lease[1]}`), 30_000, from);
    t.same(
      (await dhcp.leases()).map((l) => l.mac),
      [mac0],
      'its lease left with it',
    );
  });

  await t.test('a console token opens a WebSocket to the real framebuffer', async (t) => {
    const vnc = await kvm('/vm/getvncport', { vmUuid });
    t.equal(vnc.success, true, vnc.error);
    t.equal(vnc.host, '127.0.0.1', 'VNC listens on the host address of the start command');
    const est = (await call(proxy, '/console/establish', { vmUuid, targetHostname: vnc.host, targetPort: vnc.port, idleTimeoutMs: 0 }, { target: 'mn-1' }))
      .body;
    t.equal(est.success, true, est.error);
    const opened = await openWs(`ws://127.0.0.1:${est.proxyPort}/?token=${est.token}`);
    t.teardown(() => opened.ws.terminate());
    const hs = await rfbHandshake(opened);
    t.match(hs.version, /^RFB 003\.00\d\n$/, 'QEMU speaks RFB');
    t.ok(hs.width >= 640 && hs.height >= 400, `a real screen: ${hs.width}x${hs.height}`);
    // SetEncodings [raw], then a full (non-incremental) update of the whole screen.
    opened.ws.send(Buffer.from([2, 0, 0, 1, 0, 0, 0, 0]));
    const req = Buffer.alloc(10);
    req.writeUInt8(3, 0);
    req.writeUInt8(0, 1);
    req.writeUInt16BE(hs.width, 6);
    req.writeUInt16BE(hs.height, 8);
    opened.ws.send(req);
    const distinct = new Set<number>();
    let pixels = 0;
    while (pixels < hs.width * hs.height) {
      const head = await opened.read(4);
      t.equal(head[0], 0, 'FramebufferUpdate');
      for (let r = head.readUInt16BE(2); r > 0; r--) {
        const rect = await opened.read(12);
        const [w, h, enc] = [rect.readUInt16BE(4), rect.readUInt16BE(6), rect.readInt32BE(8)];
        if (enc !== 0) continue; // pseudo-encodings carry no pixels
        const data = await opened.read(w * h * 4);
        for (let i = 0; i < data.length; i += 4) distinct.add(data.readUInt32LE(i));
        pixels += w * h;
      }
    }
    t.ok(distinct.size >= 2, `the screen shows text (${distinct.size} distinct colours), not a blank rectangle`);
  });

  await t.test('/vm/stop is a graceful ACPI shutdown', async (t) => {
    const from = consoleText(log).length;
    const stopped = await kvm('/vm/stop', { uuid: vmUuid, timeout: 90 }, 120_000);
    t.equal(stopped.success, true, stopped.error);
    await waitConsole(log, /zstack-tryout: poweroff \(acpi\)/, 5_000, from);
    t.match(consoleText(log).slice(from), /reboot: Power down|Requesting system poweroff/, 'the guest powered itself off');
    t.same((await kvm('/vm/checkstate', { vmUuids: [vmUuid] })).states, { [vmUuid]: 'Shutdown' });
    t.notOk((await kvm('/vm/vmsync', {})).states?.[vmUuid], 'no longer listed');
    t.equal((await kvm('/vm/stop', { uuid: vmUuid })).success, true, 'stopping a stopped VM succeeds');
    t.same(await dhcp.leases(), [{ mac: mac0, ip: `${net}.10`, owner: vmUuid }], 'a stopped VM keeps its lease');
    t.equal((await kvm('/vm/destroy', { uuid: vmUuid })).success, true);
    t.same(await dhcp.leases(), [], 'a destroyed VM leaves no lease behind');
  });
}

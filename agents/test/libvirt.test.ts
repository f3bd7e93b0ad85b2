// The libvirt kvm backend: /proc facts, virsh output parsing (against a fake virsh), clear errors for what is
// not implemented.
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { RouterNamespaces } from '../src/network/router-namespace.js';
import { LibvirtKvmBackend } from '../src/kvm/libvirt-backend.js';
import { diskTarget, domainXml, nicXml } from '../src/kvm/domain-xml.js';
import { parseCpuInfo, parseMemInfo, parseOsRelease } from '../src/kvm/host-facts.js';
import type { CommandContext } from '../src/lib/handler.js';
import type { OperationId } from '../src/lib/protocol.js';
import { available } from '../src/lib/exec.js';
import { call, start } from './helpers.js';

const CPUINFO = `processor\t: 0
model name\t: Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz
cpu MHz\t\t: 2399.998
flags\t\t: fpu vme de pse vmx sse4_2

processor\t: 1
model name\t: Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz
cpu MHz\t\t: 2399.998
flags\t\t: fpu vme de pse vmx sse4_2
`;

t.test('host facts are parsed from /proc text', async (t) => {
  t.same(parseCpuInfo(CPUINFO), { cpuNum: 2, cpuSpeed: 2400, modelName: 'Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz', hvmFlag: 'vmx' });
  t.equal(parseCpuInfo(CPUINFO.replace(/vmx/g, 'svm')).hvmFlag, 'svm');
  t.equal(parseCpuInfo(CPUINFO.replace(/vmx/g, '')).hvmFlag, '');
  t.same(parseMemInfo('MemTotal:       16000000 kB\nMemFree:  1000 kB\nMemAvailable:    8000000 kB\n'), {
    totalMemory: 16000000 * 1024,
    availableMemory: 8000000 * 1024,
  });
  t.same(parseOsRelease('NAME="CentOS Linux"\nID="centos"\nVERSION_ID="7"\n'), { id: 'centos', versionId: '7' });
});

t.test('a kvm agent on the libvirt backend over HTTP', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'zstack-libvirt-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const agent = await start({ kind: 'kvm', backend: 'libvirt', storageRoot: dir });
  t.teardown(() => agent.close());
  t.equal(agent.backend, 'libvirt');
  t.equal(agent.simulator, undefined, 'no simulator control on a real agent');

  const cap = (await call(agent, '/host/capacity', {})).body;
  t.equal(cap.success, true);
  t.ok(cap.cpuNum >= 1 && cap.totalMemory > 0 && cap.usedMemory > 0, 'from /proc');
  const fact = (await call(agent, '/host/fact', {})).body;
  t.equal(fact.success, true);
  t.ok(['vmx', 'svm', ''].includes(fact.hvmCpuFlag));

  // What these answer depends on what is installed here: no virsh, no libvirtd, or no such domain; never success.
  const startVm = (
    await call(agent, '/vm/start', { vmInstanceUuid: 'vm1', memory: 1, cpuNum: 1, rootVolume: { installPath: 'x', deviceId: 0, volumeUuid: 'v' } })
  ).body;
  t.equal(startVm.success, false);
  t.match(startVm.error, /installPath must be absolute|virsh not found on PATH|failed to connect/);
  const installed = await available('virsh');
  for (const [path, body] of [
    ['/vm/attachnic', { vmUuid: 'no-such-vm', nic: { mac: 'fa:16:3e:00:00:01', uuid: 'n', deviceId: 0 } }],
    ['/vm/detachnic', { vmUuid: 'no-such-vm', nic: { mac: 'fa:16:3e:00:00:01', uuid: 'n', deviceId: 0 } }],
    ['/vm/attachdatavolume', { vmInstanceUuid: 'no-such-vm', volume: { installPath: '/x', deviceId: 1, volumeUuid: 'v' } }],
    ['/vm/detachdatavolume', { vmInstanceUuid: 'no-such-vm', volume: { installPath: '/x', deviceId: 1, volumeUuid: 'v' } }],
  ] as const) {
    const reply = (await call(agent, path, body)).body;
    t.equal(reply.success, false, path);
    t.match(reply.error, installed ? /failed to get domain|failed to connect|no domain/ : /virsh not found on PATH/, path);
  }
  t.match(
    (await call(agent, '/vm/migrate', { vmUuid: 'vm1', destHostIp: '10.0.0.2' })).body.error,
    /live migration is not supported by the libvirt backend yet \(.*share one libvirtd/,
  );
  const ps = (await call(agent, '/primarystorage/capacity', {})).body;
  t.ok(ps.totalCapacity > 0, 'primary storage capacity of --storage-root');
  t.same((await call(agent, '/host/ping', {})).body, { success: true }, 'never connected');
});

function ctx<O extends OperationId>(operationId: O, body: unknown): CommandContext<never> {
  return { operationId, path: '', body, targetKind: 'host', target: '', signal: new AbortController().signal } as CommandContext<never>;
}

t.test('virsh and qemu-img are driven and their output understood (fake binaries)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'zstack-fake-virsh-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const virsh = join(dir, 'virsh');
  await writeFile(
    virsh,
    `#!/bin/sh
STATE=${dir}/state
case "$1" in
  --version) echo 1.2.17 ;;
  list) if [ "$3" = "--state-running" ]; then [ -f $STATE-off ] || echo vm-running; echo; else echo vm-paused; fi ;;
  domstate)
    case "$2" in
      vm-running) if [ -f $STATE-off ]; then echo "shut off"; else echo running; fi ;;
      vm-paused) echo paused ;;
      *) echo "error: failed to get domain '$2'" >&2; exit 1 ;;
    esac ;;
  shutdown) touch $STATE-off ;;
  destroy) if [ "$2" = vm-running ]; then echo "error: Requested operation is not valid: domain is not running" >&2; exit 1; fi ;;
  undefine) echo "$2" >> $STATE-undefined ;;
  reboot) echo "error: failed to get domain '$2'" >&2; exit 1 ;;
  vncdisplay) if [ "$2" = vm-paused ]; then echo ":3"; else echo "192.168.0.5:1"; fi ;;
esac
`,
  );
  const qemuImg = join(dir, 'qemu-img');
  await writeFile(
    qemuImg,
    `#!/bin/sh
[ "$1" = --version ] && { echo "qemu-img version 2.6.0"; exit 0; }
for last; do :; done
eval path=\\$$(($# - 1))
touch "$path"
`,
  );
  await chmod(virsh, 0o755);
  await chmod(qemuImg, 0o755);
  const backend = new LibvirtKvmBackend({ virsh, qemuImg, routers: new RouterNamespaces(join(dir, 'vr')) });

  t.same((await backend.vmSync(ctx('KvmVmSync', {}))).states, { 'vm-running': 'Running', 'vm-paused': 'Paused' });
  t.same((await backend.checkState(ctx('KvmVmCheckState', { vmUuids: ['vm-running', 'vm-paused', 'ghost'] }))).states, {
    'vm-running': 'Running',
    'vm-paused': 'Paused',
    ghost: 'Shutdown',
  });
  t.same(await backend.getVncPort(ctx('KvmVmGetVncPort', { vmUuid: 'vm-running' })), { port: 5901, host: '192.168.0.5', protocol: 'vnc' });
  t.same(await backend.getVncPort(ctx('KvmVmGetVncPort', { vmUuid: 'vm-paused' })), { port: 5903, protocol: 'vnc' }, 'wildcard → host IP');
  t.same(await backend.stopVm(ctx('KvmVmStop', { uuid: 'vm-running', timeout: 5 })), {}, 'graceful shutdown, then destroy/undefine tolerated');
  t.same((await backend.vmSync(ctx('KvmVmSync', {}))).states, { 'vm-paused': 'Paused' });
  t.same(await backend.destroyVm(ctx('KvmVmDestroy', { uuid: 'ghost' })), {}, 'destroying an absent domain succeeds');
  await t.rejects(backend.rebootVm(ctx('KvmVmReboot', { uuid: 'ghost' })), /failed to get domain/);
  if (await available('qemu-system-x86_64')) {
    t.match(await backend.connect(ctx('KvmHostConnect', { hostUuid: 'h1' })), { libvirtVersion: '1.2.17', domainType: /^(kvm|qemu)$/ });
  } else {
    await t.rejects(backend.connect(ctx('KvmHostConnect', { hostUuid: 'h1' })), /no qemu binary found/, 'connect needs qemu');
  }
  const fact = await backend.fact(ctx('KvmHostFact', {}));
  t.same([fact.libvirtVersion, fact.qemuImgVersion], ['1.2.17', '2.6.0']);

  const volume = join(dir, 'ps', 'vol1.qcow2');
  await t.rejects(
    backend.createVolume(ctx('KvmPrimaryStorageVolumeCreate', { installPath: volume, size: 1024, imageInstallPath: join(dir, 'base.qcow2') })),
    /not on this primary storage and the command names no backupStorageInstallPath/,
  );
  await t.rejects(
    backend.createVolume(
      ctx('KvmPrimaryStorageVolumeCreate', {
        installPath: volume,
        size: 1024,
        imageInstallPath: join(dir, 'base.qcow2'),
        backupStorageInstallPath: join(dir, 'nope'),
      }),
    ),
    /is not readable on this host/,
  );
  await writeFile(join(dir, 'bs-image'), 'image bits');
  const created = await backend.createVolume(
    ctx('KvmPrimaryStorageVolumeCreate', {
      installPath: volume,
      size: 1024,
      imageInstallPath: join(dir, 'cache', 'base.qcow2'),
      backupStorageInstallPath: join(dir, 'bs-image'),
    }),
  );
  t.equal(await readFile(join(dir, 'cache', 'base.qcow2'), 'utf8'), 'image bits', 'the image was copied into the primary storage cache');
  t.ok(existsSync(volume), 'qemu-img create ran');
  t.ok(created.totalCapacity! > 0);
  await backend.deleteVolume(ctx('KvmPrimaryStorageVolumeDelete', { installPath: volume }));
  t.notOk(existsSync(volume));

  const missing = new LibvirtKvmBackend({ virsh: join(dir, 'no-such-virsh') });
  await t.rejects(missing.connect(ctx('KvmHostConnect', { hostUuid: 'h1' })), /no-such-virsh not found on PATH/);
});

t.test('start, hot-plug and unplug drive virsh with domain and device XML (fake virsh)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'zstack-fake-virsh-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const virsh = join(dir, 'virsh');
  // State: $D/state (running|absent), $D/disks ("vda path" lines), $D/macs; every call is logged with the XML given.
  await writeFile(
    virsh,
    `#!/bin/sh
D=${dir}
echo "$*" >> $D/calls
case "$1" in
  domstate) if [ -f $D/running ]; then echo running; else echo "error: failed to get domain '$2'" >&2; exit 1; fi ;;
  create) cp "$2" $D/domain.xml; touch $D/running; echo "vda /ps/root.qcow2" > $D/disks; : > $D/macs ;;
  domblklist) echo " Target   Source"; echo "------------------"; cat $D/disks ;;
  domiflist) echo " Interface  Type  Source  Model  MAC"; echo "----"; cat $D/macs ;;
  attach-device)
    cat "$3" >> $D/devices.xml
    if grep -q "<disk" "$3"; then echo "vdb $(sed -n "s/.*source file='\\([^']*\\)'.*/\\1/p" "$3")" >> $D/disks; fi
    if grep -q "<interface" "$3"; then echo "tap0 bridge br0 virtio $(sed -n "s/.*mac address='\\([^']*\\)'.*/\\1/p" "$3")" >> $D/macs; fi ;;
  detach-disk) grep -v "^$3 " $D/disks > $D/d2; mv $D/d2 $D/disks ;;
  detach-interface) grep -v "$5" $D/macs > $D/m2; mv $D/m2 $D/macs ;;
  *) ;;
esac
`,
  );
  const qemuImg = join(dir, 'qemu-img');
  await writeFile(qemuImg, `#!/bin/sh\n[ "$1" = info ] && { echo '{"format": "raw"}'; exit 0; }\nexit 0\n`);
  await chmod(virsh, 0o755);
  await chmod(qemuImg, 0o755);
  const backend = new LibvirtKvmBackend({ virsh, qemuImg, domainType: 'qemu', consoleLogDir: join(dir, 'console') });
  const cmd = {
    vmInstanceUuid: '0123456789abcdef0123456789abcdef',
    vmName: 'a <b>',
    memory: 128 * 1024 * 1024,
    cpuNum: 1,
    rootVolume: { installPath: '/ps/root.qcow2', deviceId: 0, volumeUuid: 'root' },
    nics: [{ mac: '52:54:00:00:00:01', uuid: 'n0', deviceId: 0, bridgeName: 'br0', nicInternalName: 'vnic1.0' }],
    hostManagementIp: '192.168.0.5',
  };
  t.same(await backend.startVm(ctx('KvmVmStart', cmd)), {});
  const xml = await readFile(join(dir, 'domain.xml'), 'utf8');
  t.match(xml, /<domain type='qemu'>/);
  t.match(xml, /<title>a &lt;b&gt;<\/title>/, 'escaped');
  t.match(xml, /<memory unit='KiB'>131072<\/memory>/);
  t.match(
    xml,
    /<driver name='qemu' type='raw' cache='none'\/><source file='\/ps\/root.qcow2'\/><target dev='vda' bus='virtio'\/>/,
    'format from qemu-img info',
  );
  t.match(xml, /<interface type='bridge'><mac address='52:54:00:00:00:01'\/><source bridge='br0'\/><target dev='vnic1.0'\/>/);
  t.match(xml, /<tb-cache unit='MiB'>32<\/tb-cache>/, 'TCG: a small translation cache');
  t.match(xml, /<graphics type='vnc' port='-1' autoport='yes' listen='192.168.0.5'>/);
  t.match(xml, new RegExp(`<log file='${join(dir, 'console')}/0123456789abcdef0123456789abcdef.log'`));
  t.same(await backend.startVm(ctx('KvmVmStart', cmd)), {}, 'already running: nothing to do');
  t.equal((await readFile(join(dir, 'calls'), 'utf8')).match(/^create/gm)?.length, 1);

  const uuid = cmd.vmInstanceUuid;
  const volume = { installPath: '/ps/data.qcow2', deviceId: 1, volumeUuid: 'data' };
  await backend.attachDataVolume(ctx('KvmVmAttachDataVolume', { vmInstanceUuid: uuid, volume }));
  await backend.attachDataVolume(ctx('KvmVmAttachDataVolume', { vmInstanceUuid: uuid, volume }));
  await t.rejects(
    backend.attachDataVolume(ctx('KvmVmAttachDataVolume', { vmInstanceUuid: uuid, volume: { ...volume, installPath: '/ps/other.qcow2' } })),
    /already has another disk on vdb/,
  );
  await t.rejects(
    backend.attachDataVolume(ctx('KvmVmAttachDataVolume', { vmInstanceUuid: uuid, volume: { ...volume, installPath: 'rel' } })),
    /must be absolute/,
  );
  const nic = { mac: '52:54:00:00:00:02', uuid: 'n1', deviceId: 1 };
  await backend.attachNic(ctx('KvmVmAttachNic', { vmUuid: uuid, nic }));
  await backend.attachNic(ctx('KvmVmAttachNic', { vmUuid: uuid, nic: { ...nic, mac: '52:54:00:00:00:02'.toUpperCase() } }));
  const devices = await readFile(join(dir, 'devices.xml'), 'utf8');
  t.equal(devices.match(/<disk /g)?.length, 1, 'attached once');
  t.equal(devices.match(/<interface /g)?.length, 1, 'attached once (MACs compare case-insensitively)');
  t.match(devices, /<interface type='ethernet'><mac address='52:54:00:00:00:02'\/><model type='virtio'\/><\/interface>/, 'no bridge: a tap on nothing');
  t.match(devices, /<target dev='vdb' bus='virtio'\/>/);

  await backend.detachDataVolume(ctx('KvmVmDetachDataVolume', { vmInstanceUuid: uuid, volume }));
  await backend.detachDataVolume(ctx('KvmVmDetachDataVolume', { vmInstanceUuid: uuid, volume }));
  await backend.detachNic(ctx('KvmVmDetachNic', { vmUuid: uuid, nic }));
  await backend.detachNic(ctx('KvmVmDetachNic', { vmUuid: uuid, nic }));
  const calls = await readFile(join(dir, 'calls'), 'utf8');
  t.equal(calls.match(/^detach-disk .* vdb --live$/gm)?.length, 1, 'detached once');
  t.equal(calls.match(/^detach-interface .* --type ethernet --mac 52:54:00:00:00:02 --live$/gm)?.length, 1);
  t.equal(backend.consoleLogOf(uuid), join(dir, 'console', `${uuid}.log`));
});

t.test('domain XML details', async (t) => {
  t.same([0, 1, 25, 26, 27].map(diskTarget), ['vda', 'vdb', 'vdz', 'vdaa', 'vdab']);
  const base = { vmInstanceUuid: 'not-a-uuid', memory: 1, cpuNum: 2, rootVolume: { installPath: '/r', deviceId: 0, volumeUuid: 'r', useVirtio: false } };
  const kvm = domainXml({ ...base, bootIso: { path: '/iso' }, bootDev: ['cdrom', 'hd'] }, { domainType: 'kvm', vncListen: '0.0.0.0' });
  t.match(kvm, /<domain type='kvm'>/);
  t.match(kvm, /<cpu mode='host-passthrough'\/>/);
  t.notMatch(kvm, /<uuid>/, 'a name that is no uuid is not sent as one');
  t.notMatch(kvm, /tb-cache/);
  t.match(kvm, /<target dev='hda' bus='ide'\/>/, 'no virtio: IDE');
  t.match(kvm, /device='cdrom'.*<source file='\/iso'\/>/);
  t.match(kvm, /<boot dev='cdrom'\/><boot dev='hd'\/>/);
  t.match(nicXml({ mac: 'm', uuid: 'u', deviceId: 0, useVirtio: false }), /<model type='e1000'\/>/);
});

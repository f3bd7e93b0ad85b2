// The libvirt kvm backend: /proc facts, virsh output parsing (against a fake virsh), clear errors for what is
// not implemented.
import { existsSync } from 'node:fs'
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { LibvirtKvmBackend } from '../src/kvm/libvirt-backend.js'
import { parseCpuInfo, parseMemInfo, parseOsRelease } from '../src/kvm/host-facts.js'
import type { CommandContext } from '../src/lib/handler.js'
import type { OperationId } from '../src/lib/protocol.js'
import { call, start } from './helpers.js'

const CPUINFO = `processor\t: 0
model name\t: Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz
cpu MHz\t\t: 2399.998
flags\t\t: fpu vme de pse vmx sse4_2

processor\t: 1
model name\t: Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz
cpu MHz\t\t: 2399.998
flags\t\t: fpu vme de pse vmx sse4_2
`

t.test('host facts are parsed from /proc text', async (t) => {
  t.same(parseCpuInfo(CPUINFO), { cpuNum: 2, cpuSpeed: 2400, modelName: 'Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz', hvmFlag: 'vmx' })
  t.equal(parseCpuInfo(CPUINFO.replace(/vmx/g, 'svm')).hvmFlag, 'svm')
  t.equal(parseCpuInfo(CPUINFO.replace(/vmx/g, '')).hvmFlag, '')
  t.same(parseMemInfo('MemTotal:       16000000 kB\nMemFree:  1000 kB\nMemAvailable:    8000000 kB\n'), {
    totalMemory: 16000000 * 1024, availableMemory: 8000000 * 1024,
  })
  t.same(parseOsRelease('NAME="CentOS Linux"\nID="centos"\nVERSION_ID="7"\n'), { id: 'centos', versionId: '7' })
})

t.test('a kvm agent on the libvirt backend over HTTP', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'zstack-libvirt-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const agent = await start({ kind: 'kvm', backend: 'libvirt', storageRoot: dir })
  t.teardown(() => agent.close())
  t.equal(agent.backend, 'libvirt')
  t.equal(agent.simulator, undefined, 'no simulator control on a real agent')

  const cap = (await call(agent, '/host/capacity', {})).body
  t.equal(cap.success, true)
  t.ok(cap.cpuNum >= 1 && cap.totalMemory > 0 && cap.usedMemory > 0, 'from /proc')
  const fact = (await call(agent, '/host/fact', {})).body
  t.equal(fact.success, true)
  t.ok(['vmx', 'svm', ''].includes(fact.hvmCpuFlag))

  const startVm = (await call(agent, '/vm/start', { vmInstanceUuid: 'vm1', memory: 1, cpuNum: 1, rootVolume: { installPath: '/x', deviceId: 0, volumeUuid: 'v' } })).body
  t.equal(startVm.success, false)
  t.match(startVm.error, /\/vm\/start is not implemented by the libvirt backend/)
  for (const [path, body] of [
    ['/vm/attachnic', { vmUuid: 'vm1', nic: { mac: 'fa', uuid: 'n', deviceId: 0 } }],
    ['/vm/detachnic', { vmUuid: 'vm1', nic: { mac: 'fa', uuid: 'n', deviceId: 0 } }],
    ['/vm/attachdatavolume', { vmInstanceUuid: 'vm1', volume: { installPath: '/x', deviceId: 1, volumeUuid: 'v' } }],
    ['/vm/detachdatavolume', { vmInstanceUuid: 'vm1', volume: { installPath: '/x', deviceId: 1, volumeUuid: 'v' } }],
    ['/vm/migrate', { vmUuid: 'vm1', destHostIp: '10.0.0.2' }],
  ] as const) {
    t.match((await call(agent, path, body)).body.error, /not implemented by the libvirt backend/, path)
  }
  const ps = (await call(agent, '/primarystorage/capacity', {})).body
  t.ok(ps.totalCapacity > 0, 'primary storage capacity of --storage-root')
  t.same((await call(agent, '/host/ping', {})).body, { success: true }, 'never connected')
})

function ctx<O extends OperationId>(operationId: O, body: unknown): CommandContext<never> {
  return { operationId, path: '', body, targetKind: 'host', target: '', signal: new AbortController().signal } as CommandContext<never>
}

t.test('virsh and qemu-img are driven and their output understood (fake binaries)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'zstack-fake-virsh-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const virsh = join(dir, 'virsh')
  await writeFile(virsh, `#!/bin/sh
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
`)
  const qemuImg = join(dir, 'qemu-img')
  await writeFile(qemuImg, `#!/bin/sh
[ "$1" = --version ] && { echo "qemu-img version 2.6.0"; exit 0; }
for last; do :; done
eval path=\\$$(($# - 1))
touch "$path"
`)
  await chmod(virsh, 0o755)
  await chmod(qemuImg, 0o755)
  const backend = new LibvirtKvmBackend({ virsh, qemuImg })

  t.same((await backend.vmSync(ctx('KvmVmSync', {}))).states, { 'vm-running': 'Running', 'vm-paused': 'Paused' })
  t.same((await backend.checkState(ctx('KvmVmCheckState', { vmUuids: ['vm-running', 'vm-paused', 'ghost'] }))).states, {
    'vm-running': 'Running', 'vm-paused': 'Paused', ghost: 'Shutdown',
  })
  t.same(await backend.getVncPort(ctx('KvmVmGetVncPort', { vmUuid: 'vm-running' })), { port: 5901, host: '192.168.0.5', protocol: 'vnc' })
  t.same(await backend.getVncPort(ctx('KvmVmGetVncPort', { vmUuid: 'vm-paused' })), { port: 5903, protocol: 'vnc' }, 'wildcard → host IP')
  t.same(await backend.stopVm(ctx('KvmVmStop', { uuid: 'vm-running', timeout: 5 })), {}, 'graceful shutdown, then destroy/undefine tolerated')
  t.same((await backend.vmSync(ctx('KvmVmSync', {}))).states, { 'vm-paused': 'Paused' })
  t.same(await backend.destroyVm(ctx('KvmVmDestroy', { uuid: 'ghost' })), {}, 'destroying an absent domain succeeds')
  await t.rejects(backend.rebootVm(ctx('KvmVmReboot', { uuid: 'ghost' })), /failed to get domain/)
  await t.rejects(backend.connect(ctx('KvmHostConnect', { hostUuid: 'h1' })), /no qemu binary found|qemu/, 'connect needs qemu')
  const fact = await backend.fact(ctx('KvmHostFact', {}))
  t.same([fact.libvirtVersion, fact.qemuImgVersion], ['1.2.17', '2.6.0'])

  const volume = join(dir, 'ps', 'vol1.qcow2')
  const created = await backend.createVolume(ctx('KvmPrimaryStorageVolumeCreate', { installPath: volume, size: 1024, imageInstallPath: join(dir, 'base.qcow2') }))
  t.ok(existsSync(volume), 'qemu-img create ran')
  t.ok(created.totalCapacity! > 0)
  await backend.deleteVolume(ctx('KvmPrimaryStorageVolumeDelete', { installPath: volume }))
  t.notOk(existsSync(volume))

  const missing = new LibvirtKvmBackend({ virsh: join(dir, 'no-such-virsh') })
  await t.rejects(missing.connect(ctx('KvmHostConnect', { hostUuid: 'h1' })), /no-such-virsh not found on PATH/)
})

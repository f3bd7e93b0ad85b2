// kvm backend for a real host: drives virsh and qemu-img. Partial on purpose (see agents/README.md): host facts
// and capacity, VM listing/state, stop/destroy/reboot, VNC port and volume files work; operations that need domain
// XML (start, hot-plug, migrate) answer success:false saying so.
import { mkdir, rm } from 'node:fs/promises'
import { dirname, isAbsolute } from 'node:path'
import { sleep } from '../lib/abort.js'
import { AgentError } from '../lib/errors.js'
import { run } from '../lib/exec.js'
import type { Ctx } from '../lib/handler.js'
import type { VmState } from '../lib/protocol.js'
import { capacityOf } from '../lib/statfs.js'
import type { KvmBackend } from './backend.js'
import { readCpuFacts, readMemFacts, readOsRelease } from './host-facts.js'

export interface LibvirtBackendOptions {
  /** Directory whose file system is reported by /primarystorage/capacity when the command names no mountPath. */
  storageRoot?: string
  virsh?: string
  qemuImg?: string
}

const DOMAIN_STATES: Record<string, VmState> = {
  running: 'Running', paused: 'Paused', 'shut off': 'Shutdown', shutdown: 'Shutdown', crashed: 'Crashed',
  pmsuspended: 'Suspended', idle: 'Running', 'in shutdown': 'Running', blocked: 'Running',
}

export class LibvirtKvmBackend implements KvmBackend {
  readonly name = 'libvirt'
  private hostUuid?: string
  private readonly virsh: string
  private readonly qemuImg: string

  constructor(private readonly opts: LibvirtBackendOptions = {}) {
    this.virsh = opts.virsh ?? 'virsh'
    this.qemuImg = opts.qemuImg ?? 'qemu-img'
  }

  async connect(ctx: Ctx<'KvmHostConnect'>) {
    const libvirtVersion = await this.libvirtVersion(ctx.signal)
    const qemuVersion = await this.qemuVersion(ctx.signal)
    this.hostUuid = ctx.body.hostUuid
    return { libvirtVersion, qemuVersion }
  }

  async ping(_ctx: Ctx<'KvmHostPing'>) {
    return this.hostUuid === undefined ? {} : { hostUuid: this.hostUuid }
  }

  async capacity(_ctx: Ctx<'KvmHostCapacity'>) {
    const [cpu, mem] = await Promise.all([readCpuFacts(), readMemFacts()])
    // usedCpu would need per-domain vCPU accounting; the management server tracks allocations itself.
    return {
      cpuNum: cpu.cpuNum, cpuSpeed: cpu.cpuSpeed, usedCpu: 0,
      totalMemory: mem.totalMemory, usedMemory: mem.totalMemory - mem.availableMemory,
    }
  }

  async fact(ctx: Ctx<'KvmHostFact'>) {
    const [cpu, os] = await Promise.all([readCpuFacts(), readOsRelease()])
    const qemuImgVersion = await run(this.qemuImg, ['--version'], ctx.signal).then((r) => versionIn(r.stdout), () => undefined)
    const libvirtVersion = await this.libvirtVersion(ctx.signal).catch(() => undefined)
    return {
      hvmCpuFlag: cpu.hvmFlag, cpuModelName: cpu.modelName, osDistribution: os.id, osVersion: os.versionId,
      ...(qemuImgVersion ? { qemuImgVersion } : {}),
      ...(libvirtVersion ? { libvirtVersion } : {}),
    }
  }

  async startVm(ctx: Ctx<'KvmVmStart'>): Promise<never> {
    throw notImplemented(ctx.path, 'domain XML generation')
  }

  async stopVm(ctx: Ctx<'KvmVmStop'>) {
    const uuid = ctx.body.uuid
    if ((await this.domState(uuid, ctx.signal)) === 'Shutdown') return this.undefine(uuid, ctx.signal)
    await this.virshTolerant(['shutdown', uuid], ctx.signal)
    const graceMs = (ctx.body.timeout ?? 60) * 1000
    const until = Date.now() + graceMs
    while (Date.now() < until && (await this.domState(uuid, ctx.signal)) !== 'Shutdown') await sleep(500, ctx.signal)
    await this.virshTolerant(['destroy', uuid], ctx.signal)
    return this.undefine(uuid, ctx.signal)
  }

  async rebootVm(ctx: Ctx<'KvmVmReboot'>) {
    await run(this.virsh, ['reboot', ctx.body.uuid], ctx.signal)
    return {}
  }

  async destroyVm(ctx: Ctx<'KvmVmDestroy'>) {
    await this.virshTolerant(['destroy', ctx.body.uuid], ctx.signal)
    return this.undefine(ctx.body.uuid, ctx.signal)
  }

  async vmSync(ctx: Ctx<'KvmVmSync'>) {
    const states: Record<string, VmState> = {}
    for (const [flag, state] of [['--state-running', 'Running'], ['--state-paused', 'Paused']] as const) {
      const { stdout } = await run(this.virsh, ['list', '--name', flag], ctx.signal)
      for (const name of stdout.split('\n').map((l) => l.trim()).filter(Boolean)) states[name] = state
    }
    return { states }
  }

  async checkState(ctx: Ctx<'KvmVmCheckState'>) {
    const states: Record<string, VmState> = {}
    for (const uuid of ctx.body.vmUuids) states[uuid] = await this.domState(uuid, ctx.signal)
    return { states }
  }

  async attachDataVolume(ctx: Ctx<'KvmVmAttachDataVolume'>): Promise<never> {
    throw notImplemented(ctx.path, 'disk device XML')
  }

  async detachDataVolume(ctx: Ctx<'KvmVmDetachDataVolume'>): Promise<never> {
    throw notImplemented(ctx.path, 'disk device XML')
  }

  async attachNic(ctx: Ctx<'KvmVmAttachNic'>): Promise<never> {
    throw notImplemented(ctx.path, 'interface device XML')
  }

  async detachNic(ctx: Ctx<'KvmVmDetachNic'>): Promise<never> {
    throw notImplemented(ctx.path, 'interface device XML')
  }

  async getVncPort(ctx: Ctx<'KvmVmGetVncPort'>) {
    const { stdout } = await run(this.virsh, ['vncdisplay', ctx.body.vmUuid], ctx.signal)
    const m = /^(.*):(\d+)\s*$/m.exec(stdout.trim())
    if (!m) throw new AgentError(`VM ${ctx.body.vmUuid} has no VNC display (virsh said: ${stdout.trim()})`)
    const listen = m[1].replace(/^\[|\]$/g, '')
    const port = 5900 + Number(m[2])
    // A wildcard listen address means "the host's own address", which the management server already knows.
    return listen && listen !== '0.0.0.0' && listen !== '::' ? { port, host: listen, protocol: 'vnc' as const } : { port, protocol: 'vnc' as const }
  }

  async migrateVm(ctx: Ctx<'KvmVmMigrate'>): Promise<never> {
    throw notImplemented(ctx.path, 'live migration')
  }

  async createVolume(ctx: Ctx<'KvmPrimaryStorageVolumeCreate'>) {
    const { installPath, size, imageInstallPath } = ctx.body
    if (!isAbsolute(installPath)) throw new AgentError(`installPath must be absolute: ${installPath}`)
    await mkdir(dirname(installPath), { recursive: true })
    const args = imageInstallPath
      ? ['create', '-f', 'qcow2', '-b', imageInstallPath, '-F', 'qcow2', installPath, String(size)]
      : ['create', '-f', 'qcow2', installPath, String(size)]
    await run(this.qemuImg, args, ctx.signal)
    return { installPath, size, ...(await this.storage(ctx.body.mountPath ?? dirname(installPath))) }
  }

  async deleteVolume(ctx: Ctx<'KvmPrimaryStorageVolumeDelete'>) {
    const { installPath } = ctx.body
    if (!isAbsolute(installPath)) throw new AgentError(`installPath must be absolute: ${installPath}`)
    await rm(installPath, { force: true })
    return this.storage(ctx.body.mountPath ?? dirname(installPath))
  }

  async storageCapacity(ctx: Ctx<'KvmPrimaryStorageCapacity'>) {
    const path = ctx.body.mountPath ?? this.opts.storageRoot
    if (!path) throw new AgentError('no mountPath in the command and the agent was started without --storage-root')
    return this.storage(path)
  }

  async close(): Promise<void> {}

  private async storage(path: string) {
    return capacityOf(path).catch((err: Error) => {
      throw new AgentError(`cannot read capacity of ${path}: ${err.message}`)
    })
  }

  private async libvirtVersion(signal: AbortSignal): Promise<string> {
    const { stdout } = await run(this.virsh, ['--version'], signal)
    return stdout.trim()
  }

  private async qemuVersion(signal: AbortSignal): Promise<string> {
    for (const bin of ['qemu-system-x86_64', '/usr/libexec/qemu-kvm', 'qemu-kvm', 'qemu-system-aarch64']) {
      const out = await run(bin, ['--version'], signal).catch(() => undefined)
      const version = out && versionIn(out.stdout)
      if (version) return version
    }
    throw new AgentError('no qemu binary found (tried qemu-system-x86_64, /usr/libexec/qemu-kvm, qemu-kvm, qemu-system-aarch64)')
  }

  private async domState(uuid: string, signal: AbortSignal): Promise<VmState> {
    try {
      const { stdout } = await run(this.virsh, ['domstate', uuid], signal)
      return DOMAIN_STATES[stdout.trim().toLowerCase()] ?? 'NoState'
    } catch (err) {
      if (isMissingDomain(err)) return 'Shutdown'
      throw err
    }
  }

  private async undefine(uuid: string, signal: AbortSignal) {
    await this.virshTolerant(['undefine', uuid], signal)
    return {}
  }

  /** virsh commands on a domain that may already be gone or stopped: those errors mean "done". */
  private async virshTolerant(args: string[], signal: AbortSignal): Promise<void> {
    try {
      await run(this.virsh, args, signal)
    } catch (err) {
      if (isMissingDomain(err) || /domain is not running/i.test(String((err as Error).message))) return
      throw err
    }
  }
}

function isMissingDomain(err: unknown): boolean {
  return err instanceof AgentError && /failed to get domain|domain not found|no domain with matching/i.test(err.message)
}

function versionIn(text: string): string | undefined {
  return /(\d+\.\d+(?:\.\d+)?)/.exec(text)?.[1]
}

function notImplemented(path: string, what: string): AgentError {
  return new AgentError(`${path} is not implemented by the libvirt backend yet (needs ${what}); use the simulator backend`)
}

// Volume snapshot commands of the kvm agent (upstream kvmagent's take/merge snapshot, local storage's revert and
// create-template-from-volume): on the simulator they move recorded files and sizes; on a real host they are qemu-img
// on qcow2 files. The real backend works on files only: a Running VM's volume (live snapshot or merge, which needs
// libvirt's blockcommit/pivot) is refused with a clear error.
import { mkdir, stat } from 'node:fs/promises';
import { dirname, isAbsolute } from 'node:path';
import { AgentError } from '../lib/errors.js';
import { run } from '../lib/exec.js';
import type { Ctx } from '../lib/handler.js';
import type { HandlerResult } from '../lib/protocol.js';
import type { SimulatedHost, SimulatedHosts } from '../simulator/hosts.js';
import type { KvmBackend } from './backend.js';
import { LibvirtKvmBackend } from './libvirt-backend.js';
import { SimulatorKvmBackend } from './simulator-backend.js';

export interface SnapshotOps {
  takeSnapshot(ctx: Ctx<'KvmVolumeTakeSnapshot'>): Promise<HandlerResult<'KvmVolumeTakeSnapshot'>>;
  mergeSnapshot(ctx: Ctx<'KvmVolumeMergeSnapshot'>): Promise<HandlerResult<'KvmVolumeMergeSnapshot'>>;
  revert(ctx: Ctx<'KvmVolumeRevertFromSnapshot'>): Promise<HandlerResult<'KvmVolumeRevertFromSnapshot'>>;
  flatten(ctx: Ctx<'KvmVolumeFlatten'>): Promise<HandlerResult<'KvmVolumeFlatten'>>;
}

export function snapshotOpsFor(backend: KvmBackend): SnapshotOps {
  if (backend instanceof SimulatorKvmBackend) return new SimulatedSnapshotOps(backend.hosts);
  if (backend instanceof LibvirtKvmBackend) return new QemuImgSnapshotOps(backend.qemuImgBinary);
  const unsupported = async (): Promise<never> => {
    throw new AgentError(`volume snapshots are not implemented on the ${backend.name} backend`);
  };
  return { takeSnapshot: unsupported, mergeSnapshot: unsupported, revert: unsupported, flatten: unsupported };
}

const MiB = 1024 ** 2;

/**
 * The simulator: files are `installPath → bytes` on the simulated host. A frozen file keeps its bytes; a new
 * overlay counts as what a guest writes before the next snapshot: 1 MiB (or the volume's size when smaller).
 */
export class SimulatedSnapshotOps implements SnapshotOps {
  constructor(private readonly hosts: SimulatedHosts) {}

  async takeSnapshot(ctx: Ctx<'KvmVolumeTakeSnapshot'>) {
    const host = this.hosts.require(ctx.target);
    const { volumeInstallPath, newVolumeInstallPath, snapshotInstallPath, fullSnapshot, volumeSize = 0 } = ctx.body;
    const current = host.volumes.get(volumeInstallPath) ?? volumeSize;
    const overlay = Math.min(volumeSize || MiB, MiB);
    if (fullSnapshot) {
      if (!snapshotInstallPath) throw new AgentError('a full snapshot needs snapshotInstallPath');
      const size = Math.max(volumeSize, current);
      this.ensureRoom(host, size + overlay);
      host.volumes.set(snapshotInstallPath, size);
      host.volumes.set(newVolumeInstallPath, overlay);
      this.repoint(host, ctx.body.volumeUuid, newVolumeInstallPath);
      return { snapshotInstallPath, newVolumeInstallPath, size, ...this.capacity(host) };
    }
    this.ensureRoom(host, overlay);
    host.volumes.set(volumeInstallPath, current);
    host.volumes.set(newVolumeInstallPath, overlay);
    this.repoint(host, ctx.body.volumeUuid, newVolumeInstallPath);
    return { snapshotInstallPath: volumeInstallPath, newVolumeInstallPath, size: current, ...this.capacity(host) };
  }

  async mergeSnapshot(ctx: Ctx<'KvmVolumeMergeSnapshot'>) {
    const host = this.hosts.require(ctx.target);
    if (!host.volumes.has(ctx.body.volumeInstallPath)) host.volumes.set(ctx.body.volumeInstallPath, MiB);
    return this.capacity(host);
  }

  async revert(ctx: Ctx<'KvmVolumeRevertFromSnapshot'>) {
    const host = this.hosts.require(ctx.target);
    const { newVolumeInstallPath, volumeSize = 0 } = ctx.body;
    const overlay = Math.min(volumeSize || MiB, MiB);
    this.ensureRoom(host, overlay);
    host.volumes.set(newVolumeInstallPath, overlay);
    return { newVolumeInstallPath, ...this.capacity(host) };
  }

  async flatten(ctx: Ctx<'KvmVolumeFlatten'>) {
    const host = this.hosts.require(ctx.target);
    const { installPath, targetInstallPath, volumeSize } = ctx.body;
    const size = volumeSize ?? host.volumes.get(installPath) ?? 0;
    this.ensureRoom(host, size);
    host.volumes.set(targetInstallPath, size);
    return { size, ...this.capacity(host) };
  }

  /** A Running VM's disk follows the volume to its new file (what libvirt's live snapshot does). */
  private repoint(host: SimulatedHost, volumeUuid: string, installPath: string): void {
    for (const vm of host.vms.values()) {
      if (vm.rootVolume?.volumeUuid === volumeUuid) vm.rootVolume = { ...vm.rootVolume, installPath };
      vm.dataVolumes = vm.dataVolumes.map((v) => (v.volumeUuid === volumeUuid ? { ...v, installPath } : v));
    }
  }

  private ensureRoom(host: SimulatedHost, bytes: number): void {
    const available = host.primaryStorageCapacity - this.hosts.usedStorage(host);
    if (bytes > available) throw new AgentError(`not enough space on simulated primary storage: need ${bytes}, have ${available}`);
  }

  private capacity(host: SimulatedHost) {
    return { totalCapacity: host.primaryStorageCapacity, availableCapacity: Math.max(0, host.primaryStorageCapacity - this.hosts.usedStorage(host)) };
  }
}

/** A real host: qemu-img on the files; a volume in use by a Running VM is refused. */
export class QemuImgSnapshotOps implements SnapshotOps {
  constructor(private readonly qemuImg: string) {}

  async takeSnapshot(ctx: Ctx<'KvmVolumeTakeSnapshot'>) {
    const { volumeInstallPath, newVolumeInstallPath, snapshotInstallPath, fullSnapshot, vmUuid } = ctx.body;
    refuseLive(vmUuid, 'snapshots');
    absolute(volumeInstallPath, newVolumeInstallPath, snapshotInstallPath);
    let frozen = volumeInstallPath;
    if (fullSnapshot) {
      if (!snapshotInstallPath) throw new AgentError('a full snapshot needs snapshotInstallPath');
      await mkdir(dirname(snapshotInstallPath), { recursive: true });
      await run(this.qemuImg, ['convert', '-O', 'qcow2', volumeInstallPath, snapshotInstallPath], ctx.signal);
      frozen = snapshotInstallPath;
    }
    await mkdir(dirname(newVolumeInstallPath), { recursive: true });
    await run(this.qemuImg, ['create', '-q', '-f', 'qcow2', '-b', frozen, '-F', 'qcow2', newVolumeInstallPath], ctx.signal);
    return { snapshotInstallPath: frozen, newVolumeInstallPath, size: (await stat(frozen)).size };
  }

  async mergeSnapshot(ctx: Ctx<'KvmVolumeMergeSnapshot'>) {
    const { volumeInstallPath, baseInstallPath, vmUuid } = ctx.body;
    refuseLive(vmUuid, 'snapshot merges');
    absolute(volumeInstallPath, baseInstallPath);
    const base = baseInstallPath ? ['-b', baseInstallPath, '-F', 'qcow2'] : ['-b', ''];
    await run(this.qemuImg, ['rebase', '-f', 'qcow2', ...base, volumeInstallPath], ctx.signal);
    return {};
  }

  async revert(ctx: Ctx<'KvmVolumeRevertFromSnapshot'>) {
    const { snapshotInstallPath, newVolumeInstallPath } = ctx.body;
    absolute(snapshotInstallPath, newVolumeInstallPath);
    await mkdir(dirname(newVolumeInstallPath), { recursive: true });
    await run(this.qemuImg, ['create', '-q', '-f', 'qcow2', '-b', snapshotInstallPath, '-F', 'qcow2', newVolumeInstallPath], ctx.signal);
    return { newVolumeInstallPath };
  }

  async flatten(ctx: Ctx<'KvmVolumeFlatten'>) {
    const { installPath, targetInstallPath } = ctx.body;
    absolute(installPath, targetInstallPath);
    await mkdir(dirname(targetInstallPath), { recursive: true });
    await run(this.qemuImg, ['convert', '-O', 'qcow2', installPath, targetInstallPath], ctx.signal);
    return { size: (await stat(targetInstallPath)).size };
  }
}

function refuseLive(vmUuid: string | undefined, what: string): void {
  if (vmUuid) throw new AgentError(`live ${what} of a Running VM's volume are not implemented on the libvirt backend (VM ${vmUuid}): stop the VM first`);
}

function absolute(...paths: Array<string | undefined>): void {
  for (const p of paths) if (p !== undefined && !isAbsolute(p)) throw new AgentError(`paths must be absolute: ${p}`);
}

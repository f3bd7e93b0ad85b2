// kvm backend that simulates many hosts in memory, one per X-Zstack-Target-Uuid.
import { AgentError, BadRequestError } from '../lib/errors.js';
import type { Ctx } from '../lib/handler.js';
import type { VmState } from '../lib/protocol.js';
import type { FaultStore } from '../simulator/faults.js';
import { libvirtState, SimulatedHosts } from '../simulator/hosts.js';
import type { KvmBackend } from './backend.js';

/** Where NFS primary storage is mounted (upstream's path); a volume under it needs the mount. */
const NFS_MOUNT_ROOT = '/opt/zstack/nfsprimarystorage/';
const NFS_DEFAULT_CAPACITY = 10 * 1024 ** 4;
const sum = (sizes: Map<string, number>) => [...sizes.values()].reduce((a, b) => a + b, 0);

export const SIMULATED_VERSIONS = { libvirtVersion: '1.2.17', qemuVersion: '2.3.0', qemuImgVersion: '2.3.0' };

export class SimulatorKvmBackend implements KvmBackend {
  readonly name = 'simulator';

  constructor(
    readonly hosts: SimulatedHosts,
    private readonly faults?: FaultStore,
  ) {}

  async connect(ctx: Ctx<'KvmHostConnect'>) {
    const { hostUuid, simulatorCpuNum, simulatorCpuSpeed, simulatorMemory } = ctx.body;
    const host = this.hosts.require(ctx.target || hostUuid);
    host.connectedAs = hostUuid;
    if (simulatorCpuNum !== undefined) host.cpuNum = simulatorCpuNum;
    if (simulatorCpuSpeed !== undefined) host.cpuSpeed = simulatorCpuSpeed;
    if (simulatorMemory !== undefined) host.totalMemory = simulatorMemory;
    return { libvirtVersion: SIMULATED_VERSIONS.libvirtVersion, qemuVersion: SIMULATED_VERSIONS.qemuVersion };
  }

  async ping(ctx: Ctx<'KvmHostPing'>) {
    const host = this.hosts.require(ctx.target);
    return host.connectedAs === undefined ? {} : { hostUuid: host.connectedAs };
  }

  async capacity(ctx: Ctx<'KvmHostCapacity'>) {
    const host = this.hosts.require(ctx.target);
    return { cpuNum: host.cpuNum, cpuSpeed: host.cpuSpeed, totalMemory: host.totalMemory, ...this.hosts.used(host) };
  }

  async fact(_ctx: Ctx<'KvmHostFact'>) {
    return {
      qemuImgVersion: SIMULATED_VERSIONS.qemuImgVersion,
      libvirtVersion: SIMULATED_VERSIONS.libvirtVersion,
      hvmCpuFlag: 'vmx' as const,
      cpuModelName: 'ZStack-TS simulated CPU',
      osDistribution: 'zstack-simulator',
      osVersion: '1.1',
    };
  }

  async startVm(ctx: Ctx<'KvmVmStart'>) {
    const host = this.hosts.require(ctx.target);
    const cmd = ctx.body;
    const existing = host.vms.get(cmd.vmInstanceUuid);
    if (existing?.state === 'Running') return {}; // idempotent, like starting a running domain
    if (existing?.state === 'Paused') {
      this.hosts.setState(host, existing, 'Running');
      return {};
    }
    host.vms.set(cmd.vmInstanceUuid, {
      uuid: cmd.vmInstanceUuid,
      name: cmd.vmName,
      state: 'Running',
      memory: cmd.memory,
      cpuNum: cmd.cpuNum,
      cpuSpeed: cmd.cpuSpeed ?? 0,
      rootVolume: cmd.rootVolume,
      dataVolumes: [...(cmd.dataVolumes ?? [])],
      nics: [...(cmd.nics ?? [])],
      bootDev: [...(cmd.bootDev ?? ['hd'])],
      ...(cmd.bootIso ? { iso: cmd.bootIso } : {}),
    });
    return {};
  }

  async stopVm(ctx: Ctx<'KvmVmStop'>) {
    const host = this.hosts.require(ctx.target);
    const vm = host.vms.get(ctx.body.uuid);
    if (vm) this.hosts.setState(host, vm, 'Stopped'); // absent or stopped: already where the caller wants it
    return {};
  }

  async rebootVm(ctx: Ctx<'KvmVmReboot'>) {
    const host = this.hosts.require(ctx.target);
    const vm = this.hosts.liveVm(host, ctx.body.uuid);
    this.hosts.setState(host, vm, 'Running');
    return {};
  }

  async destroyVm(ctx: Ctx<'KvmVmDestroy'>) {
    const host = this.hosts.require(ctx.target);
    this.hosts.removeVm(host, ctx.body.uuid);
    return {};
  }

  async vmSync(ctx: Ctx<'KvmVmSync'>) {
    const host = this.hosts.require(ctx.target);
    const states: Record<string, VmState> = {};
    for (const vm of host.vms.values()) if (vm.state !== 'Stopped') states[vm.uuid] = vm.state;
    return { states };
  }

  async checkState(ctx: Ctx<'KvmVmCheckState'>) {
    const host = this.hosts.require(ctx.target);
    const states: Record<string, VmState> = {};
    for (const uuid of ctx.body.vmUuids) states[uuid] = libvirtState(host.vms.get(uuid));
    return { states };
  }

  async attachDataVolume(ctx: Ctx<'KvmVmAttachDataVolume'>) {
    const host = this.hosts.require(ctx.target);
    const vm = this.hosts.liveVm(host, ctx.body.vmInstanceUuid);
    const volume = ctx.body.volume;
    if (vm.dataVolumes.some((v) => v.volumeUuid === volume.volumeUuid)) return {};
    const taken = vm.rootVolume?.deviceId === volume.deviceId || vm.dataVolumes.some((v) => v.deviceId === volume.deviceId);
    if (taken) throw new AgentError(`device id ${volume.deviceId} is already used on VM ${vm.uuid}`);
    vm.dataVolumes.push(volume);
    return {};
  }

  async detachDataVolume(ctx: Ctx<'KvmVmDetachDataVolume'>) {
    const host = this.hosts.require(ctx.target);
    const vm = this.hosts.vm(host, ctx.body.vmInstanceUuid);
    vm.dataVolumes = vm.dataVolumes.filter((v) => v.volumeUuid !== ctx.body.volume.volumeUuid);
    return {};
  }

  async attachNic(ctx: Ctx<'KvmVmAttachNic'>) {
    const host = this.hosts.require(ctx.target);
    const vm = this.hosts.liveVm(host, ctx.body.vmUuid);
    const nic = ctx.body.nic;
    if (vm.nics.some((n) => n.mac === nic.mac)) return {};
    if (vm.nics.some((n) => n.deviceId === nic.deviceId)) throw new AgentError(`NIC device id ${nic.deviceId} is already used on VM ${vm.uuid}`);
    vm.nics.push(nic);
    return {};
  }

  async detachNic(ctx: Ctx<'KvmVmDetachNic'>) {
    const host = this.hosts.require(ctx.target);
    const vm = this.hosts.vm(host, ctx.body.vmUuid);
    host.securityGroupRules.forget(vm.nics.filter((n) => n.mac === ctx.body.nic.mac).map((n) => n.uuid));
    vm.nics = vm.nics.filter((n) => n.mac !== ctx.body.nic.mac);
    return {};
  }

  /** A simulated host has no DHCP server to fill: the command is recorded, nothing else. */
  async applyFlatDhcp(_ctx: Ctx<'KvmFlatDhcpApply'>) {
    return {};
  }

  async attachIso(ctx: Ctx<'KvmVmAttachIso'>) {
    const host = this.hosts.require(ctx.target);
    const vm = this.hosts.liveVm(host, ctx.body.vmUuid);
    if (!ctx.body.iso) throw new BadRequestError('attaching an ISO needs iso');
    if (vm.iso && vm.iso.path !== ctx.body.iso.path) throw new AgentError(`VM ${vm.uuid} already has ISO ${vm.iso.path} in its CD-ROM drive`);
    vm.iso = ctx.body.iso;
    return {};
  }

  async detachIso(ctx: Ctx<'KvmVmDetachIso'>) {
    const vm = this.hosts.require(ctx.target).vms.get(ctx.body.vmUuid);
    if (vm) delete vm.iso;
    return {};
  }

  /** A simulated host runs nothing: the script is in the command records; the answer is a clean exit. */
  async runShell(_ctx: Ctx<'KvmHostShell'>) {
    return { returnCode: 0, stdout: '', stderr: '' };
  }

  async getVncPort(ctx: Ctx<'KvmVmGetVncPort'>) {
    const host = this.hosts.require(ctx.target);
    const vm = this.hosts.liveVm(host, ctx.body.vmUuid);
    const port = await this.hosts.vnc.open(vm.uuid);
    // The VM may have been stopped while the listener was opening.
    if (host.vms.get(vm.uuid)?.state !== 'Running' && host.vms.get(vm.uuid)?.state !== 'Paused') {
      this.hosts.vnc.close(vm.uuid);
      throw new AgentError(`VM ${vm.uuid} stopped while its console was opening`);
    }
    return { port, host: this.hosts.vnc.host, protocol: 'vnc' as const };
  }

  async migrateVm(ctx: Ctx<'KvmVmMigrate'>) {
    const source = this.hosts.require(ctx.target);
    const { vmUuid, destHostUuid } = ctx.body;
    if (!destHostUuid) throw new BadRequestError('the simulator needs destHostUuid to know which simulated host receives the VM');
    const vm = this.hosts.liveVm(source, vmUuid);
    if (destHostUuid === source.uuid) throw new AgentError(`VM ${vmUuid} is already on host ${destHostUuid}`);
    const dest = this.hosts.get(destHostUuid);
    if (!dest?.connectedAs) throw new AgentError(`destination host ${destHostUuid} is not a connected simulated host`);
    if (this.faults?.get('host', destHostUuid)?.connected === false) {
      throw new AgentError(`cannot reach destination host ${destHostUuid} (simulated disconnect)`);
    }
    this.hosts.moveVm(source, dest, vm);
    return {};
  }

  async applySecurityGroupRules(ctx: Ctx<'KvmSecurityGroupApplyRules'>) {
    this.hosts.require(ctx.target).securityGroupRules.apply(ctx.body.ruleTOs);
    return {};
  }

  async refreshSecurityGroupRules(ctx: Ctx<'KvmSecurityGroupRefreshRulesOnHost'>) {
    this.hosts.require(ctx.target).securityGroupRules.refresh(ctx.body.ruleTOs);
    return {};
  }

  async createVolume(ctx: Ctx<'KvmPrimaryStorageVolumeCreate'>) {
    const host = this.hosts.require(ctx.target);
    const { installPath, size } = ctx.body;
    const onNfs = this.hosts.nfsExportOf(host, installPath);
    if (onNfs) {
      // On an NFS export: shared by every host that mounts it (a volume made here is seen by the others).
      const { nfs, key } = onNfs;
      if (!nfs.volumes.has(key)) {
        const available = nfs.totalCapacity - sum(nfs.volumes);
        if (size > available) throw new AgentError(`not enough space on simulated NFS ${nfs.url}: need ${size}, have ${available}`);
        nfs.volumes.set(key, size);
      }
      return { installPath, size, totalCapacity: nfs.totalCapacity, availableCapacity: nfs.totalCapacity - sum(nfs.volumes) };
    }
    if (installPath.startsWith(NFS_MOUNT_ROOT)) throw new AgentError(`no NFS primary storage holding ${installPath} is mounted on host ${host.uuid}`);
    const existing = host.volumes.get(installPath);
    if (existing !== undefined && existing !== size) throw new AgentError(`volume ${installPath} already exists with another size`);
    if (existing === undefined) {
      const available = host.primaryStorageCapacity - this.hosts.usedStorage(host);
      if (size > available) throw new AgentError(`not enough space on simulated primary storage: need ${size}, have ${available}`);
      host.volumes.set(installPath, size);
    }
    return { installPath, size, ...this.storage(host.uuid) };
  }

  async deleteVolume(ctx: Ctx<'KvmPrimaryStorageVolumeDelete'>) {
    const host = this.hosts.require(ctx.target);
    const onNfs = this.hosts.nfsExportOf(host, ctx.body.installPath);
    if (onNfs) {
      onNfs.nfs.volumes.delete(onNfs.key);
      return { totalCapacity: onNfs.nfs.totalCapacity, availableCapacity: onNfs.nfs.totalCapacity - sum(onNfs.nfs.volumes) };
    }
    host.volumes.delete(ctx.body.installPath);
    return this.storage(host.uuid);
  }

  async storageCapacity(ctx: Ctx<'KvmPrimaryStorageCapacity'>) {
    return this.storage(this.hosts.require(ctx.target).uuid);
  }

  async nfsMount(ctx: Ctx<'KvmNfsPrimaryStorageMount'>) {
    const host = this.hosts.require(ctx.target);
    const { url, mountPath } = ctx.body;
    if (!url || !/^[^:/]+:\/./.test(url)) throw new AgentError(`cannot mount ${url ?? '(no url)'}: not an NFS export (host:/path)`);
    const mounted = host.nfsMounts.get(mountPath);
    if (mounted !== undefined && mounted !== url) throw new AgentError(`${mountPath} is already the mount point of ${mounted}`);
    let nfs = this.hosts.nfsExports.get(url);
    if (!nfs) this.hosts.nfsExports.set(url, (nfs = { url, totalCapacity: NFS_DEFAULT_CAPACITY, volumes: new Map() }));
    host.nfsMounts.set(mountPath, url);
    return { totalCapacity: nfs.totalCapacity, availableCapacity: nfs.totalCapacity - sum(nfs.volumes) };
  }

  async nfsUnmount(ctx: Ctx<'KvmNfsPrimaryStorageUnmount'>) {
    this.hosts.require(ctx.target).nfsMounts.delete(ctx.body.mountPath);
    return {};
  }

  async nfsCapacity(ctx: Ctx<'KvmNfsPrimaryStorageGetCapacity'>) {
    const host = this.hosts.require(ctx.target);
    const url = host.nfsMounts.get(ctx.body.mountPath);
    const nfs = url === undefined ? undefined : this.hosts.nfsExports.get(url);
    if (!nfs) throw new AgentError(`${ctx.body.mountPath} is not mounted on host ${host.uuid}`);
    return { totalCapacity: nfs.totalCapacity, availableCapacity: nfs.totalCapacity - sum(nfs.volumes) };
  }

  /** Local storage migration: the destination simulated host gets the file (the source keeps it until deleted). */
  async copyLocalVolume(ctx: Ctx<'KvmLocalStorageVolumeCopy'>) {
    const host = this.hosts.require(ctx.target);
    const { installPath, destHostUuid, destInstallPath } = ctx.body;
    const size = host.volumes.get(installPath);
    if (size === undefined) throw new AgentError(`no volume file ${installPath} on host ${host.uuid}`);
    const dest = this.hosts.get(destHostUuid);
    if (!dest) throw new AgentError(`destination host ${destHostUuid} is unknown to this agent`);
    const available = dest.primaryStorageCapacity - this.hosts.usedStorage(dest);
    if (!dest.volumes.has(destInstallPath) && size > available) {
      throw new AgentError(`not enough space on host ${destHostUuid}: need ${size}, have ${available}`);
    }
    dest.volumes.set(destInstallPath, size);
    return this.storage(host.uuid);
  }

  async checkLocalBits(ctx: Ctx<'KvmLocalStorageCheckBits'>) {
    const size = this.hosts.require(ctx.target).volumes.get(ctx.body.installPath);
    return size === undefined ? { existing: false } : { existing: true, size };
  }

  async close(): Promise<void> {
    await this.hosts.reset();
  }

  private storage(hostUuid: string) {
    const host = this.hosts.require(hostUuid);
    const total = host.primaryStorageCapacity;
    return { totalCapacity: total, availableCapacity: Math.max(0, total - this.hosts.usedStorage(host)) };
  }
}

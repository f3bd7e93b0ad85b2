// In-memory simulated hosts and their VMs (plain Maps, no timers: 10,000 VMs in one process must stay cheap).
import { AgentError, BadRequestError } from '../lib/errors.js';
import type { NicTO, Schemas, VmState, VolumeTO } from '../lib/protocol.js';
import { SecurityGroupRuleTable } from '../kvm/security-group-rules.js';
import type { VncConsoles } from './vnc.js';

export type SimulatedVmState = Schemas['SimulatedVmState'];

export interface SimulatedVm {
  uuid: string;
  name?: string;
  state: SimulatedVmState;
  memory: number;
  cpuNum: number;
  cpuSpeed: number;
  rootVolume?: VolumeTO;
  dataVolumes: VolumeTO[];
  nics: NicTO[];
  /** The boot devices of its last start. */
  bootDev?: string[];
  /** The ISO in its CD-ROM drive. */
  iso?: Schemas['IsoTO'];
}

export interface SimulatedHost {
  uuid: string;
  /** The hostUuid of the last /host/connect; undefined until then (ping then reports no hostUuid). */
  connectedAs?: string;
  cpuNum: number;
  cpuSpeed: number;
  totalMemory: number;
  primaryStorageCapacity: number;
  /** Volume files on the host's simulated primary storage: installPath → virtual size. */
  volumes: Map<string, number>;
  vms: Map<string, SimulatedVm>;
  /** Security group rule sets applied on the host, per VM NIC. */
  securityGroupRules: SecurityGroupRuleTable;
  /** NFS exports mounted on the host: mountPath → export url. */
  nfsMounts: Map<string, string>;
}

/** A simulated NFS server's export, shared by every host that mounts it: its size and the volume files on it. */
export interface SimulatedNfsExport {
  url: string;
  totalCapacity: number;
  volumes: Map<string, number>;
}

const GiB = 1024 ** 3;
const TiB = 1024 ** 4;
export const HOST_DEFAULTS = { cpuNum: 32, cpuSpeed: 2600, totalMemory: 64 * GiB, primaryStorageCapacity: 10 * TiB };

export class SimulatedHosts {
  private readonly hosts = new Map<string, SimulatedHost>();
  /** NFS exports by url (10 TiB each), made on first mount. */
  readonly nfsExports = new Map<string, SimulatedNfsExport>();

  constructor(readonly vnc: VncConsoles) {}

  get(uuid: string): SimulatedHost | undefined {
    return this.hosts.get(uuid);
  }

  /** The host a command is for; created on first use so knobs can be set before /host/connect. */
  require(uuid: string): SimulatedHost {
    if (uuid === '') throw new BadRequestError('X-Zstack-Target-Uuid is required: the simulator serves many hosts');
    let host = this.hosts.get(uuid);
    if (!host) {
      host = { uuid, ...HOST_DEFAULTS, volumes: new Map(), vms: new Map(), securityGroupRules: new SecurityGroupRuleTable(), nfsMounts: new Map() };
      this.hosts.set(uuid, host);
    }
    return host;
  }

  /** A VM of the host, or an error naming both. */
  vm(host: SimulatedHost, vmUuid: string): SimulatedVm {
    const vm = host.vms.get(vmUuid);
    if (!vm) throw new AgentError(`VM ${vmUuid} not found on simulated host ${host.uuid}`);
    return vm;
  }

  /** A VM that is up (Running or Paused), as hot-plug and console operations need. */
  liveVm(host: SimulatedHost, vmUuid: string): SimulatedVm {
    const vm = this.vm(host, vmUuid);
    if (vm.state === 'Stopped') throw new AgentError(`VM ${vmUuid} is stopped on simulated host ${host.uuid}`);
    return vm;
  }

  setState(host: SimulatedHost, vm: SimulatedVm, state: SimulatedVmState): void {
    vm.state = state;
    if (state === 'Stopped') this.vnc.close(vm.uuid);
  }

  removeVm(host: SimulatedHost, vmUuid: string): void {
    const vm = host.vms.get(vmUuid);
    if (!vm) return;
    host.vms.delete(vmUuid);
    host.securityGroupRules.forget(vm.nics.map((n) => n.uuid));
    this.vnc.close(vmUuid);
  }

  /** Moves a VM record to another host (migration); its console listener closes as a real one would. */
  moveVm(from: SimulatedHost, to: SimulatedHost, vm: SimulatedVm): void {
    from.vms.delete(vm.uuid);
    to.vms.set(vm.uuid, vm);
    this.vnc.close(vm.uuid);
  }

  used(host: SimulatedHost): { usedCpu: number; usedMemory: number } {
    let usedCpu = 0;
    let usedMemory = 0;
    for (const vm of host.vms.values()) {
      if (vm.state === 'Stopped') continue;
      usedCpu += vm.cpuNum * vm.cpuSpeed;
      usedMemory += vm.memory;
    }
    return { usedCpu, usedMemory };
  }

  usedStorage(host: SimulatedHost): number {
    let used = 0;
    for (const size of host.volumes.values()) used += size;
    return used;
  }

  /** The NFS export whose mount holds `path` on this host, with the path relative to the export. */
  nfsExportOf(host: SimulatedHost, path: string): { nfs: SimulatedNfsExport; key: string } | undefined {
    for (const [mountPath, url] of host.nfsMounts) {
      if (!path.startsWith(`${mountPath}/`)) continue;
      const nfs = this.nfsExports.get(url);
      if (nfs) return { nfs, key: path.slice(mountPath.length) };
    }
    return undefined;
  }

  async reset(): Promise<void> {
    this.hosts.clear();
    this.nfsExports.clear();
    await this.vnc.closeAll();
  }
}

/** Upstream reports libvirt states; a stopped (undefined) domain is Shutdown. */
export function libvirtState(vm: SimulatedVm | undefined): VmState {
  if (!vm || vm.state === 'Stopped') return 'Shutdown';
  return vm.state;
}

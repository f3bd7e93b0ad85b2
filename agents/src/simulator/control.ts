// The simulator's control API (/simulator/*): fault knobs, command records and state inspection. Only the
// operations for the kinds this process simulates are mounted.
import type { SimulatedBackupStorages } from '../backup-storage/simulated-backend.js';
import type { DownloadTracker } from '../backup-storage/progress.js';
import { AgentError } from '../lib/errors.js';
import type { AgentPart, HandlerMap } from '../lib/handler.js';
import type { RecordStore } from '../lib/records.js';
import type { VirtualRouters } from '../virtual-router/state.js';
import type { FaultStore } from './faults.js';
import type { SimulatedHosts } from './hosts.js';
import { storageClusterControl, type SimulatedStorageClusters } from './storage-clusters.js';

export interface SimulatorParts {
  faults: FaultStore;
  records: RecordStore;
  hosts?: SimulatedHosts;
  backupStorages?: SimulatedBackupStorages;
  downloads?: DownloadTracker;
  routers?: VirtualRouters;
  storageClusters?: SimulatedStorageClusters;
}

export function simulatorControlPart(p: SimulatorParts): AgentPart {
  const handlers: HandlerMap = {
    SimulatorReset: async () => {
      p.faults.clear();
      p.records.clear();
      await p.hosts?.reset();
      await p.backupStorages?.reset();
      p.downloads?.clear();
      p.routers?.clear();
      p.storageClusters?.clear();
      return {};
    },
  };
  const { hosts, backupStorages, routers } = p;
  if (hosts) Object.assign(handlers, hostControl(p, hosts));
  if (backupStorages) Object.assign(handlers, backupStorageControl(p, backupStorages));
  if (routers) Object.assign(handlers, virtualRouterControl(p, routers));
  if (p.storageClusters) Object.assign(handlers, storageClusterControl(p.storageClusters, p.faults));
  return { handlers };
}

function hostControl(p: SimulatorParts, hosts: SimulatedHosts): HandlerMap {
  return {
    SimulatorHostConfig: async (ctx) => {
      const host = hosts.require(ctx.body.hostUuid);
      if (ctx.body.primaryStorageCapacity !== undefined) host.primaryStorageCapacity = ctx.body.primaryStorageCapacity;
      return { config: p.faults.update('host', host.uuid, ctx.body) };
    },
    SimulatorHostRecords: async (ctx) => ({ records: p.records.list('host', ctx.body.hostUuid, ctx.body.clear) }),
    SimulatorVms: async (ctx) => {
      const host = hosts.get(ctx.body.hostUuid);
      if (!host) throw new AgentError(`no simulated host ${ctx.body.hostUuid}`);
      const vms = [...host.vms.values()].map((vm) => {
        const vncPort = hosts.vnc.portOf(vm.uuid);
        return { ...vm, dataVolumes: [...vm.dataVolumes], nics: [...vm.nics], ...(vncPort ? { vncPort } : {}) };
      });
      return { hostUuid: host.uuid, connected: host.connectedAs !== undefined, vms };
    },
    SimulatorHostVolumes: async (ctx) => {
      const host = hosts.get(ctx.body.hostUuid);
      if (!host) throw new AgentError(`no simulated host ${ctx.body.hostUuid}`);
      return { volumes: [...host.volumes].map(([installPath, size]) => ({ installPath, size })) };
    },
    SimulatorHostSecurityGroupRules: async (ctx) => {
      const host = hosts.get(ctx.body.hostUuid);
      if (!host) throw new AgentError(`no simulated host ${ctx.body.hostUuid}`);
      return { hostUuid: host.uuid, ruleSets: host.securityGroupRules.list() };
    },
    SimulatorVmUpdate: async (ctx) => {
      const { hostUuid, vmUuid, state } = ctx.body;
      const host = hosts.get(hostUuid);
      if (!host) throw new AgentError(`no simulated host ${hostUuid}`);
      const vm = hosts.vm(host, vmUuid);
      if (state === 'Absent') hosts.removeVm(host, vmUuid);
      else hosts.setState(host, vm, state);
      return {};
    },
  };
}

function backupStorageControl(p: SimulatorParts, storages: SimulatedBackupStorages): HandlerMap {
  return {
    SimulatorBackupStorageConfig: async (ctx) => {
      const { backupStorageUuid, totalCapacity, downloadSize, downloadDurationMs } = ctx.body;
      storages.configure(backupStorageUuid, { totalCapacity, downloadSize, downloadDurationMs });
      return { config: p.faults.update('backupstorage', backupStorageUuid, ctx.body) };
    },
    SimulatorBackupStorageRecords: async (ctx) => ({
      records: p.records.list('backupstorage', ctx.body.backupStorageUuid, ctx.body.clear),
    }),
    SimulatorBackupStorageState: async (ctx) => {
      const uuid = ctx.body.backupStorageUuid;
      const bs = storages.get(uuid);
      if (!bs) throw new AgentError(`no simulated backup storage ${uuid}`);
      return {
        ...(bs.storagePath ? { storagePath: bs.storagePath } : {}),
        files: [...bs.files.values()],
        downloads: p.downloads?.list(uuid) ?? [],
        ...(await storages.capacity(uuid)),
      };
    },
  };
}

function virtualRouterControl(p: SimulatorParts, routers: VirtualRouters): HandlerMap {
  return {
    SimulatorVirtualRouterConfig: async (ctx) => {
      routers.require(ctx.body.virtualRouterUuid);
      return { config: p.faults.update('virtualrouter', ctx.body.virtualRouterUuid, ctx.body) };
    },
    SimulatorVirtualRouterRecords: async (ctx) => ({
      records: p.records.list('virtualrouter', ctx.body.virtualRouterUuid, ctx.body.clear),
    }),
    SimulatorVirtualRouterState: async (ctx) => {
      const vr = routers.get(ctx.body.virtualRouterUuid);
      if (!vr) throw new AgentError(`no simulated virtual router ${ctx.body.virtualRouterUuid}`);
      return {
        initialized: vr.initializedAs !== undefined,
        nics: [...vr.nics.values()],
        dhcpEntries: [...vr.dhcp.values()],
        dns: [...vr.dns.values()],
        vips: [...(vr.nat?.vips.values() ?? [])],
        eips: [...(vr.nat?.eips.values() ?? [])],
        portForwardings: [...(vr.nat?.portForwardings.values() ?? [])],
        loadBalancers: [...(vr.lb?.values() ?? [])],
      };
    },
  };
}

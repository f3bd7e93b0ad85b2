// A VM's run-time lifecycle: start, stop, reboot, migrate — each under the VM's lock, checked against the state
// machine (states.ts) — and the stops other domains' events cause (a host deleted, an L2 network leaving a cluster).
import { and, eq, isNotNull } from 'drizzle-orm';
import { isUnreachable } from '../agent-client/index.js';
import { stopOnHostLater } from './gc.js';
import { toApiError, argErr } from '../core/errors.js';
import { runFlow } from '../core/flow.js';
import { l3Networks, vmInstances, vmNics, volumes } from '../db/schema/index.js';
import { allocateHost, migrationRequirement } from './allocation/host-allocator.js';
import { applyPendingCapacityChange } from './compute-ops.js';
import { hostCall } from './hypervisor.js';
import type { VmRow } from './inventory.js';
import { requireState } from './states.js';
import { vmLockKey, type Placement, type StartData, type VmOps } from './ops.js';

export async function start(svc: VmOps, uuid: string, placement: Placement): Promise<void> {
  await svc.withVm(uuid, async (vm) => {
    requireState(vm.state, 'StartVmInstance');
    if (vm.state === 'Running') return;
    if (vm.hostUuid) {
      // A Crashed VM still holds its host's capacity: give it back, the allocation takes it again.
      await svc.app.db.transaction(async (tx) => {
        await svc.app.use('hosts').releaseCapacity(tx, vm.hostUuid!, vm.cpuNum, vm.memorySize);
        await tx.update(vmInstances).set({ hostUuid: null, lastHostUuid: vm.hostUuid }).where(eq(vmInstances.uuid, uuid));
      });
    }
    // A ChangeInstanceOffering made while it ran takes effect now, before the start reserves CPU and memory.
    await applyPendingCapacityChange(svc.app, vm);
    await runFlow<StartData>('start-vm', svc.startFlowSteps(true), { vmUuid: uuid, placement, startOnHypervisor: true, psReserved: [], instantiated: [] });
  });
}

export async function stop(svc: VmOps, uuid: string, type: 'grace' | 'cold' = 'grace'): Promise<void> {
  await svc.withVm(uuid, (vm) => stopLocked(svc, vm, type));
}

export async function stopLocked(svc: VmOps, vm: VmRow, type: 'grace' | 'cold'): Promise<void> {
  requireState(vm.state, 'StopVmInstance');
  if (vm.state === 'Stopped') return;
  const hostUuid = vm.hostUuid;
  if (hostUuid) {
    // A cold stop works whatever the host's state: if the host cannot be reached now, the host-side stop
    // becomes a GC job (vm/gc.ts). A graceful stop needs the guest, so it needs the host.
    const host = await svc.app.use('hosts').get(hostUuid);
    const reachable = host?.status === 'Connected';
    if (!reachable && type === 'cold') {
      await svc.setState(vm, 'Stopping');
      if (host) await stopOnHostLater(svc.app, vm, hostUuid);
    } else {
      await svc.app.use('hosts').requireConnected(hostUuid);
      await svc.setState(vm, 'Stopping');
      try {
        await hostCall(svc.app, hostUuid, '/vm/stop', { uuid: vm.uuid, timeout: type === 'cold' ? 0 : 120 });
      } catch (e) {
        if (type !== 'cold' || !isUnreachable(e)) {
          await svc.setState({ ...vm, state: 'Stopping' }, vm.state);
          throw e;
        }
        await stopOnHostLater(svc.app, vm, hostUuid);
      }
    }
  }
  await svc.app.db.transaction(async (tx) => {
    if (hostUuid) await svc.app.use('hosts').releaseCapacity(tx, hostUuid, vm.cpuNum, vm.memorySize);
    await svc.setState({ ...vm, state: hostUuid ? 'Stopping' : vm.state }, 'Stopped', { hostUuid: null, lastHostUuid: hostUuid ?? vm.lastHostUuid }, tx);
  });
}

export async function reboot(svc: VmOps, uuid: string): Promise<void> {
  await svc.withVm(uuid, async (vm) => {
    requireState(vm.state, 'RebootVmInstance');
    const hostUuid = vm.hostUuid!;
    await svc.app.use('hosts').requireConnected(hostUuid);
    await svc.setState(vm, 'Rebooting');
    try {
      await hostCall(svc.app, hostUuid, '/vm/reboot', { uuid: vm.uuid, timeout: 120, bootDev: ['hd'] });
    } finally {
      await svc.setState({ ...vm, state: 'Rebooting' }, 'Running');
    }
  });
}

export async function migrate(svc: VmOps, uuid: string, destHostUuid?: string): Promise<void> {
  await svc.withVm(
    uuid,
    async (vm) => {
      requireState(vm.state, 'MigrateVm');
      const src = await svc.app.use('hosts').requireConnected(vm.hostUuid!);
      if (destHostUuid === src.uuid) throw argErr(`VM[uuid:${uuid}] is already on host[uuid:${destHostUuid}]`);
      if (destHostUuid) await svc.app.use('hosts').require(destHostUuid);
      const nics = await svc.nicsOf(uuid);
      const vols = await svc.volumesOf(uuid);
      // Migrating before the destination is reserved: reconciliation does not recompute the capacity of hosts
      // while a VM is Migrating (the destination's reservation is not on any VM row yet).
      await svc.setState(vm, 'Migrating');
      const dest = await allocateHost(svc.app, migrationRequirement(vm, src, nics, vols, destHostUuid)).catch(async (e) => {
        await svc.setState({ ...vm, state: 'Migrating' }, vm.state);
        throw e;
      });
      const release = () => svc.app.db.transaction((tx) => svc.app.use('hosts').releaseCapacity(tx, dest.uuid, vm.cpuNum, vm.memorySize));
      try {
        await hostCall(svc.app, src.uuid, '/vm/migrate', {
          vmUuid: uuid,
          destHostIp: dest.managementIp,
          srcHostIp: src.managementIp,
          destHostUuid: dest.uuid,
        });
      } catch (e) {
        await release();
        await svc.setState({ ...vm, state: 'Migrating' }, vm.state);
        throw e;
      }
      // The VM now runs on dest: its capacity moves in one transaction with the host reference.
      await svc.app.db.transaction(async (tx) => {
        await svc.app.use('hosts').releaseCapacity(tx, src.uuid, vm.cpuNum, vm.memorySize);
        await svc.setState(
          { ...vm, state: 'Migrating' },
          'Running',
          { hostUuid: dest.uuid, lastHostUuid: src.uuid, clusterUuid: dest.clusterUuid, zoneUuid: dest.zoneUuid },
          tx,
        );
      });
    },
    'vmInstanceUuid',
  );
}

/** A host is being deleted: its VMs stop (capacity back; the agent is told when it still answers). */
export async function stopForHostDeletion(svc: VmOps, vmUuids: string[]): Promise<void> {
  for (const uuid of vmUuids) {
    await svc.app.locks.withLock(vmLockKey(uuid), async () => {
      const vm = await svc.get(uuid);
      if (!vm || !vm.hostUuid) return;
      const hostUuid = vm.hostUuid;
      await hostCall(svc.app, hostUuid, '/vm/stop', { uuid, timeout: 0 }, 10_000).catch(() => undefined);
      await svc.app.db.transaction(async (tx) => {
        await svc.app.use('hosts').releaseCapacity(tx, hostUuid, vm.cpuNum, vm.memorySize);
        await svc.setState(vm, 'Stopped', { hostUuid: null, lastHostUuid: null, clusterUuid: null }, tx);
      });
    });
  }
}

/** Stops the VMs of the cluster that have a NIC on an L3 network of the L2 network. */
export async function stopUsingL2InCluster(svc: VmOps, l2Uuid: string, clusterUuid: string): Promise<void> {
  const rows = await svc.app.db
    .selectDistinct({ uuid: vmInstances.uuid })
    .from(vmInstances)
    .innerJoin(vmNics, eq(vmNics.vmInstanceUuid, vmInstances.uuid))
    .innerJoin(l3Networks, eq(l3Networks.uuid, vmNics.l3NetworkUuid))
    .where(and(eq(l3Networks.l2NetworkUuid, l2Uuid), eq(vmInstances.clusterUuid, clusterUuid), isNotNull(vmInstances.hostUuid)));
  for (const { uuid } of rows) {
    await stop(svc, uuid, 'cold').catch((e) =>
      console.warn(`[vm] stopping VM[uuid:${uuid}] (its L2 network leaves the cluster) failed:`, toApiError(e).message),
    );
  }
}

/**
 * Primary storage enters maintenance, or leaves a cluster (`clusterUuid`): every VM running there with a volume on it
 * stops (graceful, then cold).
 */
export async function stopUsingPrimaryStorage(svc: VmOps, psUuid: string, clusterUuid?: string): Promise<void> {
  const why = clusterUuid ? `leaves cluster[uuid:${clusterUuid}]` : 'enters maintenance';
  const rows = await svc.app.db
    .selectDistinct({ uuid: vmInstances.uuid })
    .from(vmInstances)
    .innerJoin(volumes, eq(volumes.vmInstanceUuid, vmInstances.uuid))
    .where(and(eq(volumes.primaryStorageUuid, psUuid), isNotNull(vmInstances.hostUuid), clusterUuid ? eq(vmInstances.clusterUuid, clusterUuid) : undefined));
  for (const { uuid } of rows) {
    await stop(svc, uuid, 'grace')
      .catch(() => stop(svc, uuid, 'cold'))
      .catch((e) => console.warn(`[vm] stopping VM[uuid:${uuid}] (its primary storage ${why}) failed:`, toApiError(e).message));
  }
}

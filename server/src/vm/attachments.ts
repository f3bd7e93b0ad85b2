// What is attached to a VM while it exists: NICs (attach an L3 network, detach a NIC) and data volumes.
import { and, asc, eq } from 'drizzle-orm';
import { notFound, err, toApiError } from '../core/errors.js';
import { l2ClusterRefs, l3Networks, primaryStorageClusterRefs, vmInstances, vmNics, volumes } from '../db/schema/index.js';
import { allocatePrimaryStorage } from './allocation/primary-storage-allocator.js';
import { hostCall, nicNetworks, nicTO, volumeTO } from './hypervisor.js';
import type { VolumeRow } from './inventory.js';
import { allocateNic, deleteNic, lowestFreeDeviceId } from './nics.js';
import { installPathOf } from './start-flow.js';
import { requireState } from './states.js';
import type { VmOps } from './ops.js';

export async function attachL3(svc: VmOps, vmUuid: string, l3Uuid: string, staticIp?: string): Promise<void> {
  await svc.withVm(
    vmUuid,
    async (vm) => {
      requireState(vm.state, 'AttachL3NetworkToVm');
      const nics = await svc.nicsOf(vmUuid);
      if (nics.some((n) => n.l3NetworkUuid === l3Uuid)) {
        throw err('SYS.1006', `unable to attach L3 network[uuid:${l3Uuid}] to VM[uuid:${vmUuid}]: the VM already has a NIC on it`);
      }
      const [l3] = await svc.app.db.select().from(l3Networks).where(eq(l3Networks.uuid, l3Uuid));
      if (!l3) throw notFound('L3NetworkVO', l3Uuid, 'l3NetworkUuid');
      if (l3.state === 'Disabled') throw err('SYS.1006', `unable to attach a L3 network. The L3 network[uuid:${l3Uuid}] is disabled`);
      if (vm.state === 'Running') {
        await svc.app.use('hosts').requireConnected(vm.hostUuid!);
        const [ref] = await svc.app.db
          .select()
          .from(l2ClusterRefs)
          .where(and(eq(l2ClusterRefs.l2NetworkUuid, l3.l2NetworkUuid), eq(l2ClusterRefs.clusterUuid, vm.clusterUuid!)));
        if (!ref) {
          throw err(
            'SYS.1006',
            `L2 network[uuid:${l3.l2NetworkUuid}] of L3 network[uuid:${l3Uuid}] is not attached to the cluster[uuid:${vm.clusterUuid}] of VM[uuid:${vmUuid}]`,
          );
        }
      }
      const nic = await allocateNic(svc.app, vm, {
        l3NetworkUuid: l3Uuid,
        deviceId: lowestFreeDeviceId(nics.map((n) => n.deviceId)),
        staticIp,
        usedFor: vm.type === 'ApplianceVm' ? 'ApplianceVm' : 'UserVm',
      });
      try {
        if (vm.state === 'Running') {
          await svc.applyNetworkServices(vm, [nic]);
          await hostCall(svc.app, vm.hostUuid!, '/vm/attachnic', { vmUuid, nic: nicTO(vm, nic, (await nicNetworks(svc.app, [nic])).get(l3Uuid)) });
        }
      } catch (e) {
        await svc.releaseNetworkServices(vm, [nic]);
        await deleteNic(svc.app, nic);
        throw e;
      }
      if (!vm.defaultL3NetworkUuid) {
        await svc.app.db.update(vmInstances).set({ defaultL3NetworkUuid: l3Uuid }).where(eq(vmInstances.uuid, vmUuid));
      }
    },
    'vmInstanceUuid',
  );
}

/**
 * Detaches a NIC; returns the VM's uuid (for the reply). `cascade` (its L3 network or IP range is being deleted):
 * no state check, the host is told on a best-effort basis, or not at all when `touchHost` is false.
 */
export async function detachNic(svc: VmOps, nicUuid: string, opts: { cascade?: boolean; touchHost?: boolean } = {}): Promise<string> {
  const [nic0] = await svc.app.db.select().from(vmNics).where(eq(vmNics.uuid, nicUuid));
  if (!nic0) throw notFound('VmNicVO', nicUuid, 'vmNicUuid');
  await svc.withVm(nic0.vmInstanceUuid, async (vm) => {
    const [nic] = await svc.app.db.select().from(vmNics).where(eq(vmNics.uuid, nicUuid));
    if (!nic) return;
    if (!opts.cascade) requireState(vm.state, 'DetachL3NetworkFromVm');
    if (vm.hostUuid && vm.state === 'Running' && opts.touchHost !== false) {
      const net = nic.l3NetworkUuid ? (await nicNetworks(svc.app, [nic])).get(nic.l3NetworkUuid) : undefined;
      const unplug = hostCall(svc.app, vm.hostUuid, '/vm/detachnic', { vmUuid: vm.uuid, nic: nicTO(vm, nic, net) });
      if (opts.cascade) await unplug.catch((e) => console.warn(`[vm] cascade: unplugging NIC[uuid:${nicUuid}] failed:`, toApiError(e).message));
      else await unplug;
    }
    await svc.releaseNetworkServices(vm, [nic]);
    await svc.app.db.transaction(async (tx) => {
      await deleteNic(svc.app, nic, tx);
      if (vm.defaultL3NetworkUuid === nic.l3NetworkUuid) {
        const [other] = await tx.select().from(vmNics).where(eq(vmNics.vmInstanceUuid, vm.uuid)).orderBy(asc(vmNics.deviceId)).limit(1);
        await tx
          .update(vmInstances)
          .set({ defaultL3NetworkUuid: other?.l3NetworkUuid ?? null, lastOpDate: new Date() })
          .where(eq(vmInstances.uuid, vm.uuid));
      }
    });
  });
  return nic0.vmInstanceUuid;
}

export async function attachDataVolume(svc: VmOps, vmUuid: string, volume: VolumeRow): Promise<void> {
  await svc.withVm(
    vmUuid,
    async (vm) => {
      requireState(vm.state, 'AttachDataVolumeToVm');
      const vols = await svc.volumesOf(vmUuid);
      const deviceId = lowestFreeDeviceId(
        vols.map((v) => v.deviceId ?? 0),
        1,
      );
      const hostUuid = vm.hostUuid ?? vm.lastHostUuid;
      let created = false;
      let reserved: string | undefined;
      try {
        if (volume.status === 'NotInstantiated') {
          if (!hostUuid || !vm.clusterUuid) {
            throw err('SYS.1006', `VM[uuid:${vmUuid}] has never run on a host: cannot decide where to create volume[uuid:${volume.uuid}]`);
          }
          const ps = await allocatePrimaryStorage(svc.app, {
            clusterUuid: vm.clusterUuid,
            bytes: volume.size,
            purpose: `data volume[uuid:${volume.uuid}]`,
          });
          reserved = ps.uuid;
          volume.primaryStorageUuid = ps.uuid;
          volume.installPath = await installPathOf(svc.app, ps, 'dataVolumes', volume.uuid);
          await svc.instantiateVolume(hostUuid, volume);
          created = true;
        } else if (vm.clusterUuid) {
          await requirePrimaryStorageReachable(svc, volume, vm.clusterUuid);
        }
        const attached = { ...volume, deviceId, vmInstanceUuid: vmUuid };
        if (vm.state === 'Running' || vm.state === 'Paused') {
          await hostCall(svc.app, vm.hostUuid!, '/vm/attachdatavolume', { volume: volumeTO(attached), vmInstanceUuid: vmUuid });
        }
        const now = new Date();
        await svc.app.db
          .update(volumes)
          .set({ vmInstanceUuid: vmUuid, deviceId, lastVmInstanceUuid: vmUuid, lastAttachDate: now, lastOpDate: now })
          .where(eq(volumes.uuid, volume.uuid));
      } catch (e) {
        if (created) await svc.uninstantiateVolume(hostUuid!, volume);
        if (reserved) await svc.app.db.transaction((tx) => svc.app.use('primaryStorage').release(tx, reserved!, volume.size));
        throw e;
      }
    },
    'vmInstanceUuid',
  );
}

export async function requirePrimaryStorageReachable(svc: VmOps, volume: VolumeRow, clusterUuid: string): Promise<void> {
  const [ref] = await svc.app.db
    .select()
    .from(primaryStorageClusterRefs)
    .where(and(eq(primaryStorageClusterRefs.primaryStorageUuid, volume.primaryStorageUuid!), eq(primaryStorageClusterRefs.clusterUuid, clusterUuid)));
  if (!ref) {
    throw err(
      'SYS.1006',
      `volume[uuid:${volume.uuid}] is on primary storage[uuid:${volume.primaryStorageUuid}], which is not attached to cluster[uuid:${clusterUuid}]`,
    );
  }
}

export async function detachDataVolume(svc: VmOps, volume: VolumeRow): Promise<void> {
  const vmUuid = volume.vmInstanceUuid!;
  await svc.withVm(vmUuid, async (vm) => {
    const [fresh] = await svc.app.db.select().from(volumes).where(eq(volumes.uuid, volume.uuid));
    if (!fresh || fresh.vmInstanceUuid !== vmUuid) return;
    requireState(vm.state, 'DetachDataVolumeFromVm');
    if ((vm.state === 'Running' || vm.state === 'Paused') && vm.hostUuid) {
      await hostCall(svc.app, vm.hostUuid, '/vm/detachdatavolume', { volume: volumeTO(fresh), vmInstanceUuid: vmUuid });
    }
    const now = new Date();
    await svc.app.db
      .update(volumes)
      .set({ vmInstanceUuid: null, deviceId: null, lastVmInstanceUuid: vmUuid, lastDetachDate: now, lastOpDate: now })
      .where(eq(volumes.uuid, fresh.uuid));
  });
}

// A VM's end: destroy (Destroyed, recoverable under the Delay policy), recover, expunge (files, capacity and rows
// go), the periodic expunge, and the cascade's forced deletion when its storage or zone goes.
import { and, eq, inArray, lt } from 'drizzle-orm';
import { isUnreachable } from '../agent-client/index.js';
import { deleteVolumeBits, destroyOnHostLater } from './gc.js';
import { toApiError } from '../core/errors.js';
import type { Tx } from '../db/index.js';
import { vmInstances, volumes } from '../db/schema/index.js';
import { hostCall } from './hypervisor.js';
import type { VmRow } from './inventory.js';
import { deleteNic, reacquireNicIps, releaseNicIps } from './nics.js';
import { requireState } from './states.js';
import { vmLockKey, type VmOps } from './ops.js';

/** DestroyVmInstance: an unknown VM is a success; a Created VM is deleted from the database only. */
export async function destroy(svc: VmOps, uuid: string): Promise<void> {
  await svc.app.locks.withLock(vmLockKey(uuid), async () => {
    const vm = await svc.get(uuid);
    if (!vm || vm.state === 'Destroyed') return;
    if (vm.state === 'Created') return deleteFromDb(svc, vm);
    requireState(vm.state, 'DestroyVmInstance');
    await destroyLocked(svc, vm);
    const direct = vm.type === 'ApplianceVm' || svc.app.globalConfig.get('vm', 'deletionPolicy') === 'Direct';
    if (direct) await expungeLocked(svc, (await svc.get(uuid))!);
  });
}

export async function destroyLocked(svc: VmOps, vm: VmRow): Promise<void> {
  const hostUuid = vm.hostUuid;
  await svc.setState(vm, 'Destroying');
  if (hostUuid) {
    try {
      await destroyOnHypervisor(svc, vm, hostUuid);
    } catch (e) {
      await svc.setState({ ...vm, state: 'Destroying' }, vm.state);
      throw e;
    }
  }
  const nics = await svc.nicsOf(vm.uuid);
  await svc.releaseNetworkServices(vm, nics);
  await svc.app.db.transaction(async (tx) => {
    if (hostUuid) await svc.app.use('hosts').releaseCapacity(tx, hostUuid, vm.cpuNum, vm.memorySize);
    await releaseNicIps(svc.app, tx, nics);
    await detachDataVolumesInDb(svc, tx, vm.uuid);
    await svc.setState({ ...vm, state: 'Destroying' }, 'Destroyed', { hostUuid: null, lastHostUuid: hostUuid ?? vm.lastHostUuid }, tx);
  });
}

/**
 * `/vm/destroy` on the host. An unreachable or disconnected host does not stop the destroy: the host-side work
 * becomes a garbage collector job (vm/gc.ts), done when the host is back.
 */
export async function destroyOnHypervisor(svc: VmOps, vm: VmRow, hostUuid: string): Promise<void> {
  const host = await svc.app.use('hosts').get(hostUuid);
  if (!host) return;
  if (host.status !== 'Connected') return void (await destroyOnHostLater(svc.app, vm, hostUuid));
  try {
    await hostCall(svc.app, hostUuid, '/vm/destroy', { uuid: vm.uuid });
  } catch (e) {
    if (!isUnreachable(e)) throw e;
    await destroyOnHostLater(svc.app, vm, hostUuid);
  }
}

export async function detachDataVolumesInDb(svc: VmOps, tx: Tx, vmUuid: string): Promise<void> {
  await tx
    .update(volumes)
    .set({ vmInstanceUuid: null, deviceId: null, lastVmInstanceUuid: vmUuid, lastDetachDate: new Date(), lastOpDate: new Date() })
    .where(and(eq(volumes.vmInstanceUuid, vmUuid), eq(volumes.type, 'Data')));
}

/** A VM that never ran (Created): its NICs' IPs, its volume rows and the VM row go; nothing was on a host. */
export async function deleteFromDb(svc: VmOps, vm: VmRow): Promise<void> {
  const nics = await svc.nicsOf(vm.uuid);
  const vols = await svc.volumesOf(vm.uuid);
  await svc.app.db.transaction(async (tx) => {
    // A creation cut short (CreateStopped) may still name the host it reserved on.
    if (vm.hostUuid) await svc.app.use('hosts').releaseCapacity(tx, vm.hostUuid, vm.cpuNum, vm.memorySize);
    for (const n of nics) await deleteNic(svc.app, n, tx);
    for (const v of vols.filter((x) => x.type === 'Root')) await svc.deleteVolumeBits(v, null, tx);
    await tx.delete(volumes).where(and(eq(volumes.vmInstanceUuid, vm.uuid), eq(volumes.type, 'Root')));
    await detachDataVolumesInDb(svc, tx, vm.uuid);
    await tx.delete(vmInstances).where(eq(vmInstances.uuid, vm.uuid));
  });
  svc.app.events.emit('vm.deleted', { vmUuid: vm.uuid });
}

export async function recover(svc: VmOps, uuid: string): Promise<void> {
  await svc.withVm(uuid, async (vm) => {
    requireState(vm.state, 'RecoverVmInstance');
    await reacquireNicIps(svc.app, vm, await svc.nicsOf(uuid));
    await svc.setState(vm, 'Stopped');
  });
}

export async function expunge(svc: VmOps, uuid: string): Promise<void> {
  await svc.withVm(uuid, async (vm) => {
    requireState(vm.state, 'ExpungeVmInstance');
    await expungeLocked(svc, vm);
  });
}

/** Removes a Destroyed VM: its root volume's file and capacity, the volume rows, the NICs and the VM row. */
export async function expungeLocked(svc: VmOps, vm: VmRow): Promise<void> {
  await svc.setState(vm, 'Expunging');
  const vols = await svc.volumesOf(vm.uuid);
  const nics = await svc.nicsOf(vm.uuid);
  const fileHost = vm.lastHostUuid ?? undefined;
  await svc.app.db.transaction(async (tx) => {
    for (const v of vols) await svc.deleteVolumeBits(v, null, tx);
    await releaseNicIps(svc.app, tx, nics);
    if (vols.length)
      await tx.delete(volumes).where(
        inArray(
          volumes.uuid,
          vols.map((v) => v.uuid),
        ),
      );
    await tx.delete(vmInstances).where(eq(vmInstances.uuid, vm.uuid));
  });
  // Files after the commit: an agent call never runs inside a transaction.
  for (const v of vols) {
    // A disconnected host gets the deletion later (GC job inside deleteVolumeBits).
    if (!fileHost || v.status !== 'Ready') continue;
    await deleteVolumeBits(svc.app, fileHost!, v).catch((e) =>
      console.warn(`[vm] volume file ${v.installPath} left on host[uuid:${fileHost}]:`, toApiError(e).message),
    );
  }
  svc.app.events.emit('vm.deleted', { vmUuid: vm.uuid });
}

/** The periodic expunge of VMs Destroyed longer than `vm/expungePeriod` (Delay policy). */
export async function expungeExpired(svc: VmOps): Promise<void> {
  if (svc.app.globalConfig.get('vm', 'deletionPolicy') === 'Never') return;
  const before = new Date(Date.now() - svc.app.globalConfig.getMs('vm', 'expungePeriod'));
  const due = await svc.app.db
    .select({ uuid: vmInstances.uuid })
    .from(vmInstances)
    .where(and(eq(vmInstances.state, 'Destroyed'), lt(vmInstances.lastOpDate, before)));
  for (const { uuid } of due) await expunge(svc, uuid).catch((e) => console.error(`[vm] expunging VM[uuid:${uuid}] failed:`, toApiError(e).message));
}

/** Storage or the zone is being deleted: the VMs are destroyed and expunged whatever their state. */
export async function deleteForCascade(svc: VmOps, vmUuids: string[]): Promise<void> {
  for (const uuid of vmUuids) {
    await svc.app.locks.withLock(vmLockKey(uuid), async () => {
      let vm = await svc.get(uuid);
      if (!vm) return;
      if (vm.state === 'Created') return deleteFromDb(svc, vm);
      if (vm.state !== 'Destroyed') {
        await destroyLocked(svc, vm).catch(async (e) => {
          console.warn(`[vm] cascade: destroying VM[uuid:${uuid}] on its host failed (${toApiError(e).message}); removing it anyway`);
          const nics = await svc.nicsOf(uuid);
          await svc.app.db.transaction(async (tx) => {
            if (vm!.hostUuid) await svc.app.use('hosts').releaseCapacity(tx, vm!.hostUuid, vm!.cpuNum, vm!.memorySize);
            await releaseNicIps(svc.app, tx, nics);
            await detachDataVolumesInDb(svc, tx, uuid);
            await tx.update(vmInstances).set({ state: 'Destroyed', hostUuid: null }).where(eq(vmInstances.uuid, uuid));
          });
        });
        vm = (await svc.get(uuid))!;
      }
      await expungeLocked(svc, vm);
    });
  }
}

// The VM service: every state-changing operation on a VM runs under the VM's lock (`vm:<uuid>`, across server
// processes), checks the state machine (zstack-api.md §4.1), talks to the host through the host service and keeps
// one invariant: `hostUuid` is set exactly while CPU and memory are reserved on that host.
import { asc, eq } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import { deleteVolumeBits } from './gc.js';
import { notFound, toApiError } from '../core/errors.js';
import type { FlowStep } from '../core/flow.js';
import type { Tx } from '../db/index.js';
import { vmInstances, vmNics, volumes } from '../db/schema/index.js';
import { createVolumeCmd } from './hypervisor.js';
import { vmInventory, type NicRow, type VmRow, type VolumeRow } from './inventory.js';
import { placeSteps, startSteps } from './start-flow.js';
import { vmLockKey, type Placement, type StartData, type VmNetworkServiceExtension, type VmOps } from './ops.js';
import * as attachments from './attachments.js';
import * as deletion from './deletion.js';
import * as lifecycle from './lifecycle.js';

/**
 * The VM service other domains use (`ctx.use('vms')`). Reading, state and the steps shared by the operations live
 * here; the operations themselves live one file per seam (lifecycle.ts, deletion.ts, attachments.ts) as functions
 * of this service, and the methods below hand over to them.
 */
export class VmService implements VmOps {
  private extensions: VmNetworkServiceExtension[] = [];

  constructor(readonly app: DomainContext) {}

  addNetworkServiceExtension(ext: VmNetworkServiceExtension): void {
    this.extensions.push(ext);
  }

  async get(uuid: string, tx: Tx = this.app.db): Promise<VmRow | undefined> {
    const [vm] = await tx.select().from(vmInstances).where(eq(vmInstances.uuid, uuid));
    return vm;
  }

  async require(uuid: string, field = 'uuid'): Promise<VmRow> {
    const vm = await this.get(uuid);
    if (!vm) throw notFound('VmInstanceVO', uuid, field);
    return vm;
  }

  inventory(uuid: string) {
    return vmInventory(this.app.db, uuid);
  }

  nicsOf(vmUuid: string, tx: Tx = this.app.db): Promise<NicRow[]> {
    return tx.select().from(vmNics).where(eq(vmNics.vmInstanceUuid, vmUuid)).orderBy(asc(vmNics.deviceId));
  }

  /** A NIC with its VM; SYS.1003 naming `field` when it does not exist. */
  async nicWithVm(nicUuid: string, field = 'vmNicUuid'): Promise<{ nic: NicRow; vm: VmRow }> {
    const [row] = await this.app.db
      .select({ nic: vmNics, vm: vmInstances })
      .from(vmNics)
      .innerJoin(vmInstances, eq(vmInstances.uuid, vmNics.vmInstanceUuid))
      .where(eq(vmNics.uuid, nicUuid));
    if (!row) throw notFound('VmNicVO', nicUuid, field);
    return row;
  }

  volumesOf(vmUuid: string, tx: Tx = this.app.db): Promise<VolumeRow[]> {
    return tx.select().from(volumes).where(eq(volumes.vmInstanceUuid, vmUuid)).orderBy(asc(volumes.deviceId));
  }

  /** VMs holding capacity on a host (Running, Paused, …). */
  runningOn(hostUuid: string): Promise<VmRow[]> {
    return this.app.db.select().from(vmInstances).where(eq(vmInstances.hostUuid, hostUuid));
  }

  /** Runs `fn` under the VM's lock with a fresh row (404 when the VM does not exist). */
  async withVm<T>(uuid: string, fn: (vm: VmRow) => Promise<T>, field = 'uuid'): Promise<T> {
    return this.app.locks.withLock(vmLockKey(uuid), async () => fn(await this.require(uuid, field)));
  }

  emitState(vmUuid: string, oldState: string, newState: string, hostUuid?: string | null, primaryStorageUuids?: string[]): void {
    if (oldState !== newState) this.app.events.emit('vm.state', { vmUuid, oldState, newState, hostUuid, primaryStorageUuids });
  }

  async setState(vm: VmRow, state: string, extra: Partial<typeof vmInstances.$inferInsert> = {}, tx: Tx = this.app.db): Promise<void> {
    await tx
      .update(vmInstances)
      .set({ state, lastOpDate: new Date(), ...extra })
      .where(eq(vmInstances.uuid, vm.uuid));
    this.emitState(vm.uuid, vm.state, state, extra.hostUuid === undefined ? vm.hostUuid : extra.hostUuid);
  }

  async applyNetworkServices(vm: VmRow, nics: NicRow[]): Promise<void> {
    if (nics.length === 0) return;
    for (const ext of this.extensions) await ext.apply(vm, nics);
  }

  async releaseNetworkServices(vm: VmRow, nics: NicRow[]): Promise<void> {
    if (nics.length === 0) return;
    for (const ext of this.extensions) {
      await ext.release(vm, nics).catch((e) => console.error(`[vm] ${ext.name}: releasing services of VM[uuid:${vm.uuid}] failed:`, toApiError(e).message));
    }
  }

  /** Creates the volume file on the host's primary storage and records it Ready (primary storage already reserved). */
  async instantiateVolume(hostUuid: string, v: VolumeRow): Promise<void> {
    const ps = v.primaryStorageUuid!;
    await this.app.use('primaryStorage').createVolume(hostUuid, await createVolumeCmd(this.app, v));
    await this.app.db
      .update(volumes)
      .set({ status: 'Ready', primaryStorageUuid: ps, installPath: v.installPath, actualSize: v.size, lastOpDate: new Date() })
      .where(eq(volumes.uuid, v.uuid));
    v.status = 'Ready';
  }

  /** Undoes instantiateVolume (rollback): the file goes, the row is NotInstantiated again. */
  async uninstantiateVolume(hostUuid: string, v: VolumeRow): Promise<void> {
    await deleteVolumeBits(this.app, hostUuid, v).catch((e) =>
      console.error(`[vm] rollback: cannot delete volume file ${v.installPath}:`, toApiError(e).message),
    );
    await this.app.db
      .update(volumes)
      .set({ status: 'NotInstantiated', primaryStorageUuid: null, installPath: null, actualSize: 0 })
      .where(eq(volumes.uuid, v.uuid));
    v.status = 'NotInstantiated';
  }

  /** Deletes a volume's file (best effort: an unreachable host leaves it for the GC) and gives its bytes back. */
  async deleteVolumeBits(v: VolumeRow, hostUuid: string | null | undefined, tx: Tx = this.app.db): Promise<void> {
    if (v.status === 'NotInstantiated' || !v.primaryStorageUuid) return;
    if (hostUuid) {
      await deleteVolumeBits(this.app, hostUuid, v).catch((e) =>
        console.warn(`[vm] volume file ${v.installPath} left on host[uuid:${hostUuid}]:`, toApiError(e).message),
      );
    }
    await this.app.use('primaryStorage').release(tx, v.primaryStorageUuid, v.size);
  }

  /** The start steps with the state bookkeeping around them (Starting, back to the old state on failure). */
  startFlowSteps(startOnHypervisor: boolean): FlowStep<StartData>[] {
    const markStarting: FlowStep<StartData> = {
      name: 'mark-starting',
      run: async (d) => {
        if (!startOnHypervisor) return;
        // The create flow already holds the row it wrote under the VM's lock; otherwise read it.
        const vm = d.vm ?? (await this.require(d.vmUuid));
        await this.setState(vm, 'Starting');
        d.previousState = vm.state;
        if (d.vm) d.vm = { ...vm, state: 'Starting' };
      },
      rollback: async (d) => {
        if (!d.previousState) return;
        const vm = await this.get(d.vmUuid);
        if (vm) await this.setState(vm, d.previousState, { hostUuid: null });
      },
    };
    return [markStarting, ...startSteps(this.app, this)];
  }

  /** The steps that place a VM whose reservations are made (the create flow's, after its 'reserve'). */
  placeSteps(): FlowStep<StartData>[] {
    return placeSteps(this.app, this);
  }

  // ------------------------------------------------------------------ lifecycle (lifecycle.ts)

  start(uuid: string, placement: Placement): Promise<void> {
    return lifecycle.start(this, uuid, placement);
  }

  stop(uuid: string, type: 'grace' | 'cold' = 'grace'): Promise<void> {
    return lifecycle.stop(this, uuid, type);
  }

  reboot(uuid: string): Promise<void> {
    return lifecycle.reboot(this, uuid);
  }

  migrate(uuid: string, destHostUuid?: string): Promise<void> {
    return lifecycle.migrate(this, uuid, destHostUuid);
  }

  stopForHostDeletion(vmUuids: string[]): Promise<void> {
    return lifecycle.stopForHostDeletion(this, vmUuids);
  }

  stopUsingL2InCluster(l2Uuid: string, clusterUuid: string): Promise<void> {
    return lifecycle.stopUsingL2InCluster(this, l2Uuid, clusterUuid);
  }

  stopUsingPrimaryStorage(psUuid: string, clusterUuid?: string): Promise<void> {
    return lifecycle.stopUsingPrimaryStorage(this, psUuid, clusterUuid);
  }

  // ------------------------------------------------------------------ destroy, recover, expunge (deletion.ts)

  destroy(uuid: string): Promise<void> {
    return deletion.destroy(this, uuid);
  }

  recover(uuid: string): Promise<void> {
    return deletion.recover(this, uuid);
  }

  expunge(uuid: string): Promise<void> {
    return deletion.expunge(this, uuid);
  }

  expungeExpired(): Promise<void> {
    return deletion.expungeExpired(this);
  }

  deleteForCascade(vmUuids: string[]): Promise<void> {
    return deletion.deleteForCascade(this, vmUuids);
  }

  // ------------------------------------------------------------------ NICs and data volumes on a VM (attachments.ts)

  attachL3(vmUuid: string, l3Uuid: string, staticIp?: string): Promise<void> {
    return attachments.attachL3(this, vmUuid, l3Uuid, staticIp);
  }

  detachNic(nicUuid: string, opts: { cascade?: boolean; touchHost?: boolean } = {}): Promise<string> {
    return attachments.detachNic(this, nicUuid, opts);
  }

  attachDataVolume(vmUuid: string, volume: VolumeRow): Promise<void> {
    return attachments.attachDataVolume(this, vmUuid, volume);
  }

  detachDataVolume(volume: VolumeRow): Promise<void> {
    return attachments.detachDataVolume(this, volume);
  }
}

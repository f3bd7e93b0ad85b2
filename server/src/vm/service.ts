// The VM service: every state-changing operation on a VM runs under the VM's lock (`vm:<uuid>`, across server
// processes), checks the state machine (zstack-api.md §4.1), talks to the host through the host service and keeps
// one invariant: `hostUuid` is set exactly while CPU and memory are reserved on that host.
import { and, asc, eq, inArray, isNotNull, lt } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import { isUnreachable } from '../agent-client/index.js';
import { deleteVolumeBits, destroyOnHostLater, stopOnHostLater } from './gc.js';
import type { Reconciler } from './reconcile.js';
import { notFound, err, toApiError, argErr } from '../core/errors.js';
import { runFlow, type FlowStep } from '../core/flow.js';
import type { Tx } from '../db/index.js';
import { l2ClusterRefs, l3Networks, primaryStorageClusterRefs, vmInstances, vmNics, volumes } from '../db/schema/index.js';
import { allocateHost } from './allocation/host-allocator.js';
import { allocatePrimaryStorage } from './allocation/primary-storage-allocator.js';
import { createVolumeCmd, hostCall, nicNetworks, nicTO, volumeTO } from './hypervisor.js';
import { vmInventory, type NicRow, type VmRow, type VolumeRow } from './inventory.js';
import { allocateNic, deleteNic, lowestFreeDeviceId, reacquireNicIps, releaseNicIps } from './nics.js';
import { installPathOf, placeSteps, startSteps, type Placement, type StartData } from './start-flow.js';
import { requireState } from './states.js';

/** Network services a provider applies for VM NICs (e.g. the virtual router's DHCP and DNS). */
export interface VmNetworkServiceExtension {
  name: string;
  /** Before the VM starts (or a NIC is plugged): make the services of these NICs ready. Throwing fails the start. */
  apply(vm: VmRow, nics: NicRow[]): Promise<void>;
  /** The NICs go away or the start is rolled back: withdraw their services (best effort). */
  release(vm: VmRow, nics: NicRow[]): Promise<void>;
}

export const vmLockKey = (uuid: string) => `vm:${uuid}`;

export class VmService {
  private extensions: VmNetworkServiceExtension[] = [];

  /** Reconciliation with the hosts (set by the module's registration). */
  reconciler?: Reconciler;

  constructor(private app: DomainContext) {}

  addNetworkServiceExtension(ext: VmNetworkServiceExtension): void {
    this.extensions.push(ext);
  }

  // ------------------------------------------------------------------ reading

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

  emitState(vmUuid: string, oldState: string, newState: string, hostUuid?: string | null): void {
    if (oldState !== newState) this.app.events.emit('vm.state', { vmUuid, oldState, newState, hostUuid });
  }

  async setState(vm: VmRow, state: string, extra: Partial<typeof vmInstances.$inferInsert> = {}, tx: Tx = this.app.db): Promise<void> {
    await tx.update(vmInstances).set({ state, lastOpDate: new Date(), ...extra }).where(eq(vmInstances.uuid, vm.uuid));
    this.emitState(vm.uuid, vm.state, state, extra.hostUuid === undefined ? vm.hostUuid : extra.hostUuid);
  }

  // ------------------------------------------------------------------ network services and volumes on hosts

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
    await hostCall(this.app, hostUuid, '/primarystorage/volume/create', await createVolumeCmd(this.app, v));
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

  // ------------------------------------------------------------------ lifecycle

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

  async start(uuid: string, placement: Placement): Promise<void> {
    await this.withVm(uuid, async (vm) => {
      requireState(vm.state, 'StartVmInstance');
      if (vm.state === 'Running') return;
      if (vm.hostUuid) {
        // A Crashed VM still holds its host's capacity: give it back, the allocation takes it again.
        await this.app.db.transaction(async (tx) => {
          await this.app.use('hosts').releaseCapacity(tx, vm.hostUuid!, vm.cpuNum, vm.memorySize);
          await tx.update(vmInstances).set({ hostUuid: null, lastHostUuid: vm.hostUuid }).where(eq(vmInstances.uuid, uuid));
        });
      }
      await runFlow<StartData>('start-vm', this.startFlowSteps(true), { vmUuid: uuid, placement, startOnHypervisor: true, psReserved: [], instantiated: [] });
    });
  }

  async stop(uuid: string, type: 'grace' | 'cold' = 'grace'): Promise<void> {
    await this.withVm(uuid, (vm) => this.stopLocked(vm, type));
  }

  private async stopLocked(vm: VmRow, type: 'grace' | 'cold'): Promise<void> {
    requireState(vm.state, 'StopVmInstance');
    if (vm.state === 'Stopped') return;
    const hostUuid = vm.hostUuid;
    if (hostUuid) {
      // A cold stop works whatever the host's state: if the host cannot be reached now, the host-side stop
      // becomes a GC job (vm/gc.ts). A graceful stop needs the guest, so it needs the host.
      const host = await this.app.use('hosts').get(hostUuid);
      const reachable = host?.status === 'Connected';
      if (!reachable && type === 'cold') {
        await this.setState(vm, 'Stopping');
        if (host) await stopOnHostLater(this.app, vm, hostUuid);
      } else {
        await this.app.use('hosts').requireConnected(hostUuid);
        await this.setState(vm, 'Stopping');
        try {
          await hostCall(this.app, hostUuid, '/vm/stop', { uuid: vm.uuid, timeout: type === 'cold' ? 0 : 120 });
        } catch (e) {
          if (type !== 'cold' || !isUnreachable(e)) {
            await this.setState({ ...vm, state: 'Stopping' }, vm.state);
            throw e;
          }
          await stopOnHostLater(this.app, vm, hostUuid);
        }
      }
    }
    await this.app.db.transaction(async (tx) => {
      if (hostUuid) await this.app.use('hosts').releaseCapacity(tx, hostUuid, vm.cpuNum, vm.memorySize);
      await this.setState({ ...vm, state: hostUuid ? 'Stopping' : vm.state }, 'Stopped', { hostUuid: null, lastHostUuid: hostUuid ?? vm.lastHostUuid }, tx);
    });
  }

  async reboot(uuid: string): Promise<void> {
    await this.withVm(uuid, async (vm) => {
      requireState(vm.state, 'RebootVmInstance');
      const hostUuid = vm.hostUuid!;
      await this.app.use('hosts').requireConnected(hostUuid);
      await this.setState(vm, 'Rebooting');
      try {
        await hostCall(this.app, hostUuid, '/vm/reboot', { uuid: vm.uuid, timeout: 120, bootDev: ['hd'] });
      } finally {
        await this.setState({ ...vm, state: 'Rebooting' }, 'Running');
      }
    });
  }

  async migrate(uuid: string, destHostUuid?: string): Promise<void> {
    await this.withVm(
      uuid,
      async (vm) => {
        requireState(vm.state, 'MigrateVm');
        const src = await this.app.use('hosts').requireConnected(vm.hostUuid!);
        if (destHostUuid === src.uuid) throw argErr(`VM[uuid:${uuid}] is already on host[uuid:${destHostUuid}]`);
        if (destHostUuid) await this.app.use('hosts').require(destHostUuid);
        const nics = await this.nicsOf(uuid);
        const vols = await this.volumesOf(uuid);
        // Migrating before the destination is reserved: reconciliation does not recompute the capacity of hosts
        // while a VM is Migrating (the destination's reservation is not on any VM row yet).
        await this.setState(vm, 'Migrating');
        const dest = await allocateHost(this.app, {
          vmUuid: uuid,
          cpuNum: vm.cpuNum,
          memorySize: vm.memorySize,
          l3NetworkUuids: [...new Set(nics.map((n) => n.l3NetworkUuid))],
          // MigrateVm allocator: the same cluster unless a destination is named; it must reach the VM's storage.
          clusterUuid: destHostUuid ? undefined : src.clusterUuid,
          hostUuid: destHostUuid,
          primaryStorageUuids: [...new Set(vols.filter((v) => v.primaryStorageUuid).map((v) => v.primaryStorageUuid!))],
          newVolumeBytes: 0,
          avoidHostUuids: [src.uuid],
          strategy: 'DefaultHostAllocatorStrategy',
        }).catch(async (e) => {
          await this.setState({ ...vm, state: 'Migrating' }, vm.state);
          throw e;
        });
        const release = () => this.app.db.transaction((tx) => this.app.use('hosts').releaseCapacity(tx, dest.uuid, vm.cpuNum, vm.memorySize));
        try {
          await hostCall(this.app, src.uuid, '/vm/migrate', {
            vmUuid: uuid,
            destHostIp: dest.managementIp,
            srcHostIp: src.managementIp,
            destHostUuid: dest.uuid,
          });
        } catch (e) {
          await release();
          await this.setState({ ...vm, state: 'Migrating' }, vm.state);
          throw e;
        }
        // The VM now runs on dest: its capacity moves in one transaction with the host reference.
        await this.app.db.transaction(async (tx) => {
          await this.app.use('hosts').releaseCapacity(tx, src.uuid, vm.cpuNum, vm.memorySize);
          await this.setState(
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

  /** DestroyVmInstance: an unknown VM is a success; a Created VM is deleted from the database only. */
  async destroy(uuid: string): Promise<void> {
    await this.app.locks.withLock(vmLockKey(uuid), async () => {
      const vm = await this.get(uuid);
      if (!vm || vm.state === 'Destroyed') return;
      if (vm.state === 'Created') return this.deleteFromDb(vm);
      requireState(vm.state, 'DestroyVmInstance');
      await this.destroyLocked(vm);
      const direct = vm.type === 'ApplianceVm' || this.app.globalConfig.get('vm', 'deletionPolicy') === 'Direct';
      if (direct) await this.expungeLocked((await this.get(uuid))!);
    });
  }

  private async destroyLocked(vm: VmRow): Promise<void> {
    const hostUuid = vm.hostUuid;
    await this.setState(vm, 'Destroying');
    if (hostUuid) {
      try {
        await this.destroyOnHypervisor(vm, hostUuid);
      } catch (e) {
        await this.setState({ ...vm, state: 'Destroying' }, vm.state);
        throw e;
      }
    }
    const nics = await this.nicsOf(vm.uuid);
    await this.releaseNetworkServices(vm, nics);
    await this.app.db.transaction(async (tx) => {
      if (hostUuid) await this.app.use('hosts').releaseCapacity(tx, hostUuid, vm.cpuNum, vm.memorySize);
      await releaseNicIps(this.app, tx, nics);
      await this.detachDataVolumesInDb(tx, vm.uuid);
      await this.setState({ ...vm, state: 'Destroying' }, 'Destroyed', { hostUuid: null, lastHostUuid: hostUuid ?? vm.lastHostUuid }, tx);
    });
  }

  /**
   * `/vm/destroy` on the host. An unreachable or disconnected host does not stop the destroy: the host-side work
   * becomes a garbage collector job (vm/gc.ts), done when the host is back.
   */
  private async destroyOnHypervisor(vm: VmRow, hostUuid: string): Promise<void> {
    const host = await this.app.use('hosts').get(hostUuid);
    if (!host) return;
    if (host.status !== 'Connected') return void (await destroyOnHostLater(this.app, vm, hostUuid));
    try {
      await hostCall(this.app, hostUuid, '/vm/destroy', { uuid: vm.uuid });
    } catch (e) {
      if (!isUnreachable(e)) throw e;
      await destroyOnHostLater(this.app, vm, hostUuid);
    }
  }

  private async detachDataVolumesInDb(tx: Tx, vmUuid: string): Promise<void> {
    await tx
      .update(volumes)
      .set({ vmInstanceUuid: null, deviceId: null, lastVmInstanceUuid: vmUuid, lastDetachDate: new Date(), lastOpDate: new Date() })
      .where(and(eq(volumes.vmInstanceUuid, vmUuid), eq(volumes.type, 'Data')));
  }

  /** A VM that never ran (Created): its NICs' IPs, its volume rows and the VM row go; nothing was on a host. */
  private async deleteFromDb(vm: VmRow): Promise<void> {
    const nics = await this.nicsOf(vm.uuid);
    const vols = await this.volumesOf(vm.uuid);
    await this.app.db.transaction(async (tx) => {
      // A creation cut short (CreateStopped) may still name the host it reserved on.
      if (vm.hostUuid) await this.app.use('hosts').releaseCapacity(tx, vm.hostUuid, vm.cpuNum, vm.memorySize);
      for (const n of nics) await deleteNic(this.app, n, tx);
      for (const v of vols.filter((x) => x.type === 'Root')) await this.deleteVolumeBits(v, null, tx);
      await tx.delete(volumes).where(and(eq(volumes.vmInstanceUuid, vm.uuid), eq(volumes.type, 'Root')));
      await this.detachDataVolumesInDb(tx, vm.uuid);
      await tx.delete(vmInstances).where(eq(vmInstances.uuid, vm.uuid));
    });
    this.app.events.emit('vm.deleted', { vmUuid: vm.uuid });
  }

  async recover(uuid: string): Promise<void> {
    await this.withVm(uuid, async (vm) => {
      requireState(vm.state, 'RecoverVmInstance');
      await reacquireNicIps(this.app, vm, await this.nicsOf(uuid));
      await this.setState(vm, 'Stopped');
    });
  }

  async expunge(uuid: string): Promise<void> {
    await this.withVm(uuid, async (vm) => {
      requireState(vm.state, 'ExpungeVmInstance');
      await this.expungeLocked(vm);
    });
  }

  /** Removes a Destroyed VM: its root volume's file and capacity, the volume rows, the NICs and the VM row. */
  private async expungeLocked(vm: VmRow): Promise<void> {
    await this.setState(vm, 'Expunging');
    const vols = await this.volumesOf(vm.uuid);
    const nics = await this.nicsOf(vm.uuid);
    const fileHost = vm.lastHostUuid ?? undefined;
    await this.app.db.transaction(async (tx) => {
      for (const v of vols) await this.deleteVolumeBits(v, null, tx);
      await releaseNicIps(this.app, tx, nics);
      if (vols.length) await tx.delete(volumes).where(inArray(volumes.uuid, vols.map((v) => v.uuid)));
      await tx.delete(vmInstances).where(eq(vmInstances.uuid, vm.uuid));
    });
    // Files after the commit: an agent call never runs inside a transaction.
    for (const v of vols) {
      // A disconnected host gets the deletion later (GC job inside deleteVolumeBits).
      if (!fileHost || v.status !== 'Ready') continue;
      await deleteVolumeBits(this.app, fileHost!, v).catch((e) =>
        console.warn(`[vm] volume file ${v.installPath} left on host[uuid:${fileHost}]:`, toApiError(e).message),
      );
    }
    this.app.events.emit('vm.deleted', { vmUuid: vm.uuid });
  }

  /** The periodic expunge of VMs Destroyed longer than `vm/expungePeriod` (Delay policy). */
  async expungeExpired(): Promise<void> {
    if (this.app.globalConfig.get('vm', 'deletionPolicy') === 'Never') return;
    const before = new Date(Date.now() - this.app.globalConfig.getMs('vm', 'expungePeriod'));
    const due = await this.app.db
      .select({ uuid: vmInstances.uuid })
      .from(vmInstances)
      .where(and(eq(vmInstances.state, 'Destroyed'), lt(vmInstances.lastOpDate, before)));
    for (const { uuid } of due) await this.expunge(uuid).catch((e) => console.error(`[vm] expunging VM[uuid:${uuid}] failed:`, toApiError(e).message));
  }

  // ------------------------------------------------------------------ NICs at run time

  async attachL3(vmUuid: string, l3Uuid: string, staticIp?: string): Promise<void> {
    await this.withVm(
      vmUuid,
      async (vm) => {
        requireState(vm.state, 'AttachL3NetworkToVm');
        const nics = await this.nicsOf(vmUuid);
        if (nics.some((n) => n.l3NetworkUuid === l3Uuid)) {
          throw err('SYS.1006', `unable to attach L3 network[uuid:${l3Uuid}] to VM[uuid:${vmUuid}]: the VM already has a NIC on it`);
        }
        const [l3] = await this.app.db.select().from(l3Networks).where(eq(l3Networks.uuid, l3Uuid));
        if (!l3) throw notFound('L3NetworkVO', l3Uuid, 'l3NetworkUuid');
        if (vm.state === 'Running') {
          await this.app.use('hosts').requireConnected(vm.hostUuid!);
          const [ref] = await this.app.db
            .select()
            .from(l2ClusterRefs)
            .where(and(eq(l2ClusterRefs.l2NetworkUuid, l3.l2NetworkUuid), eq(l2ClusterRefs.clusterUuid, vm.clusterUuid!)));
          if (!ref) {
            throw err('SYS.1006', `L2 network[uuid:${l3.l2NetworkUuid}] of L3 network[uuid:${l3Uuid}] is not attached to the cluster[uuid:${vm.clusterUuid}] of VM[uuid:${vmUuid}]`);
          }
        }
        const nic = await allocateNic(this.app, vm, {
          l3NetworkUuid: l3Uuid,
          deviceId: lowestFreeDeviceId(nics.map((n) => n.deviceId)),
          staticIp,
          usedFor: vm.type === 'ApplianceVm' ? 'ApplianceVm' : 'UserVm',
        });
        try {
          if (vm.state === 'Running') {
            await this.applyNetworkServices(vm, [nic]);
            await hostCall(this.app, vm.hostUuid!, '/vm/attachnic', { vmUuid, nic: nicTO(vm, nic, (await nicNetworks(this.app, [nic])).get(l3Uuid)) });
          }
        } catch (e) {
          await this.releaseNetworkServices(vm, [nic]);
          await deleteNic(this.app, nic);
          throw e;
        }
        if (!vm.defaultL3NetworkUuid) {
          await this.app.db.update(vmInstances).set({ defaultL3NetworkUuid: l3Uuid }).where(eq(vmInstances.uuid, vmUuid));
        }
      },
      'vmInstanceUuid',
    );
  }

  /**
   * Detaches a NIC; returns the VM's uuid (for the reply). `cascade` (its L3 network or IP range is being deleted):
   * no state check, the host is told on a best-effort basis, or not at all when `touchHost` is false.
   */
  async detachNic(nicUuid: string, opts: { cascade?: boolean; touchHost?: boolean } = {}): Promise<string> {
    const [nic0] = await this.app.db.select().from(vmNics).where(eq(vmNics.uuid, nicUuid));
    if (!nic0) throw notFound('VmNicVO', nicUuid, 'vmNicUuid');
    await this.withVm(nic0.vmInstanceUuid, async (vm) => {
      const [nic] = await this.app.db.select().from(vmNics).where(eq(vmNics.uuid, nicUuid));
      if (!nic) return;
      if (!opts.cascade) requireState(vm.state, 'DetachL3NetworkFromVm');
      if (vm.hostUuid && vm.state === 'Running' && opts.touchHost !== false) {
        const net = nic.l3NetworkUuid ? (await nicNetworks(this.app, [nic])).get(nic.l3NetworkUuid) : undefined;
        const unplug = hostCall(this.app, vm.hostUuid, '/vm/detachnic', { vmUuid: vm.uuid, nic: nicTO(vm, nic, net) });
        if (opts.cascade) await unplug.catch((e) => console.warn(`[vm] cascade: unplugging NIC[uuid:${nicUuid}] failed:`, toApiError(e).message));
        else await unplug;
      }
      await this.releaseNetworkServices(vm, [nic]);
      await this.app.db.transaction(async (tx) => {
        await deleteNic(this.app, nic, tx);
        if (vm.defaultL3NetworkUuid === nic.l3NetworkUuid) {
          const [other] = await tx.select().from(vmNics).where(eq(vmNics.vmInstanceUuid, vm.uuid)).orderBy(asc(vmNics.deviceId)).limit(1);
          await tx.update(vmInstances).set({ defaultL3NetworkUuid: other?.l3NetworkUuid ?? null, lastOpDate: new Date() }).where(eq(vmInstances.uuid, vm.uuid));
        }
      });
    });
    return nic0.vmInstanceUuid;
  }

  // ------------------------------------------------------------------ data volumes on a VM

  async attachDataVolume(vmUuid: string, volume: VolumeRow): Promise<void> {
    await this.withVm(
      vmUuid,
      async (vm) => {
        requireState(vm.state, 'AttachDataVolumeToVm');
        const vols = await this.volumesOf(vmUuid);
        const deviceId = lowestFreeDeviceId(vols.map((v) => v.deviceId ?? 0), 1);
        const hostUuid = vm.hostUuid ?? vm.lastHostUuid;
        let created = false;
        let reserved: string | undefined;
        try {
          if (volume.status === 'NotInstantiated') {
            if (!hostUuid || !vm.clusterUuid) {
              throw err('SYS.1006', `VM[uuid:${vmUuid}] has never run on a host: cannot decide where to create volume[uuid:${volume.uuid}]`);
            }
            const ps = await allocatePrimaryStorage(this.app, {
              clusterUuid: vm.clusterUuid,
              bytes: volume.size,
              purpose: `data volume[uuid:${volume.uuid}]`,
            });
            reserved = ps.uuid;
            volume.primaryStorageUuid = ps.uuid;
            volume.installPath = installPathOf(ps.url, 'dataVolumes', volume.uuid);
            await this.instantiateVolume(hostUuid, volume);
            created = true;
          } else if (vm.clusterUuid) {
            await this.requirePrimaryStorageReachable(volume, vm.clusterUuid);
          }
          const attached = { ...volume, deviceId, vmInstanceUuid: vmUuid };
          if (vm.state === 'Running' || vm.state === 'Paused') {
            await hostCall(this.app, vm.hostUuid!, '/vm/attachdatavolume', { volume: volumeTO(attached), vmInstanceUuid: vmUuid });
          }
          const now = new Date();
          await this.app.db
            .update(volumes)
            .set({ vmInstanceUuid: vmUuid, deviceId, lastVmInstanceUuid: vmUuid, lastAttachDate: now, lastOpDate: now })
            .where(eq(volumes.uuid, volume.uuid));
        } catch (e) {
          if (created) await this.uninstantiateVolume(hostUuid!, volume);
          if (reserved) await this.app.db.transaction((tx) => this.app.use('primaryStorage').release(tx, reserved!, volume.size));
          throw e;
        }
      },
      'vmInstanceUuid',
    );
  }

  private async requirePrimaryStorageReachable(volume: VolumeRow, clusterUuid: string): Promise<void> {
    const [ref] = await this.app.db
      .select()
      .from(primaryStorageClusterRefs)
      .where(and(eq(primaryStorageClusterRefs.primaryStorageUuid, volume.primaryStorageUuid!), eq(primaryStorageClusterRefs.clusterUuid, clusterUuid)));
    if (!ref) {
      throw err('SYS.1006', `volume[uuid:${volume.uuid}] is on primary storage[uuid:${volume.primaryStorageUuid}], which is not attached to cluster[uuid:${clusterUuid}]`);
    }
  }

  async detachDataVolume(volume: VolumeRow): Promise<void> {
    const vmUuid = volume.vmInstanceUuid!;
    await this.withVm(vmUuid, async (vm) => {
      const [fresh] = await this.app.db.select().from(volumes).where(eq(volumes.uuid, volume.uuid));
      if (!fresh || fresh.vmInstanceUuid !== vmUuid) return;
      requireState(vm.state, 'DetachDataVolumeFromVm');
      if ((vm.state === 'Running' || vm.state === 'Paused') && vm.hostUuid) {
        await hostCall(this.app, vm.hostUuid, '/vm/detachdatavolume', { volume: volumeTO(fresh), vmInstanceUuid: vmUuid });
      }
      const now = new Date();
      await this.app.db
        .update(volumes)
        .set({ vmInstanceUuid: null, deviceId: null, lastVmInstanceUuid: vmUuid, lastDetachDate: now, lastOpDate: now })
        .where(eq(volumes.uuid, fresh.uuid));
    });
  }

  // ------------------------------------------------------------------ cascade

  /** A host is being deleted: its VMs stop (capacity back; the agent is told when it still answers). */
  async stopForHostDeletion(vmUuids: string[]): Promise<void> {
    for (const uuid of vmUuids) {
      await this.app.locks.withLock(vmLockKey(uuid), async () => {
        const vm = await this.get(uuid);
        if (!vm || !vm.hostUuid) return;
        const hostUuid = vm.hostUuid;
        await hostCall(this.app, hostUuid, '/vm/stop', { uuid, timeout: 0 }, 10_000).catch(() => undefined);
        await this.app.db.transaction(async (tx) => {
          await this.app.use('hosts').releaseCapacity(tx, hostUuid, vm.cpuNum, vm.memorySize);
          await this.setState(vm, 'Stopped', { hostUuid: null, lastHostUuid: null, clusterUuid: null }, tx);
        });
      });
    }
  }

  /** Stops the VMs of the cluster that have a NIC on an L3 network of the L2 network. */
  async stopUsingL2InCluster(l2Uuid: string, clusterUuid: string): Promise<void> {
    const rows = await this.app.db
      .selectDistinct({ uuid: vmInstances.uuid })
      .from(vmInstances)
      .innerJoin(vmNics, eq(vmNics.vmInstanceUuid, vmInstances.uuid))
      .innerJoin(l3Networks, eq(l3Networks.uuid, vmNics.l3NetworkUuid))
      .where(and(eq(l3Networks.l2NetworkUuid, l2Uuid), eq(vmInstances.clusterUuid, clusterUuid), isNotNull(vmInstances.hostUuid)));
    for (const { uuid } of rows) {
      await this.stop(uuid, 'cold').catch((e) => console.warn(`[vm] stopping VM[uuid:${uuid}] (its L2 network leaves the cluster) failed:`, toApiError(e).message));
    }
  }

  /** Storage or the zone is being deleted: the VMs are destroyed and expunged whatever their state. */
  async deleteForCascade(vmUuids: string[]): Promise<void> {
    for (const uuid of vmUuids) {
      await this.app.locks.withLock(vmLockKey(uuid), async () => {
        let vm = await this.get(uuid);
        if (!vm) return;
        if (vm.state === 'Created') return this.deleteFromDb(vm);
        if (vm.state !== 'Destroyed') {
          await this.destroyLocked(vm).catch(async (e) => {
            console.warn(`[vm] cascade: destroying VM[uuid:${uuid}] on its host failed (${toApiError(e).message}); removing it anyway`);
            const nics = await this.nicsOf(uuid);
            await this.app.db.transaction(async (tx) => {
              if (vm!.hostUuid) await this.app.use('hosts').releaseCapacity(tx, vm!.hostUuid, vm!.cpuNum, vm!.memorySize);
              await releaseNicIps(this.app, tx, nics);
              await this.detachDataVolumesInDb(tx, uuid);
              await tx.update(vmInstances).set({ state: 'Destroyed', hostUuid: null }).where(eq(vmInstances.uuid, uuid));
            });
          });
          vm = (await this.get(uuid))!;
        }
        await this.expungeLocked(vm);
      });
    }
  }
}

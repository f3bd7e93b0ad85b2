// Data volumes on their own: created (on primary storage at once when one is named, else NotInstantiated until
// first attached), deleted following `volume/deletionPolicy` (Delay keeps them `Deleted` until expunged).
import { deleteVolumeBits } from './gc.js';
import { and, asc, eq, lt, sql } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import { argErr, err, notFound, toApiError } from '../core/errors.js';
import type { Message } from '../core/handlers.js';
import { newUuid } from '../core/ids.js';
import { diskOfferings, hosts, primaryStorage, primaryStorageClusterRefs, volumes } from '../db/schema/index.js';
import type { VolumeRow } from './inventory.js';
import type { VmService } from './service.js';
import { installPathOf } from './start-flow.js';

export type CreateDataVolumeParams = Message<'CreateDataVolume'>;

export const volumeLockKey = (uuid: string) => `volume:${uuid}`;

export class VolumeService {
  constructor(
    private app: DomainContext,
    private vms: VmService,
  ) {}

  async get(uuid: string): Promise<VolumeRow | undefined> {
    const [v] = await this.app.db.select().from(volumes).where(eq(volumes.uuid, uuid));
    return v;
  }

  async require(uuid: string, field = 'uuid'): Promise<VolumeRow> {
    const v = await this.get(uuid);
    if (!v) throw notFound('VolumeVO', uuid, field);
    return v;
  }

  /** CreateDataVolume's checks: the size (offering or diskSize) and the primary storage, if named. */
  async checkCreate(msg: CreateDataVolumeParams): Promise<number> {
    let size = msg.diskSize;
    if (msg.diskOfferingUuid) {
      const [o] = await this.app.db.select().from(diskOfferings).where(eq(diskOfferings.uuid, msg.diskOfferingUuid));
      if (!o) throw notFound('DiskOfferingVO', msg.diskOfferingUuid, 'diskOfferingUuid');
      if (o.state !== 'Enabled') throw argErr(`disk offering[uuid:${o.uuid}] is ${o.state}; only Enabled disk offerings can be used`);
      size = o.diskSize;
    }
    if (size === undefined) throw argErr('diskOfferingUuid or diskSize is mandatory');
    if (msg.primaryStorageUuid) {
      const [ps] = await this.app.db.select().from(primaryStorage).where(eq(primaryStorage.uuid, msg.primaryStorageUuid));
      if (!ps) throw notFound('PrimaryStorageVO', msg.primaryStorageUuid, 'primaryStorageUuid');
      if (ps.state !== 'Enabled' || ps.status !== 'Connected') throw argErr(`primary storage[uuid:${ps.uuid}] is ${ps.state}/${ps.status}`);
    }
    return size;
  }

  async create(msg: CreateDataVolumeParams): Promise<VolumeRow> {
    const size = await this.checkCreate(msg);
    const uuid = msg.resourceUuid ?? newUuid();
    const [row] = await this.app.db
      .insert(volumes)
      .values({
        uuid,
        name: msg.name,
        description: msg.description ?? null,
        diskOfferingUuid: msg.diskOfferingUuid ?? null,
        type: 'Data',
        format: 'qcow2',
        size,
        status: 'NotInstantiated',
      })
      .returning();
    if (!msg.primaryStorageUuid) return row;
    try {
      await this.instantiateOn(row, msg.primaryStorageUuid);
    } catch (e) {
      await this.app.db.delete(volumes).where(eq(volumes.uuid, uuid));
      throw e;
    }
    return (await this.get(uuid))!;
  }

  /** Reserves the bytes on the primary storage and creates the file through a Connected host that reaches it. */
  private async instantiateOn(v: VolumeRow, psUuid: string): Promise<void> {
    const [ps] = await this.app.db.select().from(primaryStorage).where(eq(primaryStorage.uuid, psUuid));
    const host = await this.hostReaching(psUuid);
    if (!host) throw err('SYS.1006', `no Connected host can reach primary storage[uuid:${psUuid}] to create volume[uuid:${v.uuid}]`);
    if (!(await this.app.use('primaryStorage').reserve(this.app.db, psUuid, v.size))) {
      throw err('PS.1000', `primary storage[uuid:${psUuid}] has not ${v.size} bytes free for volume[uuid:${v.uuid}]`);
    }
    try {
      v.primaryStorageUuid = psUuid;
      v.installPath = await installPathOf(this.app, ps, 'dataVolumes', v.uuid);
      await this.vms.instantiateVolume(host, v);
    } catch (e) {
      await this.app.db.transaction((tx) => this.app.use('primaryStorage').release(tx, psUuid, v.size));
      throw e;
    }
  }

  /** A host that reaches the primary storage: a Connected one, else (`anyStatus`) any host of an attached cluster. */
  private async hostReaching(psUuid: string, anyStatus = false): Promise<string | undefined> {
    const [h] = await this.app.db
      .select({ uuid: hosts.uuid })
      .from(hosts)
      .innerJoin(primaryStorageClusterRefs, eq(primaryStorageClusterRefs.clusterUuid, hosts.clusterUuid))
      .where(and(eq(primaryStorageClusterRefs.primaryStorageUuid, psUuid), anyStatus ? undefined : eq(hosts.status, 'Connected')))
      .orderBy(sql`${hosts.status} = 'Connected' DESC`, asc(hosts.uuid))
      .limit(1);
    return h?.uuid;
  }

  /** AttachDataVolumeToVm's volume checks (the VM's state is checked by the VM service). */
  checkAttachable(v: VolumeRow): void {
    if (v.type !== 'Data') throw argErr(`volume[uuid:${v.uuid}] is a ${v.type} volume; only data volumes can be attached`);
    if (v.state !== 'Enabled') throw argErr(`volume[uuid:${v.uuid}] is ${v.state}`);
    if (v.status !== 'Ready' && v.status !== 'NotInstantiated') {
      throw argErr(`volume[uuid:${v.uuid}] is ${v.status}; only Ready or NotInstantiated volumes can be attached`);
    }
    if (v.vmInstanceUuid) throw argErr(`volume[uuid:${v.uuid}] is already attached to VM[uuid:${v.vmInstanceUuid}]`);
  }

  async attach(volumeUuid: string, vmUuid: string): Promise<void> {
    await this.app.locks.withLock(volumeLockKey(volumeUuid), async () => {
      const v = await this.require(volumeUuid, 'volumeUuid');
      this.checkAttachable(v);
      await this.vms.attachDataVolume(vmUuid, v);
    });
  }

  async detach(volumeUuid: string, vmUuid?: string): Promise<void> {
    await this.app.locks.withLock(volumeLockKey(volumeUuid), async () => {
      const v = await this.require(volumeUuid);
      if (v.type !== 'Data') throw argErr(`volume[uuid:${v.uuid}] is a ${v.type} volume; only data volumes can be detached`);
      if (!v.vmInstanceUuid) throw argErr(`volume[uuid:${v.uuid}] is not attached to any VM`);
      if (vmUuid && vmUuid !== v.vmInstanceUuid) throw argErr(`volume[uuid:${v.uuid}] is attached to VM[uuid:${v.vmInstanceUuid}], not to VM[uuid:${vmUuid}]`);
      await this.vms.detachDataVolume(v);
    });
  }

  /** DeleteDataVolume: unknown uuid = success; detach first; Delay → Deleted, Direct → gone with its file. */
  async delete(uuid: string): Promise<void> {
    await this.app.locks.withLock(volumeLockKey(uuid), async () => {
      const v = await this.get(uuid);
      if (!v) return;
      if (v.type !== 'Data') throw argErr(`volume[uuid:${uuid}] is a ${v.type} volume; it is deleted with its VM`);
      if (v.status === 'Deleted') throw err('SYS.1006', `volume[uuid:${uuid}] is already deleted`);
      if (v.vmInstanceUuid) await this.vms.detachDataVolume(v);
      if (this.app.globalConfig.get('volume', 'deletionPolicy') === 'Direct' || v.status === 'NotInstantiated') {
        await this.expungeLocked((await this.get(uuid))!);
      } else {
        await this.app.db.update(volumes).set({ status: 'Deleted', lastOpDate: new Date() }).where(eq(volumes.uuid, uuid));
      }
    });
  }

  /**
   * The volume goes for good: its file is deleted through a host reaching its primary storage (an agent refusing
   * fails the expunge and keeps the volume; a host that is not Connected or cannot be reached leaves a GC job that
   * deletes it later), then its bytes go back to the primary storage and the record goes.
   */
  private async expungeLocked(v: VolumeRow): Promise<void> {
    if (v.primaryStorageUuid && v.installPath && v.status !== 'NotInstantiated') {
      const host = await this.hostReaching(v.primaryStorageUuid, true);
      if (host) {
        await deleteVolumeBits(this.app, host, v).catch((e) => {
          const cause = toApiError(e);
          throw err(
            'SYS.1006',
            `cannot delete the file of volume[uuid:${v.uuid}] on primary storage[uuid:${v.primaryStorageUuid}]: ${cause.message}`,
            cause.error,
          );
        });
      } else {
        console.warn(`[volume] no host reaches primary storage[uuid:${v.primaryStorageUuid}]; file ${v.installPath} of volume[uuid:${v.uuid}] left there`);
      }
    }
    await this.app.db.transaction(async (tx) => {
      await this.vms.deleteVolumeBits(v, null, tx);
      await tx.delete(volumes).where(eq(volumes.uuid, v.uuid));
    });
    this.app.events.emit('volume.expunged', { volumeUuids: [v.uuid] });
  }

  /** ExpungeDataVolume: only a Deleted data volume; an unknown uuid is a success (as upstream). */
  async expunge(uuid: string): Promise<void> {
    await this.app.locks.withLock(volumeLockKey(uuid), async () => {
      const v = await this.get(uuid);
      if (!v) return;
      if (v.status !== 'Deleted') throw err('SYS.1006', `the volume[uuid:${v.uuid}, name:${v.name}] is not deleted yet, can't expunge it`);
      await this.expungeLocked(v);
    });
  }

  /** The checks RecoverDataVolume makes: the volume exists and is Deleted. */
  async requireDeleted(uuid: string): Promise<VolumeRow> {
    const v = await this.require(uuid);
    if (v.status !== 'Deleted') {
      throw err('SYS.1006', `the volume[uuid:${uuid}] is not in status of deleted. This operation is to recover a deleted data volume`);
    }
    return v;
  }

  /** RecoverDataVolume: Ready again where its file still is (its bytes were never given back), else NotInstantiated. */
  async recover(uuid: string): Promise<VolumeRow> {
    return this.app.locks.withLock(volumeLockKey(uuid), async () => {
      const v = await this.requireDeleted(uuid);
      const [row] = await this.app.db
        .update(volumes)
        .set({ status: v.installPath && v.primaryStorageUuid ? 'Ready' : 'NotInstantiated', lastOpDate: new Date() })
        .where(eq(volumes.uuid, uuid))
        .returning();
      return row;
    });
  }

  /** ChangeVolumeState's checks: data volumes only, not Deleted. */
  async requireStateChangeable(uuid: string): Promise<VolumeRow> {
    const v = await this.require(uuid);
    if (v.type !== 'Data') throw err('SYS.1006', `it's not allowed to change state of root volume, uuid:${uuid}`);
    if (v.status === 'Deleted') throw err('SYS.1006', `the volume[uuid:${uuid}] is in status of deleted, cannot do the operation`);
    return v;
  }

  async changeState(uuid: string, stateEvent: 'enable' | 'disable'): Promise<VolumeRow> {
    return this.app.locks.withLock(volumeLockKey(uuid), async () => {
      await this.requireStateChangeable(uuid);
      return this.set(uuid, { state: stateEvent === 'enable' ? 'Enabled' : 'Disabled' });
    });
  }

  /** Writes the given columns (and lastOpDate) and returns the row. */
  async set(uuid: string, changes: Partial<Pick<VolumeRow, 'name' | 'description' | 'state'>>): Promise<VolumeRow> {
    const [row] = await this.app.db
      .update(volumes)
      .set({ ...changes, lastOpDate: new Date() })
      .where(eq(volumes.uuid, uuid))
      .returning();
    if (!row) throw notFound('VolumeVO', uuid);
    return row;
  }

  /** Periodic: volumes Deleted longer than `volume/expungePeriod` go for good. */
  async expungeExpired(): Promise<void> {
    if (this.app.globalConfig.get('volume', 'deletionPolicy') === 'Never') return;
    const before = new Date(Date.now() - this.app.globalConfig.getMs('volume', 'expungePeriod'));
    const due = await this.app.db
      .select()
      .from(volumes)
      .where(and(eq(volumes.status, 'Deleted'), lt(volumes.lastOpDate, before)));
    for (const v of due) {
      await this.app.locks
        .withLock(volumeLockKey(v.uuid), () => this.expungeLocked(v))
        .catch((e) => console.error(`[volume] expunging volume[uuid:${v.uuid}] failed:`, toApiError(e).message));
    }
  }
}

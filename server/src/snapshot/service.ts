// Volume snapshots (upstream 1.1 VolumeSnapshotManagerImpl / VolumeSnapshotTreeBase, local and NFS semantics on the
// kvm agent). Everything that touches a volume's chain of files runs under the volume's lock (`volume:<uuid>`, the
// lock its attach/detach/delete take), then its VM's, so snapshots of one volume are taken one at a time and never
// race a revert, a merge or the volume's deletion.
//
// The files: an incremental snapshot freezes the volume's current file as the snapshot and the volume goes on in a new
// file on top of it; a full snapshot (a tree's root once the chain reached `incrementalSnapshot.maxNum`, or the first
// after a revert) is a standalone copy. Deleting a snapshot deletes its descendants; when the volume's current file sits
// on one of them, the host first rebases the volume onto the deleted snapshot's parent (or makes it standalone).
// Capacity: a snapshot holds `size` bytes of its primary storage from the moment its size is known to its deletion.
import { and, asc, eq, inArray, notInArray, sql } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import { argErr, err, notFound, opErr, stateErr, toApiError } from '../core/errors.js';
import { runFlow } from '../core/flow.js';
import { newUuid } from '../core/ids.js';
import type { Tx } from '../db/index.js';
import {
  backupStorageZoneRefs,
  hosts,
  primaryStorage,
  primaryStorageClusterRefs,
  volumes,
  volumeSnapshotBackupStorageRefs,
  volumeSnapshots,
  volumeSnapshotTrees,
} from '../db/schema/index.js';
import { deleteImageBits } from '../image/index.js';
import type { BackupStorageRow } from '../storage/index.js';
import { deleteVolumeBits, notInStateErr, vmLockKey, volumeLockKey, type VmRow, type VolumeRow } from '../vm/index.js';
import { snapshotInventories, type SnapshotRow } from './inventory.js';
import { uploadToBackupStorage } from './upload.js';

export type SnapshotDeps = 'volumes' | 'vms' | 'hosts' | 'primaryStorage' | 'backupStorage';

export const dirOf = (path: string) => path.slice(0, path.lastIndexOf('/'));

export class VolumeSnapshotService {
  constructor(readonly app: DomainContext<SnapshotDeps>) {}

  get db() {
    return this.app.db;
  }

  async get(uuid: string): Promise<SnapshotRow | undefined> {
    const [s] = await this.db.select().from(volumeSnapshots).where(eq(volumeSnapshots.uuid, uuid));
    return s;
  }

  async require(uuid: string, field = 'uuid'): Promise<SnapshotRow> {
    const s = await this.get(uuid);
    if (!s) throw notFound('VolumeSnapshotVO', uuid, field);
    return s;
  }

  async inventory(uuid: string) {
    return (await snapshotInventories([await this.require(uuid)], this.db))[0];
  }

  /**
   * Runs `fn` under the volume's lock, then its VM's (the order attach takes them), with fresh rows. A volume that is
   * gone is `undefined` (snapshots left by an expunged volume are cleaned without it).
   */
  async withVolume<T>(volumeUuid: string, fn: (v: VolumeRow | undefined, vm: VmRow | undefined) => Promise<T>): Promise<T> {
    return this.app.locks.withLock(volumeLockKey(volumeUuid), async () => {
      const v = await this.app.use('volumes').get(volumeUuid);
      if (!v?.vmInstanceUuid) return fn(v, undefined);
      const vmUuid = v.vmInstanceUuid;
      return this.app.locks.withLock(vmLockKey(vmUuid), async () => {
        const fresh = await this.app.use('volumes').get(volumeUuid);
        return fn(fresh, fresh?.vmInstanceUuid ? await this.app.use('vms').get(fresh.vmInstanceUuid) : undefined);
      });
    });
  }

  /** A Connected host that reaches the primary storage: the VM's own first (its local files), else the first by uuid. */
  async hostFor(psUuid: string, vm?: VmRow): Promise<string> {
    for (const uuid of [vm?.hostUuid, vm?.lastHostUuid]) {
      if (uuid && (await this.app.use('hosts').get(uuid))?.status === 'Connected') return uuid;
    }
    const [h] = await this.db
      .select({ uuid: hosts.uuid })
      .from(hosts)
      .innerJoin(primaryStorageClusterRefs, eq(primaryStorageClusterRefs.clusterUuid, hosts.clusterUuid))
      .where(and(eq(primaryStorageClusterRefs.primaryStorageUuid, psUuid), eq(hosts.status, 'Connected')))
      .orderBy(asc(hosts.uuid)) // as the vm domain's VolumeService picks: the same host every time
      .limit(1);
    if (!h) throw opErr(`no Connected host can reach primary storage[uuid:${psUuid}]`);
    return h.uuid;
  }

  /** Every host in a cluster the primary storage is attached to, whatever its status. */
  async hostsReaching(psUuid: string): Promise<string[]> {
    const rows = await this.db
      .select({ uuid: hosts.uuid })
      .from(hosts)
      .innerJoin(primaryStorageClusterRefs, eq(primaryStorageClusterRefs.clusterUuid, hosts.clusterUuid))
      .where(eq(primaryStorageClusterRefs.primaryStorageUuid, psUuid))
      .orderBy(asc(hosts.uuid));
    return rows.map((r) => r.uuid);
  }

  /** The volume must be Ready on primary storage and Enabled; its VM (if any) Running or Stopped. */
  checkSnapshottable(v: VolumeRow, vm: VmRow | undefined): void {
    if (v.status !== 'Ready' || !v.primaryStorageUuid || !v.installPath) {
      throw stateErr('SYS.1010', `volume[uuid:${v.uuid}] is ${v.status}; only Ready volumes on primary storage can be snapshotted`);
    }
    if (v.state !== 'Enabled') throw stateErr('SYS.1010', `volume[uuid:${v.uuid}] is ${v.state}; only Enabled volumes can be snapshotted`);
    if (vm && vm.state !== 'Running' && vm.state !== 'Stopped') throw notInStateErr(vm.state, 'CreateVolumeSnapshot', ['Running', 'Stopped']);
  }

  // ---------------------------------------------------------------------------------------------------- create

  async create(volumeUuid: string, spec: { uuid?: string; name: string; description?: string }): Promise<SnapshotRow> {
    return this.withVolume(volumeUuid, async (v, vm) => {
      if (!v) throw notFound('VolumeVO', volumeUuid, 'volumeUuid');
      this.checkSnapshottable(v, vm);
      const psUuid = v.primaryStorageUuid!;
      const oldPath = v.installPath!;
      const hostUuid = await this.hostFor(psUuid, vm);
      const [currentTree] = await this.db
        .select()
        .from(volumeSnapshotTrees)
        .where(and(eq(volumeSnapshotTrees.volumeUuid, v.uuid), eq(volumeSnapshotTrees.current, true)));
      const [latest] = await this.db
        .select()
        .from(volumeSnapshots)
        .where(and(eq(volumeSnapshots.volumeUuid, v.uuid), eq(volumeSnapshots.latest, true)));
      const maxIncremental = this.app.globalConfig.getNumber('volumeSnapshot', 'incrementalSnapshot.maxNum');
      const onCurrent = currentTree && latest && latest.treeUuid === currentTree.uuid;
      const extend = onCurrent && latest.distance + 1 < maxIncremental;
      // A new tree's root is standalone unless the volume sits on no snapshot at all (its first snapshot).
      const full = !extend && latest !== undefined;
      const uuid = spec.uuid ?? newUuid();
      const d = {
        treeUuid: extend ? currentTree.uuid : newUuid(),
        newVolumeInstallPath: `${dirOf(oldPath)}/${newUuid()}.qcow2`,
        snapshotInstallPath: full ? `${dirOf(oldPath)}/snapshots/${uuid}.qcow2` : oldPath,
        size: 0,
      };
      await runFlow(
        'create-volume-snapshot',
        [
          {
            name: 'record',
            run: async () => {
              await this.db.transaction(async (tx) => {
                if (!extend) {
                  await tx.update(volumeSnapshotTrees).set({ current: false, lastOpDate: new Date() }).where(eq(volumeSnapshotTrees.volumeUuid, v.uuid));
                  await tx.insert(volumeSnapshotTrees).values({ uuid: d.treeUuid, volumeUuid: v.uuid, current: true });
                }
                await tx.insert(volumeSnapshots).values({
                  uuid,
                  name: spec.name,
                  description: spec.description ?? null,
                  volumeUuid: v.uuid,
                  treeUuid: d.treeUuid,
                  parentUuid: extend ? latest.uuid : null,
                  primaryStorageUuid: psUuid,
                  volumeType: v.type,
                  format: v.format,
                  fullSnapshot: full,
                  distance: extend ? latest.distance + 1 : 0,
                  status: 'Creating',
                });
              });
            },
            rollback: async () => {
              await this.db.transaction(async (tx) => {
                await tx.delete(volumeSnapshots).where(eq(volumeSnapshots.uuid, uuid));
                if (!extend) {
                  await tx.delete(volumeSnapshotTrees).where(eq(volumeSnapshotTrees.uuid, d.treeUuid));
                  if (currentTree) await tx.update(volumeSnapshotTrees).set({ current: true }).where(eq(volumeSnapshotTrees.uuid, currentTree.uuid));
                }
              });
            },
          },
          {
            name: 'take-on-host',
            run: async () => {
              const r = await this.app.use('hosts').call(hostUuid, '/vm/volume/takesnapshot', {
                volumeUuid: v.uuid,
                ...(vm?.state === 'Running' ? { vmUuid: vm.uuid } : {}),
                volumeInstallPath: oldPath,
                newVolumeInstallPath: d.newVolumeInstallPath,
                ...(full ? { snapshotInstallPath: d.snapshotInstallPath } : {}),
                fullSnapshot: full,
                volumeSize: v.size,
              });
              d.size = r.size ?? 0;
              if (r.snapshotInstallPath) d.snapshotInstallPath = r.snapshotInstallPath;
            },
            // The volume stays on its old file: the new overlay (and a full copy) go.
            rollback: async () => {
              await this.deleteFile(hostUuid, psUuid, `${uuid}-overlay`, d.newVolumeInstallPath);
              if (full) await this.deleteFile(hostUuid, psUuid, uuid, d.snapshotInstallPath);
            },
          },
          {
            name: 'reserve-capacity',
            run: async () => {
              await this.db.transaction(async (tx) => {
                if (!(await this.app.use('primaryStorage').reserve(tx, psUuid, d.size))) {
                  throw err('PS.1000', `primary storage[uuid:${psUuid}] has not ${d.size} bytes free for snapshot[uuid:${uuid}] of volume[uuid:${v.uuid}]`);
                }
                await tx.update(volumeSnapshots).set({ size: d.size }).where(eq(volumeSnapshots.uuid, uuid));
              });
            },
            rollback: async () => {
              await this.db.transaction(async (tx) => {
                await this.app.use('primaryStorage').release(tx, psUuid, d.size);
                await tx.update(volumeSnapshots).set({ size: 0 }).where(eq(volumeSnapshots.uuid, uuid));
              });
            },
          },
          {
            name: 'commit',
            run: async () => {
              await this.db.transaction(async (tx) => {
                await tx
                  .update(volumeSnapshots)
                  .set({ latest: false })
                  .where(and(eq(volumeSnapshots.volumeUuid, v.uuid), eq(volumeSnapshots.latest, true)));
                await tx
                  .update(volumeSnapshots)
                  .set({ status: 'Ready', latest: true, primaryStorageInstallPath: d.snapshotInstallPath, lastOpDate: new Date() })
                  .where(eq(volumeSnapshots.uuid, uuid));
                await tx.update(volumes).set({ installPath: d.newVolumeInstallPath, lastOpDate: new Date() }).where(eq(volumes.uuid, v.uuid));
              });
            },
          },
        ],
        d,
      );
      // A full snapshot leaves the volume's old file to nobody: it goes (later, through the GC, if the host is away).
      if (full) await this.deleteFile(hostUuid, psUuid, `${uuid}-previous`, oldPath);
      return (await this.get(uuid))!;
    });
  }

  // ---------------------------------------------------------------------------------------------------- delete

  /** DeleteVolumeSnapshot: the snapshot and its descendants, merged out of the volume's chain first when needed. */
  async delete(uuid: string): Promise<void> {
    const s = await this.get(uuid);
    if (!s) return;
    await this.withVolume(s.volumeUuid, async (v, vm) => {
      const fresh = await this.get(uuid);
      if (!fresh) return;
      const tree = await this.db.select().from(volumeSnapshots).where(eq(volumeSnapshots.treeUuid, fresh.treeUuid));
      const doomed = descendantsOf(fresh, tree);
      await this.deleteLocked(doomed, v, vm);
    });
  }

  /** Deletes `doomed` (a snapshot with all its descendants) under the volume's lock. */
  private async deleteLocked(doomed: SnapshotRow[], v: VolumeRow | undefined, vm: VmRow | undefined): Promise<void> {
    if (doomed.length === 0) return;
    const root = doomed[0];
    const psUuid = root.primaryStorageUuid;
    const hostUuid = await this.hostFor(psUuid, vm).catch(() => undefined);
    const latest = doomed.find((x) => x.latest);
    const parent = root.parentUuid ? await this.get(root.parentUuid) : undefined;
    if (latest && v?.installPath) {
      // The volume's current file sits on a snapshot going away: the host merges them into the volume first.
      if (!hostUuid)
        throw opErr(`no Connected host can reach primary storage[uuid:${psUuid}] to merge snapshot[uuid:${root.uuid}] into volume[uuid:${v.uuid}]`);
      await this.app.use('hosts').call(hostUuid, '/vm/volume/mergesnapshot', {
        volumeUuid: v.uuid,
        ...(vm?.state === 'Running' ? { vmUuid: vm.uuid } : {}),
        volumeInstallPath: v.installPath,
        ...(parent?.primaryStorageInstallPath ? { baseInstallPath: parent.primaryStorageInstallPath } : {}),
      });
    }
    const uuids = doomed.map((x) => x.uuid);
    const refs = await this.db.select().from(volumeSnapshotBackupStorageRefs).where(inArray(volumeSnapshotBackupStorageRefs.volumeSnapshotUuid, uuids));
    await this.db.transaction(async (tx) => {
      await tx.delete(volumeSnapshots).where(inArray(volumeSnapshots.uuid, uuids));
      await this.app.use('primaryStorage').release(
        tx,
        psUuid,
        doomed.reduce((sum, x) => sum + x.size, 0),
      );
      if (latest && parent) await tx.update(volumeSnapshots).set({ latest: true, lastOpDate: new Date() }).where(eq(volumeSnapshots.uuid, parent.uuid));
      // A tree left without snapshots goes.
      await tx
        .delete(volumeSnapshotTrees)
        .where(
          and(
            eq(volumeSnapshotTrees.uuid, root.treeUuid),
            sql`NOT EXISTS (SELECT 1 FROM ${volumeSnapshots} WHERE ${volumeSnapshots.treeUuid} = ${volumeSnapshotTrees.uuid})`,
          ),
        );
    });
    // Files after the commit; an unreachable host or backup storage leaves a GC job, never a silent leftover.
    // With the volume gone, so is the knowledge of which host held its files (local storage, a VM's last host):
    // every host reaching the storage deletes them (an absent file is a success; a host away gets a GC job).
    const fileHosts = v ? (hostUuid ? [hostUuid] : []) : await this.hostsReaching(psUuid);
    for (const x of doomed) {
      // The file the volume itself now lives in is never a snapshot's (snapshots are frozen files), so all go.
      if (!x.primaryStorageInstallPath) continue;
      for (const h of fileHosts) await this.deleteFile(h, psUuid, x.uuid, x.primaryStorageInstallPath);
    }
    for (const r of refs) {
      await deleteImageBits(this.app, { imageUuid: r.volumeSnapshotUuid, backupStorageUuid: r.backupStorageUuid, installPath: r.installPath }).catch((e) =>
        console.warn(`[snapshot] copy ${r.installPath} left on backup storage[uuid:${r.backupStorageUuid}]: ${toApiError(e).message}`),
      );
    }
  }

  /** Deletes a file on primary storage through a host; unreachable → a GC job (vm's DeleteVolumeBits). */
  async deleteFile(hostUuid: string, psUuid: string, key: string, installPath: string): Promise<void> {
    await deleteVolumeBits(this.app, hostUuid, { uuid: key, installPath, primaryStorageUuid: psUuid }).catch((e) =>
      console.warn(`[snapshot] file ${installPath} left on host[uuid:${hostUuid}]: ${toApiError(e).message}`),
    );
  }

  /** Snapshots whose volume is gone (expunged): deleted with their files, copies and capacity. */
  async removeOrphans(): Promise<void> {
    const orphans = await this.db
      .select({ volumeUuid: volumeSnapshots.volumeUuid })
      .from(volumeSnapshots)
      .where(notInArray(volumeSnapshots.volumeUuid, this.db.select({ uuid: volumes.uuid }).from(volumes)))
      .groupBy(volumeSnapshots.volumeUuid);
    for (const { volumeUuid } of orphans) {
      await this.withVolume(volumeUuid, async (v) => {
        if (v) return; // recreated with the same uuid: not an orphan
        const rows = await this.db.select().from(volumeSnapshots).where(eq(volumeSnapshots.volumeUuid, volumeUuid));
        // Roots first, each with its descendants (a tree at a time: one release per tree).
        for (const root of rows.filter((r) => !r.parentUuid || !rows.some((p) => p.uuid === r.parentUuid))) {
          await this.deleteLocked(descendantsOf(root, rows), undefined, undefined);
        }
      }).catch((e) => console.error(`[snapshot] cleaning the snapshots of expunged volume[uuid:${volumeUuid}] failed: ${toApiError(e).message}`));
    }
    // Trees emptied by their primary storage's deletion (its snapshots went by foreign key). A tree is never empty
    // otherwise: it is written with its first snapshot and deleted with its last.
    await this.db
      .delete(volumeSnapshotTrees)
      .where(sql`NOT EXISTS (SELECT 1 FROM ${volumeSnapshots} WHERE ${volumeSnapshots.treeUuid} = ${volumeSnapshotTrees.uuid})`);
  }

  // ---------------------------------------------------------------------------------------------------- revert

  async revert(uuid: string): Promise<void> {
    const s = await this.require(uuid);
    await this.withVolume(s.volumeUuid, async (v, vm) => {
      const snap = await this.require(uuid);
      if (!v) throw notFound('VolumeVO', s.volumeUuid, 'volumeUuid');
      if (snap.status !== 'Ready' || !snap.primaryStorageInstallPath) throw stateErr('SYS.1010', `snapshot[uuid:${uuid}] is ${snap.status}, not Ready`);
      if (vm && vm.state !== 'Stopped') throw notInStateErr(vm.state, 'RevertVolumeFromSnapshot', ['Stopped']);
      if (v.status !== 'Ready' || !v.installPath) throw stateErr('SYS.1010', `volume[uuid:${v.uuid}] is ${v.status}; only Ready volumes can be reverted`);
      const hostUuid = await this.hostFor(snap.primaryStorageUuid, vm);
      const oldPath = v.installPath;
      const newPath = `${dirOf(oldPath)}/${newUuid()}.qcow2`;
      await runFlow(
        'revert-volume-from-snapshot',
        [
          {
            name: 'revert-on-host',
            run: async () =>
              void (await this.app.use('hosts').call(hostUuid, '/primarystorage/snapshot/revert', {
                volumeUuid: v.uuid,
                snapshotInstallPath: snap.primaryStorageInstallPath!,
                newVolumeInstallPath: newPath,
                volumeSize: v.size,
              })),
            rollback: () => this.deleteFile(hostUuid, snap.primaryStorageUuid, `${v.uuid}-revert`, newPath),
          },
          {
            name: 'commit',
            run: async () => {
              await this.db.transaction(async (tx) => {
                await tx.update(volumes).set({ installPath: newPath, lastOpDate: new Date() }).where(eq(volumes.uuid, v.uuid));
                await tx
                  .update(volumeSnapshots)
                  .set({ latest: false })
                  .where(and(eq(volumeSnapshots.volumeUuid, v.uuid), eq(volumeSnapshots.latest, true)));
                await tx.update(volumeSnapshots).set({ latest: true, lastOpDate: new Date() }).where(eq(volumeSnapshots.uuid, uuid));
                // The volume's next snapshot starts a new tree.
                await tx.update(volumeSnapshotTrees).set({ current: false, lastOpDate: new Date() }).where(eq(volumeSnapshotTrees.volumeUuid, v.uuid));
              });
            },
          },
        ],
        {},
      );
      // The old file is no snapshot's (snapshots are frozen files): it goes.
      await this.deleteFile(hostUuid, snap.primaryStorageUuid, `${v.uuid}-reverted`, oldPath);
    });
  }

  // ---------------------------------------------------------------------------------------------------- backup storage

  /** The backup storage of the primary storage's zone a copy may go to: named, or the first usable one. */
  async targetBackupStorage(psUuid: string, bsUuids: string[] | undefined, field: string): Promise<BackupStorageRow[]> {
    const bsService = this.app.use('backupStorage');
    const [ps] = await this.db.select({ zoneUuid: primaryStorage.zoneUuid }).from(primaryStorage).where(eq(primaryStorage.uuid, psUuid));
    const inZone = new Set(
      (
        await this.db
          .select({ uuid: backupStorageZoneRefs.backupStorageUuid })
          .from(backupStorageZoneRefs)
          .where(eq(backupStorageZoneRefs.zoneUuid, ps?.zoneUuid ?? ''))
      ).map((r) => r.uuid),
    );
    const usable = (bs: BackupStorageRow) => bs.state === 'Enabled' && bs.status === 'Connected' && bs.availableCapacity > 0;
    if (bsUuids?.length) {
      const rows: BackupStorageRow[] = [];
      for (const u of bsUuids) {
        const bs = await bsService.require(u, field);
        if (!inZone.has(bs.uuid))
          throw argErr(`field[${field}]: backup storage[uuid:${bs.uuid}] is not attached to the zone of primary storage[uuid:${psUuid}]`);
        if (!usable(bs)) throw err('SYS.1010', `backup storage[uuid:${bs.uuid}] is ${bs.state}, ${bs.status}, ${bs.availableCapacity} bytes free`);
        rows.push(bs);
      }
      return rows;
    }
    for (const u of inZone) {
      const bs = await bsService.get(u);
      if (bs && usable(bs)) return [bs];
    }
    throw err('SYS.1010', `no Enabled, Connected backup storage with free capacity is attached to the zone of primary storage[uuid:${psUuid}]`);
  }

  async backup(uuid: string, bsUuid: string | undefined): Promise<void> {
    const s = await this.require(uuid);
    const [target] = await this.targetBackupStorage(s.primaryStorageUuid, bsUuid ? [bsUuid] : undefined, 'backupStorageUuid');
    await this.withVolume(s.volumeUuid, async (_v, vm) => {
      const snap = await this.require(uuid);
      if (snap.status !== 'Ready' || !snap.primaryStorageInstallPath) throw stateErr('SYS.1010', `snapshot[uuid:${uuid}] is ${snap.status}, not Ready`);
      const [on] = await this.db
        .select()
        .from(volumeSnapshotBackupStorageRefs)
        .where(and(eq(volumeSnapshotBackupStorageRefs.volumeSnapshotUuid, uuid), eq(volumeSnapshotBackupStorageRefs.backupStorageUuid, target.uuid)));
      if (on) throw argErr(`field[backupStorageUuid]: snapshot[uuid:${uuid}] is already on backup storage[uuid:${target.uuid}]`);
      const hostUuid = await this.hostFor(snap.primaryStorageUuid, vm);
      const installPath = `${this.app.use('backupStorage').storagePathOf(target).replace(/\/$/, '')}/volumeSnapshots/${snap.volumeUuid}/${uuid}.qcow2`;
      const [result] = await uploadToBackupStorage(this.app, {
        key: uuid,
        hostUuid,
        sourcePath: snap.primaryStorageInstallPath,
        size: snap.size,
        targets: [{ bs: target, installPath }],
      });
      if (result.error) throw result.error;
      await this.db.insert(volumeSnapshotBackupStorageRefs).values({ volumeSnapshotUuid: uuid, backupStorageUuid: target.uuid, installPath });
    });
  }

  async deleteFromBackupStorage(uuid: string, bsUuids: string[]): Promise<void> {
    const s = await this.require(uuid);
    await this.withVolume(s.volumeUuid, async () => {
      const refs = await this.db
        .select()
        .from(volumeSnapshotBackupStorageRefs)
        .where(and(eq(volumeSnapshotBackupStorageRefs.volumeSnapshotUuid, uuid), inArray(volumeSnapshotBackupStorageRefs.backupStorageUuid, bsUuids)));
      for (const r of refs) {
        await deleteImageBits(this.app, { imageUuid: uuid, backupStorageUuid: r.backupStorageUuid, installPath: r.installPath });
        await this.db
          .delete(volumeSnapshotBackupStorageRefs)
          .where(and(eq(volumeSnapshotBackupStorageRefs.volumeSnapshotUuid, uuid), eq(volumeSnapshotBackupStorageRefs.backupStorageUuid, r.backupStorageUuid)));
      }
    });
  }

  /** Snapshots interrupted by a crash (no other node can be running them): their rows and reservations go. */
  async settleInterrupted(tx: Tx = this.db): Promise<void> {
    const stuck = await tx.select().from(volumeSnapshots).where(eq(volumeSnapshots.status, 'Creating'));
    for (const s of stuck) {
      await tx.delete(volumeSnapshots).where(eq(volumeSnapshots.uuid, s.uuid));
      await this.app.use('primaryStorage').release(tx, s.primaryStorageUuid, s.size);
    }
  }
}

/** `root` and everything below it among `rows`, parents before children. */
export function descendantsOf(root: SnapshotRow, rows: SnapshotRow[]): SnapshotRow[] {
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...rows.filter((r) => r.parentUuid === out[i].uuid));
  return out;
}

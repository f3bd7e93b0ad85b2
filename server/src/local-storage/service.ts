// Local storage's own APIs (upstream LocalStorageBase / LocalStorageKvmBackend, 1.1): which host's disk holds each
// volume (local_storage_resource_refs), per-host capacity, and volume migration between hosts through the agents.
//
// A volume is recorded on the host of its VM when it is first seen there (the VM's host, or the host it stopped on);
// the record follows a running VM's host and moves with LocalStorageMigrateVolume. The records are brought in step
// with the volumes on every VM state change, before each local-storage API, and with every capacity sync round.
import { and, eq, inArray, ne, sql } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import { argErr, notFound, opErr, stateErr, toApiError } from '../core/errors.js';
import { runFlow } from '../core/flow.js';
import { defineHandlers } from '../core/handlers.js';
import { schemaExpands } from '../core/inventory-schema.js';
import { fieldsFromTable, type InventoryDescriptor } from '../core/query.js';
import { formatDate } from '../core/dates.js';
import { hosts, localStorageResourceRefs, primaryStorage, primaryStorageClusterRefs, vmInstances, volumes } from '../db/schema/index.js';
import { rows } from '../db/index.js';
import type { PrimaryStorageService } from '../storage/index.js';
import { vmLockKey, volumeInventory } from '../vm/index.js';

export type LocalStorageContext = DomainContext<'hosts' | 'primaryStorage' | 'volumes'>;
type RefRow = typeof localStorageResourceRefs.$inferSelect;
type HostRow = typeof hosts.$inferSelect;
type VolumeRow = typeof volumes.$inferSelect;

export const localStorageResourceRefDescriptor: InventoryDescriptor<RefRow> = {
  name: 'LocalStorageResourceRefInventory',
  table: localStorageResourceRefs,
  fields: fieldsFromTable(localStorageResourceRefs),
  expand: {
    // resource_uuid names a volume by 1.1's generic key and has no foreign key.
    volume: { inventory: 'VolumeInventory', localKey: 'resourceUuid', remoteKey: 'uuid' },
    ...schemaExpands(localStorageResourceRefs),
  },
  defaultSort: 'createDate',
  toInventories: async (rows) =>
    rows.map((r) => ({
      resourceUuid: r.resourceUuid,
      primaryStorageUuid: r.primaryStorageUuid,
      hostUuid: r.hostUuid,
      size: r.size,
      resourceType: r.resourceType as 'VolumeVO',
      createDate: formatDate(r.createDate)!,
      lastOpDate: formatDate(r.lastOpDate)!,
    })),
};

export class LocalStorage {
  constructor(
    private app: LocalStorageContext,
    private primary: PrimaryStorageService,
  ) {}

  /**
   * Brings the records in step with the volumes: new ones on their VM's host, running VMs' hosts, sizes, gone ones.
   * `vmUuid`: only that VM's volumes (a VM's state changed), and records of volumes gone only when `gone`.
   */
  async syncRefs(scope: { vmUuid?: string; gone?: boolean } = {}): Promise<void> {
    const db = this.app.db;
    const ofVm = scope.vmUuid ? sql` AND v.vm_instance_uuid = ${scope.vmUuid}` : sql``;
    await db.execute(sql`
      INSERT INTO ${localStorageResourceRefs} (resource_uuid, primary_storage_uuid, host_uuid, size, resource_type)
      SELECT v.uuid, v.primary_storage_uuid, COALESCE(vm.host_uuid, vm.last_host_uuid), v.size, 'VolumeVO'
        FROM ${volumes} v
        JOIN ${primaryStorage} p ON p.uuid = v.primary_storage_uuid AND p.type = 'LocalStorage'
        JOIN ${vmInstances} vm ON vm.uuid = v.vm_instance_uuid
        JOIN ${hosts} h ON h.uuid = COALESCE(vm.host_uuid, vm.last_host_uuid)
       WHERE v.status = 'Ready'${ofVm}
      ON CONFLICT (resource_uuid) DO NOTHING`);
    await db.execute(sql`
      UPDATE ${localStorageResourceRefs} r
         SET host_uuid = COALESCE(vm.host_uuid, r.host_uuid), size = v.size, last_op_date = now()
        FROM ${volumes} v LEFT JOIN ${vmInstances} vm ON vm.uuid = v.vm_instance_uuid
       WHERE v.uuid = r.resource_uuid${ofVm}
         AND (r.size <> v.size OR (vm.host_uuid IS NOT NULL AND vm.host_uuid <> r.host_uuid))
         AND (vm.host_uuid IS NULL OR EXISTS (SELECT 1 FROM ${hosts} h WHERE h.uuid = vm.host_uuid))`);
    if (scope.gone === false) return;
    await db.execute(sql`
      DELETE FROM ${localStorageResourceRefs} r
       WHERE NOT EXISTS (SELECT 1 FROM ${volumes} v WHERE v.uuid = r.resource_uuid AND v.primary_storage_uuid = r.primary_storage_uuid)`);
  }

  /**
   * A VM's state changed: its records follow. One read decides whether there is anything to do — on a cloud without
   * local storage (or for a VM with no volume on it) nothing is written, so a VM creation costs no more statements
   * here; settled states only (its host is known), and volumes gone only when the VM was destroyed or expunged.
   */
  async onVmState(vmUuid: string, newState: string, primaryStorageUuids?: string[]): Promise<void> {
    const ended = newState === 'Destroyed' || newState === 'Expunged';
    if (!ended && newState !== 'Running' && newState !== 'Stopped' && newState !== 'Paused') return;
    // The emitter named where the VM's volumes are and none of them keeps volumes on a host's disk: nothing to do,
    // without a statement once those storages' types are known (a volume attached meanwhile: the periodic sync).
    if (!ended && primaryStorageUuids && !(await this.primary.anyHostLocal(primaryStorageUuids))) return;
    const [{ any }] = await rows<{ any: boolean }>(
      this.app.db,
      sql`SELECT EXISTS (SELECT 1 FROM ${volumes} v JOIN ${primaryStorage} p ON p.uuid = v.primary_storage_uuid AND p.type = 'LocalStorage'
                          WHERE v.vm_instance_uuid = ${vmUuid})
              OR (${ended}::boolean AND EXISTS (SELECT 1 FROM ${localStorageResourceRefs})) AS any`,
    );
    if (any) await this.syncRefs({ vmUuid, gone: ended });
  }

  async requireLocal(psUuid: string, field = 'primaryStorageUuid') {
    const ps = await this.primary.require(psUuid, field);
    if (ps.type !== 'LocalStorage') throw argErr(`primary storage[uuid:${psUuid}] is ${ps.type}, not LocalStorage`);
    return ps;
  }

  /** The hosts of the local storage's clusters. */
  async hostsOf(psUuid: string): Promise<HostRow[]> {
    const rows = await this.app.db
      .select({ host: hosts })
      .from(hosts)
      .innerJoin(primaryStorageClusterRefs, eq(primaryStorageClusterRefs.clusterUuid, hosts.clusterUuid))
      .where(eq(primaryStorageClusterRefs.primaryStorageUuid, psUuid))
      .orderBy(hosts.createDate);
    return rows.map((r) => r.host);
  }

  /** Per host: the disk as its agent reports it, and what the volumes recorded there leave of it. */
  async hostCapacities(psUuid: string, hostRows: HostRow[]) {
    const ps = await this.requireLocal(psUuid);
    const held = new Map<string, number>();
    if (hostRows.length) {
      const rows = await this.app.db
        .select({ hostUuid: localStorageResourceRefs.hostUuid, bytes: sql<string>`SUM(${localStorageResourceRefs.size})` })
        .from(localStorageResourceRefs)
        .where(
          and(
            eq(localStorageResourceRefs.primaryStorageUuid, psUuid),
            inArray(
              localStorageResourceRefs.hostUuid,
              hostRows.map((h) => h.uuid),
            ),
          ),
        )
        .groupBy(localStorageResourceRefs.hostUuid);
      for (const r of rows) held.set(r.hostUuid, Number(r.bytes));
    }
    return Promise.all(
      hostRows.map(async (h) => {
        let physical = { total: 0, available: 0 };
        if (h.status === 'Connected') {
          try {
            const r = await this.app
              .use('hosts')
              .call(h.uuid, '/primarystorage/capacity', { primaryStorageUuid: psUuid, mountPath: ps.url }, { timeoutMs: 30_000 });
            physical = { total: r.totalCapacity ?? 0, available: r.availableCapacity ?? 0 };
          } catch (e) {
            console.warn(`[local-storage] capacity of host[uuid:${h.uuid}]:`, toApiError(e).message);
          }
        }
        return {
          hostUuid: h.uuid,
          totalCapacity: physical.total,
          availableCapacity: Math.max(0, physical.total - (held.get(h.uuid) ?? 0)),
          totalPhysicalCapacity: physical.total,
          availablePhysicalCapacity: physical.available,
        };
      }),
    );
  }

  /** Upstream's checks of a migration (LocalStorageApiInterceptor); the volume's record and storage. */
  async migratable(volumeUuid: string): Promise<{ volume: VolumeRow; ref: RefRow }> {
    await this.syncRefs();
    const [volume] = await this.app.db.select().from(volumes).where(eq(volumes.uuid, volumeUuid));
    if (!volume) throw notFound('VolumeVO', volumeUuid, 'volumeUuid');
    const [ref] = await this.app.db.select().from(localStorageResourceRefs).where(eq(localStorageResourceRefs.resourceUuid, volumeUuid));
    if (!ref) throw argErr(`the volume[uuid:${volumeUuid}] is not on any local primary storage`);
    if (volume.status !== 'Ready') throw argErr(`the volume[uuid:${volumeUuid}] is not in status of Ready, cannot migrate it`);
    if (volume.type === 'Data' && volume.vmInstanceUuid) {
      throw argErr(
        `the data volume[uuid:${volume.uuid}, name: ${volume.name}] is still attached on the VM[uuid:${volume.vmInstanceUuid}]. Please detach it before migration`,
      );
    }
    if (volume.type === 'Root' && volume.vmInstanceUuid) {
      const [vm] = await this.app.db.select({ state: vmInstances.state }).from(vmInstances).where(eq(vmInstances.uuid, volume.vmInstanceUuid));
      if (vm?.state !== 'Stopped') {
        throw stateErr(
          'SYS.1006',
          `the volume[uuid:${volume.uuid}] is the root volume of the vm[uuid:${volume.vmInstanceUuid}]. Currently the vm is in state of ${vm?.state}, please stop it before migration`,
        );
      }
      const data = await this.app.db
        .select({ uuid: volumes.uuid })
        .from(volumes)
        .where(and(eq(volumes.vmInstanceUuid, volume.vmInstanceUuid), eq(volumes.type, 'Data')));
      if (data.length) {
        throw stateErr(
          'SYS.1006',
          `the volume[uuid:${volume.uuid}] is the root volume of the vm[uuid:${volume.vmInstanceUuid}]. Currently the vm still has ${data.length} data volumes attached, please detach them before migration`,
        );
      }
    }
    return { volume, ref };
  }

  /** Enabled, Connected hosts of the storage's clusters other than the volume's, with room for it. */
  async candidateHosts(volume: VolumeRow, ref: RefRow): Promise<HostRow[]> {
    const others = (await this.hostsOf(ref.primaryStorageUuid)).filter((h) => h.uuid !== ref.hostUuid && h.state === 'Enabled' && h.status === 'Connected');
    const capacities = await this.hostCapacities(ref.primaryStorageUuid, others);
    return others.filter((h) => (capacities.find((c) => c.hostUuid === h.uuid)?.availableCapacity ?? 0) >= volume.size);
  }

  /**
   * Copies the volume to the destination host through the agents, checks the copy there, moves the record (and a
   * root volume's VM) to that host, then deletes the source file. A failure before the record moves deletes the copy.
   */
  async migrate(volumeUuid: string, destHostUuid: string): Promise<void> {
    const { volume: first } = await this.migratable(volumeUuid);
    const locks = [`local-storage-volume:${volumeUuid}`, `local-storage-host:${destHostUuid}`];
    // A migrating root volume's VM cannot start meanwhile (the VM's own lock).
    if (first.vmInstanceUuid) locks.unshift(vmLockKey(first.vmInstanceUuid));
    await this.app.locks.withLock(locks, async () => {
      const { volume, ref } = await this.migratable(volumeUuid); // again, under the locks
      if (ref.hostUuid === destHostUuid) throw argErr(`the volume[uuid:${volumeUuid}] is already on the host[uuid:${destHostUuid}]`);
      const dest = (await this.hostsOf(ref.primaryStorageUuid)).find((h) => h.uuid === destHostUuid);
      if (!dest) {
        throw argErr(
          `the dest host[uuid:${destHostUuid}] doesn't belong to the local primary storage[uuid:${ref.primaryStorageUuid}] where the volume[uuid:${volumeUuid}] locates`,
        );
      }
      if (dest.status !== 'Connected') throw stateErr('HOST.1010', `the dest host[uuid:${destHostUuid}] is ${dest.status}, not Connected`);
      if (!volume.installPath) throw opErr(`the volume[uuid:${volumeUuid}] has no file to migrate`);
      const [room] = await this.hostCapacities(ref.primaryStorageUuid, [dest]);
      if (room.availableCapacity < volume.size) {
        throw opErr(
          `the dest host[uuid:${destHostUuid}] has ${room.availableCapacity} bytes of local storage free, the volume[uuid:${volumeUuid}] needs ${volume.size}`,
        );
      }
      const hostsSvc = this.app.use('hosts');
      const installPath = volume.installPath;
      const common = { primaryStorageUuid: ref.primaryStorageUuid };
      await runFlow(
        'local-storage-migrate-volume',
        [
          {
            name: 'copy-to-dest-host',
            run: async () =>
              void (await hostsSvc.call(
                ref.hostUuid,
                '/localstorage/volume/copy',
                { ...common, installPath, destHostUuid, destHostIp: dest.managementIp, destInstallPath: installPath, volumeUuid },
                { timeoutMs: 24 * 3600_000 },
              )),
            rollback: async () => void (await hostsSvc.call(destHostUuid, '/primarystorage/volume/delete', { ...common, installPath })),
          },
          {
            name: 'check-copy',
            run: async () => {
              const r = await hostsSvc.call(destHostUuid, '/localstorage/volume/checkbits', { ...common, installPath });
              if (!r.existing) throw opErr(`the copy of volume[uuid:${volumeUuid}] is not on the dest host[uuid:${destHostUuid}]`);
            },
          },
          {
            name: 'move-record',
            run: async () =>
              this.app.db.transaction(async (tx) => {
                await tx
                  .update(localStorageResourceRefs)
                  .set({ hostUuid: destHostUuid, lastOpDate: new Date() })
                  .where(eq(localStorageResourceRefs.resourceUuid, volumeUuid));
                // A stopped VM starts where its root volume now is.
                if (volume.type === 'Root' && volume.vmInstanceUuid) {
                  await tx
                    .update(vmInstances)
                    .set({ lastHostUuid: destHostUuid, clusterUuid: dest.clusterUuid, lastOpDate: new Date() })
                    .where(and(eq(vmInstances.uuid, volume.vmInstanceUuid), ne(vmInstances.state, 'Running')));
                }
              }),
          },
        ],
        {},
      );
      // The migration is done: a source file left behind only wastes room on the source host.
      await hostsSvc
        .call(ref.hostUuid, '/primarystorage/volume/delete', { ...common, installPath })
        .catch((e) =>
          console.warn(`[local-storage] volume[uuid:${volumeUuid}] migrated; its file on host[uuid:${ref.hostUuid}] is left:`, toApiError(e).message),
        );
    });
  }
}

export function registerLocalStorage(app: LocalStorageContext): LocalStorage {
  const local = new LocalStorage(app, app.use('primaryStorage'));
  app.addInventory(localStorageResourceRefDescriptor);
  const sync = () => local.syncRefs().catch((e) => console.warn('[local-storage] records:', toApiError(e).message));
  app.events.on('vm.state', ({ vmUuid, newState, primaryStorageUuids }) =>
    local.onVmState(vmUuid, newState, primaryStorageUuids).catch((e) => console.warn('[local-storage] records:', toApiError(e).message)),
  );
  app.every('local-storage-records', () => 60_000, sync);

  app.addHandlers(
    defineHandlers({
      GetLocalStorageHostDiskCapacity: {
        async check(msg) {
          await local.requireLocal(msg.primaryStorageUuid);
          if (msg.hostUuid && !(await local.hostsOf(msg.primaryStorageUuid)).some((h) => h.uuid === msg.hostUuid)) {
            throw argErr(`host[uuid:${msg.hostUuid}] is not in a cluster of local primary storage[uuid:${msg.primaryStorageUuid}]`);
          }
        },
        async run(msg) {
          await local.syncRefs();
          const all = await local.hostsOf(msg.primaryStorageUuid);
          return { inventories: await local.hostCapacities(msg.primaryStorageUuid, msg.hostUuid ? all.filter((h) => h.uuid === msg.hostUuid) : all) };
        },
      },
      LocalStorageGetVolumeMigratableHosts: {
        async run(msg) {
          const { volume, ref } = await local.migratable(msg.volumeUuid);
          const candidates = await local.candidateHosts(volume, ref);
          return { inventories: (await app.use('hosts').inventories(candidates)) as never };
        },
      },
      LocalStorageMigrateVolume: {
        async check(msg) {
          const { ref } = await local.migratable(msg.volumeUuid);
          if (ref.hostUuid === msg.destHostUuid) throw argErr(`the volume[uuid:${msg.volumeUuid}] is already on the host[uuid:${msg.destHostUuid}]`);
          const [h] = await app.db.select({ uuid: hosts.uuid }).from(hosts).where(eq(hosts.uuid, msg.destHostUuid));
          if (!h) throw notFound('HostVO', msg.destHostUuid, 'destHostUuid');
        },
        async run(msg) {
          await local.migrate(msg.volumeUuid, msg.destHostUuid);
          return { inventory: volumeInventory(await app.use('volumes').require(msg.volumeUuid)) as never };
        },
      },
    }),
  );
  return local;
}

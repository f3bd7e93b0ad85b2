// Primary storage: where volumes live, attached to clusters. Capacity is on the row, so a reservation is one
// conditional UPDATE. Local storage is a directory on every host of its clusters: its capacity is the sum of what
// the Connected hosts' agents report (`/primarystorage/capacity`), refreshed on attach/detach and host connect.
import { schemaExpands, schemaLinks } from '../core/inventory-schema.js';
import { and, eq, gte, inArray, sql } from 'drizzle-orm';
import { deleteHandler } from '../core/crud.js';
import type { DomainContext } from '../core/domain.js';
import { formatDate } from '../core/dates.js';
import { argErr, notFound, stateErr, toApiError } from '../core/errors.js';
import { defineHandlers } from '../core/handlers.js';
import { newUuid } from '../core/ids.js';
import { fieldsFromTable, type InventoryDescriptor } from '../core/query.js';
import type { Tx } from '../db/index.js';
import { clusters, hosts, primaryStorage, primaryStorageClusterRefs, volumes, zones } from '../db/schema/index.js';
import type { HostRow } from '../host/index.js';
import { withTypeFields, type CapacityReply, type PrimaryStorageType, type VolumeCreateCmd, type VolumeDeleteCmd, type VolumeKind } from './types.js';

export type PrimaryStorageRow = typeof primaryStorage.$inferSelect;

const TiB = 1024 ** 4;
/** Size of simulated primary storage when AddSimulatorPrimaryStorage gives none (the simulator's host default). */
export const SIMULATOR_PS_DEFAULT_CAPACITY = 10 * TiB;

/** Work other domains do before primary storage leaves a cluster (e.g. stop the cluster's VMs using it). */
export type DetachHook = (primaryStorageUuid: string, clusterUuid: string) => Promise<void>;
/** Work other domains do when primary storage enters maintenance (the vm domain stops the VMs using it). */
export type MaintenanceHook = (primaryStorageUuid: string) => Promise<void>;
/** Bytes of a primary storage held by something other than volumes (e.g. snapshots), for the capacity sync. */
export type UsageReporter = (primaryStorageUuid: string) => Promise<number>;

export class PrimaryStorageService {
  readonly detachHooks: DetachHook[] = [];
  readonly maintenanceHooks: MaintenanceHook[] = [];
  readonly usageReporters: UsageReporter[] = [];

  private readonly types = new Map<string, PrimaryStorageType>();
  /** A primary storage's type never changes and a uuid is never reused: known types save a read per volume. */
  private readonly typeNameOf = new Map<string, string>();

  constructor(readonly app: DomainContext) {
    this.registerType({ name: 'SimulatorPrimaryStorage' });
    this.registerType({ name: 'LocalStorage', hostLocal: true });
  }

  /** A storage type (types.ts): what it does differently from the default. */
  registerType(type: PrimaryStorageType): void {
    this.types.set(type.name, type);
  }

  /** The registered type names (GetPrimaryStorageTypes). */
  typeNames(): string[] {
    return [...this.types.keys()];
  }

  typeOf(ps: Pick<PrimaryStorageRow, 'type'>): PrimaryStorageType {
    return this.types.get(ps.type) ?? { name: ps.type };
  }

  /** Whether any of these primary storages keeps its volumes on one host's disk (types.ts `hostLocal`). */
  async anyHostLocal(uuids: string[], tx: Tx = this.app.db): Promise<boolean> {
    // Types already known need no read (a type never changes); the others are read and remembered.
    if (uuids.some((u) => this.typeNameOf.has(u) && this.typeOf({ type: this.typeNameOf.get(u)! }).hostLocal)) return true;
    const unknown = uuids.filter((u) => !this.typeNameOf.has(u));
    if (!unknown.length) return false;
    const rows = await tx.select({ uuid: primaryStorage.uuid, type: primaryStorage.type }).from(primaryStorage).where(inArray(primaryStorage.uuid, unknown));
    for (const r of rows) this.typeNameOf.set(r.uuid, r.type);
    return rows.some((r) => this.typeOf(r).hostLocal);
  }

  /** Where a new volume on `ps` goes (decided by its type). */
  async volumeInstallPath(ps: PrimaryStorageRow, kind: VolumeKind, volumeUuid: string, accountUuid: string): Promise<string> {
    const t = this.typeOf(ps);
    if (t.volumeInstallPath) return t.volumeInstallPath(ps, kind, volumeUuid, accountUuid);
    return `${(ps.mountPath ?? ps.url).replace(/\/$/, '')}/${kind}/acct-${accountUuid}/vol-${volumeUuid}/${volumeUuid}.qcow2`;
  }

  /** Creates a volume's bits on its primary storage, for the VM on `host`: the host's agent unless the type says otherwise. */
  async createVolume(host: HostRow | string, cmd: VolumeCreateCmd): Promise<void> {
    const ps = await this.rowIfTypeHas(cmd.primaryStorageUuid, 'createVolume');
    const hostSvc = this.app.use('hosts');
    const row = typeof host === 'string' ? await hostSvc.requireConnected(host) : host;
    const custom = ps && this.typeOf(ps).createVolume;
    if (custom) return custom.call(this.typeOf(ps), ps, row, cmd);
    await hostSvc.callOn(row, '/primarystorage/volume/create', cmd);
  }

  /** The row of a primary storage whose type has its own `hook`; undefined (and, once its type is known, no read) otherwise. */
  private async rowIfTypeHas(uuid: string | undefined, hook: 'createVolume' | 'deleteVolume'): Promise<PrimaryStorageRow | undefined> {
    if (!uuid) return undefined;
    const known = this.typeNameOf.get(uuid);
    if (known !== undefined && !this.typeOf({ type: known })[hook]) return undefined;
    const ps = await this.get(uuid);
    if (ps) this.typeNameOf.set(uuid, ps.type);
    return ps;
  }

  /** Deletes a volume's bits (absent = success): the host's agent unless the type says otherwise. */
  async deleteVolume(hostUuid: string, cmd: VolumeDeleteCmd): Promise<void> {
    const ps = await this.rowIfTypeHas(cmd.primaryStorageUuid, 'deleteVolume');
    const custom = ps && this.typeOf(ps).deleteVolume;
    if (custom) return custom.call(this.typeOf(ps), ps, hostUuid, cmd);
    await this.app.use('hosts').call(hostUuid, '/primarystorage/volume/delete', cmd);
  }

  beforeDetach(hook: DetachHook): void {
    this.detachHooks.push(hook);
  }

  beforeMaintenance(hook: MaintenanceHook): void {
    this.maintenanceHooks.push(hook);
  }

  reportUsage(reporter: UsageReporter): void {
    this.usageReporters.push(reporter);
  }

  async get(uuid: string): Promise<PrimaryStorageRow | undefined> {
    const [ps] = await this.app.db.select().from(primaryStorage).where(eq(primaryStorage.uuid, uuid));
    return ps;
  }

  async require(uuid: string, field = 'uuid'): Promise<PrimaryStorageRow> {
    const ps = await this.get(uuid);
    if (!ps) throw notFound('PrimaryStorageVO', uuid, field);
    return ps;
  }

  async attachedToCluster(clusterUuid: string): Promise<PrimaryStorageRow[]> {
    const rows = await this.app.db
      .select({ ps: primaryStorage })
      .from(primaryStorage)
      .innerJoin(primaryStorageClusterRefs, eq(primaryStorageClusterRefs.primaryStorageUuid, primaryStorage.uuid))
      .where(eq(primaryStorageClusterRefs.clusterUuid, clusterUuid))
      .orderBy(primaryStorage.createDate);
    return rows.map((r) => r.ps);
  }

  /** Takes `bytes` of the storage's available capacity if it has them; false (nothing taken) otherwise. */
  async reserve(tx: Tx, psUuid: string, bytes: number): Promise<boolean> {
    const rows = await tx
      .update(primaryStorage)
      .set({ availableCapacity: sql`${primaryStorage.availableCapacity} - ${bytes}::bigint` })
      .where(and(eq(primaryStorage.uuid, psUuid), eq(primaryStorage.state, 'Enabled'), gte(primaryStorage.availableCapacity, bytes)))
      .returning({ uuid: primaryStorage.uuid });
    return rows.length === 1;
  }

  async release(tx: Tx, psUuid: string, bytes: number): Promise<void> {
    await tx
      .update(primaryStorage)
      .set({ availableCapacity: sql`LEAST(${primaryStorage.totalCapacity}, ${primaryStorage.availableCapacity} + ${bytes}::bigint)` })
      .where(eq(primaryStorage.uuid, psUuid));
  }

  /** What the Connected hosts of a local storage's clusters report, and which of them failed to. */
  async readLocalTotals(ps: PrimaryStorageRow) {
    const members = await this.app.db
      .select({ uuid: hosts.uuid })
      .from(hosts)
      .innerJoin(primaryStorageClusterRefs, eq(primaryStorageClusterRefs.clusterUuid, hosts.clusterUuid))
      .where(and(eq(primaryStorageClusterRefs.primaryStorageUuid, ps.uuid), eq(hosts.status, 'Connected')));
    const perHost = await Promise.all(
      members.map(async (h) => {
        try {
          const r = await this.app
            .use('hosts')
            .call(h.uuid, '/primarystorage/capacity', { primaryStorageUuid: ps.uuid, mountPath: ps.url }, { timeoutMs: 30_000 });
          return { hostUuid: h.uuid, total: r.totalCapacity ?? 0, available: r.availableCapacity ?? 0 };
        } catch (e) {
          return { hostUuid: h.uuid, error: toApiError(e).message };
        }
      }),
    );
    const answered = perHost.filter((h) => h.error === undefined);
    return {
      hosts: members.length,
      total: answered.reduce((s, h) => s + (h.total ?? 0), 0),
      available: answered.reduce((s, h) => s + (h.available ?? 0), 0),
      failures: perHost.flatMap((h) => (h.error === undefined ? [] : [{ hostUuid: h.hostUuid, error: h.error }])),
    };
  }

  /** Re-sums a local storage's capacity over the Connected hosts of its clusters; what volumes hold stays held. */
  async refreshLocalCapacity(psUuid: string): Promise<void> {
    const ps = await this.get(psUuid);
    if (!ps || ps.type !== 'LocalStorage') return;
    const r = await this.readLocalTotals(ps);
    for (const f of r.failures) console.error(`[primary-storage] capacity of local storage ${psUuid} on host ${f.hostUuid}:`, f.error);
    await this.recordCapacity(psUuid, { totalCapacity: r.total, availableCapacity: r.available });
  }

  /**
   * Records the size of the whole storage as its agents report it (a reply without a total changes nothing); what
   * allocations hold stays held: available = total − (old total − old available). `also`: columns set with it.
   */
  async recordCapacity(psUuid: string, r: CapacityReply, also: Partial<typeof primaryStorage.$inferInsert> = {}): Promise<void> {
    if (r.totalCapacity === undefined) return;
    const total = r.totalCapacity;
    await this.app.db
      .update(primaryStorage)
      .set({
        totalCapacity: total,
        availableCapacity: sql`GREATEST(0, ${total}::bigint - (${primaryStorage.totalCapacity} - ${primaryStorage.availableCapacity}))`,
        totalPhysicalCapacity: total,
        availablePhysicalCapacity: r.availableCapacity ?? total,
        ...also,
      })
      .where(eq(primaryStorage.uuid, psUuid));
  }

  async refreshLocalCapacityOfCluster(clusterUuid: string): Promise<void> {
    for (const ps of await this.attachedToCluster(clusterUuid)) if (ps.type === 'LocalStorage') await this.refreshLocalCapacity(ps.uuid);
  }

  async inventories(rows: PrimaryStorageRow[], db: Tx = this.app.db) {
    return primaryStorageInventories(rows, db);
  }

  /** The inventory of the primary storage `uuid` (with its type's fields). */
  async inventory(uuid: string) {
    return (await primaryStorageInventories([await this.require(uuid)], this.app.db))[0];
  }

  /** The zone a primary storage is added to: ZoneVO not found (on `zoneUuid`) when there is none. */
  async requireZone(zoneUuid: string): Promise<void> {
    const [z] = await this.app.db.select({ uuid: zones.uuid }).from(zones).where(eq(zones.uuid, zoneUuid));
    if (!z) throw notFound('ZoneVO', zoneUuid, 'zoneUuid');
  }
}

export async function primaryStorageInventories(rows: PrimaryStorageRow[], db: Tx) {
  return withTypeFields('primary', rows, await baseInventories(rows, db), db);
}

async function baseInventories(rows: PrimaryStorageRow[], db: Tx) {
  const refs = rows.length
    ? await db
        .select()
        .from(primaryStorageClusterRefs)
        .where(
          inArray(
            primaryStorageClusterRefs.primaryStorageUuid,
            rows.map((r) => r.uuid),
          ),
        )
        .orderBy(primaryStorageClusterRefs.createDate)
    : [];
  return rows.map((ps) => ({
    uuid: ps.uuid,
    name: ps.name,
    description: ps.description ?? undefined,
    zoneUuid: ps.zoneUuid,
    url: ps.url,
    type: ps.type as 'SimulatorPrimaryStorage' | 'LocalStorage' | 'NFS' | 'Ceph' | 'IscsiFileSystemBackendPrimaryStorage',
    state: ps.state as 'Enabled' | 'Disabled' | 'Maintenance' | 'Deleting',
    status: ps.status as 'Connecting' | 'Connected' | 'Disconnected',
    totalCapacity: ps.totalCapacity,
    availableCapacity: ps.availableCapacity,
    totalPhysicalCapacity: ps.totalPhysicalCapacity,
    availablePhysicalCapacity: ps.availablePhysicalCapacity,
    systemUsedCapacity: ps.systemUsedCapacity,
    mountPath: ps.mountPath ?? undefined,
    attachedClusterUuids: refs.filter((r) => r.primaryStorageUuid === ps.uuid).map((r) => r.clusterUuid),
    createDate: formatDate(ps.createDate)!,
    lastOpDate: formatDate(ps.lastOpDate)!,
  }));
}

const clusterLinks = schemaLinks(primaryStorage, primaryStorageClusterRefs);

export const primaryStorageDescriptor: InventoryDescriptor<PrimaryStorageRow> = {
  name: 'PrimaryStorageInventory',
  table: primaryStorage,
  fields: fieldsFromTable(primaryStorage),
  expand: {
    ...schemaExpands(primaryStorage),
    // One-to-many, and volumes.primary_storage_uuid has no foreign key.
    volume: { inventory: 'VolumeInventory', localKey: 'uuid', remoteKey: 'primaryStorageUuid' },
    ...clusterLinks.expand,
  },
  aliases: clusterLinks.aliases,
  defaultSort: 'createDate',
  toInventories: primaryStorageInventories,
};

export const primaryStorageClusterRefDescriptor: InventoryDescriptor = {
  name: 'PrimaryStorageClusterRefInventory',
  table: primaryStorageClusterRefs,
  fields: fieldsFromTable(primaryStorageClusterRefs),
  expand: schemaExpands(primaryStorageClusterRefs),
  toInventories: async (rows) => rows,
};

export function registerPrimaryStorage(app: DomainContext): PrimaryStorageService {
  const { db } = app;
  const service = new PrimaryStorageService(app);
  app.addInventory(primaryStorageDescriptor);
  app.addInventory(primaryStorageClusterRefDescriptor);

  // Local storage follows its hosts: a host that connects adds its disk, a deleted one takes it away. (A host
  // that is merely Disconnected keeps counting: shrinking then would lose track of what volumes hold.)
  app.use('hosts').afterConnect(async (h) => {
    await service.refreshLocalCapacityOfCluster(h.clusterUuid);
    for (const ps of await service.attachedToCluster(h.clusterUuid)) await service.typeOf(ps).afterHostConnect?.(ps, h);
  });
  app.events.on('host.deleted', async () => {
    const locals = await db.select({ uuid: primaryStorage.uuid }).from(primaryStorage).where(eq(primaryStorage.type, 'LocalStorage'));
    for (const ps of locals) await service.refreshLocalCapacity(ps.uuid);
  });

  const attachment = async (clusterUuid: string, psUuid: string) => {
    const [c] = await db.select().from(clusters).where(eq(clusters.uuid, clusterUuid));
    if (!c) throw notFound('ClusterVO', clusterUuid, 'clusterUuid');
    const ps = await service.get(psUuid);
    if (!ps) throw notFound('PrimaryStorageVO', psUuid, 'primaryStorageUuid');
    const [ref] = await db
      .select()
      .from(primaryStorageClusterRefs)
      .where(and(eq(primaryStorageClusterRefs.clusterUuid, clusterUuid), eq(primaryStorageClusterRefs.primaryStorageUuid, psUuid)));
    return { cluster: c, ps, attached: !!ref };
  };

  app.cascade.register({
    kind: 'primaryStorage',
    parents: {
      zone: async (zoneUuids) =>
        (await db.select({ uuid: primaryStorage.uuid }).from(primaryStorage).where(inArray(primaryStorage.zoneUuid, zoneUuids))).map((r) => r.uuid),
    },
    async check(uuids, rootKind) {
      if (rootKind !== 'primaryStorage') return;
      const [ref] = await db.select().from(primaryStorageClusterRefs).where(inArray(primaryStorageClusterRefs.primaryStorageUuid, uuids)).limit(1);
      if (ref) {
        throw stateErr(
          'SYS.1004',
          `primary storage[uuid:${ref.primaryStorageUuid}] is attached to cluster[uuid:${ref.clusterUuid}]; detach it first or delete with deleteMode=Enforcing`,
        );
      }
      const [vol] = await db
        .select({ uuid: volumes.uuid, ps: volumes.primaryStorageUuid })
        .from(volumes)
        .where(inArray(volumes.primaryStorageUuid, uuids))
        .limit(1);
      if (vol)
        throw stateErr(
          'SYS.1004',
          `primary storage[uuid:${vol.ps}] holds volume[uuid:${vol.uuid}]; delete with deleteMode=Enforcing to delete its VMs and volumes`,
        );
    },
    async delete(uuids) {
      for (const ps of await db.select().from(primaryStorage).where(inArray(primaryStorage.uuid, uuids))) {
        await service
          .typeOf(ps)
          .beforeDelete?.(ps)
          .catch((e) => console.error(`[primary-storage] cleaning up ${ps.type} primary storage ${ps.uuid}:`, toApiError(e).message));
      }
      const gone = await db.delete(primaryStorage).where(inArray(primaryStorage.uuid, uuids)).returning({ uuid: primaryStorage.uuid });
      for (const ps of gone) app.events.emit('primaryStorage.deleted', { primaryStorageUuid: ps.uuid });
    },
  });

  app.addHandlers(
    defineHandlers({
      AddSimulatorPrimaryStorage: {
        async check(msg) {
          await service.requireZone(msg.zoneUuid);
          const total = msg.totalCapacity ?? SIMULATOR_PS_DEFAULT_CAPACITY;
          if (msg.availableCapacity !== undefined && msg.availableCapacity > total) {
            throw argErr(`field[availableCapacity]: ${msg.availableCapacity} is more than totalCapacity ${total}`);
          }
        },
        async run(msg) {
          const total = msg.totalCapacity ?? SIMULATOR_PS_DEFAULT_CAPACITY;
          const available = Math.min(msg.availableCapacity ?? total, total);
          const [ps] = await db
            .insert(primaryStorage)
            .values({
              uuid: msg.resourceUuid ?? newUuid(),
              zoneUuid: msg.zoneUuid,
              name: msg.name,
              description: msg.description ?? null,
              url: msg.url,
              type: 'SimulatorPrimaryStorage',
              status: 'Connected',
              totalCapacity: total,
              availableCapacity: available,
              totalPhysicalCapacity: total,
              availablePhysicalCapacity: available,
            })
            .returning();
          return { inventory: (await primaryStorageInventories([ps], db))[0] };
        },
      },
      AddLocalPrimaryStorage: {
        check: (msg) => service.requireZone(msg.zoneUuid),
        async run(msg) {
          const [ps] = await db
            .insert(primaryStorage)
            .values({
              uuid: msg.resourceUuid ?? newUuid(),
              zoneUuid: msg.zoneUuid,
              name: msg.name,
              description: msg.description ?? null,
              url: msg.url,
              mountPath: msg.url,
              type: 'LocalStorage',
              status: 'Connected',
            })
            .returning();
          return { inventory: (await primaryStorageInventories([ps], db))[0] };
        },
      },
      AttachPrimaryStorageToCluster: {
        async check(msg) {
          const { cluster, ps, attached } = await attachment(msg.clusterUuid, msg.primaryStorageUuid);
          if (cluster.zoneUuid !== ps.zoneUuid) {
            throw argErr(
              `primary storage[uuid:${ps.uuid}] is in zone[uuid:${ps.zoneUuid}] but cluster[uuid:${cluster.uuid}] is in zone[uuid:${cluster.zoneUuid}]`,
            );
          }
          if (attached) throw argErr(`primary storage[uuid:${ps.uuid}] is already attached to cluster[uuid:${cluster.uuid}]`);
        },
        async run(msg) {
          await db.insert(primaryStorageClusterRefs).values({ primaryStorageUuid: msg.primaryStorageUuid, clusterUuid: msg.clusterUuid }).onConflictDoNothing();
          const ps = await service.require(msg.primaryStorageUuid);
          try {
            await service.typeOf(ps).afterAttach?.(ps, msg.clusterUuid);
          } catch (e) {
            const where = and(eq(primaryStorageClusterRefs.clusterUuid, msg.clusterUuid), eq(primaryStorageClusterRefs.primaryStorageUuid, ps.uuid));
            await db.delete(primaryStorageClusterRefs).where(where);
            throw e;
          }
          await service.refreshLocalCapacity(msg.primaryStorageUuid);
          return { inventory: await service.inventory(msg.primaryStorageUuid) };
        },
      },
      DetachPrimaryStorageFromCluster: {
        async check(msg) {
          const { attached } = await attachment(msg.clusterUuid, msg.primaryStorageUuid);
          if (!attached) throw argErr(`primary storage[uuid:${msg.primaryStorageUuid}] is not attached to cluster[uuid:${msg.clusterUuid}]`);
        },
        async run(msg) {
          for (const hook of service.detachHooks) await hook(msg.primaryStorageUuid, msg.clusterUuid);
          await db
            .delete(primaryStorageClusterRefs)
            .where(and(eq(primaryStorageClusterRefs.clusterUuid, msg.clusterUuid), eq(primaryStorageClusterRefs.primaryStorageUuid, msg.primaryStorageUuid)));
          const ps = await service.require(msg.primaryStorageUuid);
          await service.typeOf(ps).afterDetach?.(ps, msg.clusterUuid);
          await service.refreshLocalCapacity(msg.primaryStorageUuid);
          return { inventory: await service.inventory(msg.primaryStorageUuid) };
        },
      },
      DeletePrimaryStorage: deleteHandler(app, { node: 'primaryStorage' }),
    }),
  );
  return service;
}

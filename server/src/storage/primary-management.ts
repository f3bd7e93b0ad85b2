// Primary storage management: state changes (maintenance stops the VMs using it), reconnect, the capacity sync
// (totals from the agents, used = what the volumes and other holders hold; also periodic so counters cannot drift),
// capacity figures and updates. Semantics of upstream PrimaryStorageBase (1.1; `maintain` from 2.0).
import { eq, inArray, or, sql, type SQL } from 'drizzle-orm';
import { updateHandler } from '../core/crud.js';
import type { DomainContext } from '../core/domain.js';
import { argErr, notFound, opErr, stateErr, toApiError } from '../core/errors.js';
import { defineHandlers } from '../core/handlers.js';
import { primaryStorage, primaryStorageClusterRefs, volumes } from '../db/schema/index.js';
import { primaryStorageInventories, type PrimaryStorageRow, type PrimaryStorageService } from './primary.js';

const describe = (ps: Pick<PrimaryStorageRow, 'uuid' | 'name'>) => `primary storage[uuid:${ps.uuid}, name:${ps.name}]`;

const NEXT_STATE = { enable: 'Enabled', disable: 'Disabled', maintain: 'Maintenance' } as const;

/** A local storage's hosts that did not report its capacity, for an error message. */
const failedHosts = (failures: Array<{ hostUuid: string; error: string }>) => failures.map((f) => `host[uuid:${f.hostUuid}]: ${f.error}`).join('; ');

/**
 * Re-reads the totals from the agents and sets available = total − what volumes (and the registered reporters) hold,
 * in one statement so a reservation committing meanwhile is counted once. Fails, changing nothing, when a host of a
 * local storage does not answer (its share of the total would be lost).
 */
export async function syncPrimaryStorageCapacity(service: PrimaryStorageService, psUuid: string): Promise<PrimaryStorageRow> {
  const { app } = service;
  const ps = await service.require(psUuid);
  let total = ps.totalCapacity;
  let physical = { total: ps.totalPhysicalCapacity, available: ps.availablePhysicalCapacity };
  if (ps.type === 'LocalStorage') {
    const r = await service.readLocalTotals(ps);
    if (r.failures.length) throw opErr(`failed to sync the capacity of ${describe(ps)}: ${failedHosts(r.failures)}`);
    total = r.total;
    physical = { total: r.total, available: r.available };
  }
  let others = 0;
  for (const report of service.usageReporters) others += await report(psUuid);
  const used = sql`COALESCE((SELECT SUM(${volumes.size}) FROM ${volumes} WHERE ${volumes.primaryStorageUuid} = ${psUuid}), 0) + ${others}::bigint`;
  const [row] = await app.db
    .update(primaryStorage)
    .set({
      totalCapacity: total,
      availableCapacity: sql`GREATEST(0, ${total}::bigint - (${used}))`,
      totalPhysicalCapacity: physical.total,
      availablePhysicalCapacity: physical.available,
    })
    .where(eq(primaryStorage.uuid, psUuid))
    .returning();
  if (!row) throw notFound('PrimaryStorageVO', psUuid);
  return row;
}

/** Connecting → asks the agents again → Connected (capacity synced), or Disconnected and a clear error. */
export async function reconnectPrimaryStorage(service: PrimaryStorageService, psUuid: string): Promise<PrimaryStorageRow> {
  const { app } = service;
  const ps = await service.require(psUuid);
  const setStatus = (status: string) => app.db.update(primaryStorage).set({ status, lastOpDate: new Date() }).where(eq(primaryStorage.uuid, psUuid));
  await setStatus('Connecting');
  if (ps.type === 'LocalStorage') {
    const r = await service.readLocalTotals(ps);
    if (r.hosts > 0 && r.failures.length === r.hosts) {
      await setStatus('Disconnected');
      throw opErr(`failed to reconnect ${describe(ps)}: no host of its clusters answered: ${failedHosts(r.failures)}`);
    }
  }
  try {
    await service.typeOf(ps).reconnect?.(ps); // the type's own agents (NFS mounts, Ceph monitors, iSCSI server)
  } catch (e) {
    await setStatus('Disconnected');
    throw opErr(`failed to reconnect ${describe(ps)}: ${toApiError(e).message}`);
  }
  await setStatus('Connected');
  try {
    return await syncPrimaryStorageCapacity(service, psUuid);
  } catch (e) {
    // Connected (some host answered) but a host missed: keep the old figures until the next sync.
    console.warn(`[primary-storage] reconnect of ${describe(ps)}:`, toApiError(e).message);
    return service.require(psUuid);
  }
}

export function registerPrimaryStorageManagement(app: DomainContext, service: PrimaryStorageService): void {
  const { db } = app;
  const gc = app.globalConfig;
  gc.define({
    category: 'primaryStorage',
    name: 'capacity.syncInterval',
    type: 'seconds',
    defaultValue: '300',
    min: 1,
    max: 86400,
    description: 'Seconds between syncs of every primary storage capacity with its agents and the volumes it holds (SyncPrimaryStorageCapacity)',
  });
  const inventory = async (row: PrimaryStorageRow) => (await primaryStorageInventories([row], db))[0];

  // Periodic sync, so a counter that drifted (a crash between a write and its reservation, a host's disk that grew)
  // is repaired without anyone asking. Checked every second so a changed interval applies at once.
  let lastRound = Date.now();
  app.every(
    'primary-storage-capacity-sync',
    () => Math.min(1000, gc.getMs('primaryStorage', 'capacity.syncInterval')),
    async () => {
      if (Date.now() - lastRound < gc.getMs('primaryStorage', 'capacity.syncInterval')) return;
      lastRound = Date.now();
      const all = await db
        .select({ uuid: primaryStorage.uuid })
        .from(primaryStorage)
        .where(inArray(primaryStorage.status, ['Connected']));
      for (const ps of all) {
        await syncPrimaryStorageCapacity(service, ps.uuid).catch((e) => console.warn(`[primary-storage] periodic capacity sync:`, toApiError(e).message));
      }
    },
  );

  app.addHandlers(
    defineHandlers({
      ChangePrimaryStorageState: {
        async check(msg) {
          const ps = await service.require(msg.uuid);
          if (ps.state === 'Deleting') throw stateErr('SYS.1005', `${describe(ps)} is being deleted`);
        },
        async run(msg) {
          return app.locks.withLock(`primary-storage-state:${msg.uuid}`, async () => {
            const ps = await service.require(msg.uuid);
            const next = NEXT_STATE[msg.stateEvent];
            if (ps.state === next) return { inventory: await inventory(ps) };
            // Maintenance is recorded first: from then on nothing is allocated or started on it while its VMs stop.
            const [row] = await db.update(primaryStorage).set({ state: next, lastOpDate: new Date() }).where(eq(primaryStorage.uuid, ps.uuid)).returning();
            if (next === 'Maintenance') {
              for (const hook of service.maintenanceHooks) await hook(ps.uuid);
            }
            return { inventory: await inventory(row ?? (await service.require(msg.uuid))) };
          });
        },
      },
      ReconnectPrimaryStorage: {
        check: async (msg) => void (await service.require(msg.uuid)),
        run: async (msg) => ({ inventory: await inventory(await reconnectPrimaryStorage(service, msg.uuid)) }),
      },
      SyncPrimaryStorageCapacity: {
        check: async (msg) => void (await service.require(msg.primaryStorageUuid, 'primaryStorageUuid')),
        run: async (msg) => ({ inventory: await inventory(await syncPrimaryStorageCapacity(service, msg.primaryStorageUuid)) }),
      },
      UpdatePrimaryStorage: updateHandler(app, { table: primaryStorage, entity: 'PrimaryStorageVO', inventory, fields: ['name', 'description'], check: false }),
      GetPrimaryStorageCapacity: {
        async check(msg) {
          if (!msg.all && ![msg.zoneUuids, msg.clusterUuids, msg.primaryStorageUuids].some((l) => l && l.length > 0)) {
            throw argErr('give at least one non-empty list of zoneUuids, clusterUuids or primaryStorageUuids, or all=true');
          }
        },
        async run(msg) {
          const which: SQL[] = [];
          if (msg.primaryStorageUuids?.length) which.push(inArray(primaryStorage.uuid, msg.primaryStorageUuids));
          if (msg.zoneUuids?.length) which.push(inArray(primaryStorage.zoneUuid, msg.zoneUuids));
          if (msg.clusterUuids?.length) {
            which.push(
              inArray(
                primaryStorage.uuid,
                db
                  .select({ uuid: primaryStorageClusterRefs.primaryStorageUuid })
                  .from(primaryStorageClusterRefs)
                  .where(inArray(primaryStorageClusterRefs.clusterUuid, msg.clusterUuids)),
              ),
            );
          }
          const [sum] = await db
            .select({
              totalCapacity: sql<string>`COALESCE(SUM(${primaryStorage.totalCapacity}), 0)`,
              availableCapacity: sql<string>`COALESCE(SUM(${primaryStorage.availableCapacity}), 0)`,
              totalPhysicalCapacity: sql<string>`COALESCE(SUM(${primaryStorage.totalPhysicalCapacity}), 0)`,
              availablePhysicalCapacity: sql<string>`COALESCE(SUM(${primaryStorage.availablePhysicalCapacity}), 0)`,
            })
            .from(primaryStorage)
            .where(msg.all ? undefined : or(...which));
          return {
            totalCapacity: Number(sum.totalCapacity),
            availableCapacity: Number(sum.availableCapacity),
            totalPhysicalCapacity: Number(sum.totalPhysicalCapacity),
            availablePhysicalCapacity: Number(sum.availablePhysicalCapacity),
          };
        },
      },
    }),
  );
}

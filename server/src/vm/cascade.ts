// Deletion cascade for VMs, their NICs and data volumes (zstack-api.md §5.4, upstream VmCascadeExtension):
// - vm under host: the VMs stop (capacity back) — unless the deletion started at a zone, then they go;
// - vm under primaryStorage / zone: the VMs are destroyed and expunged;
// - vmNic under l3 / ipRange: the NICs are detached (IPs back), the VMs survive; a virtual router serving the L3 goes;
// - volume under primaryStorage: the data volumes on it are deleted.
import { and, eq, inArray } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import { toApiError } from '../core/errors.js';
import { usedIps, vmInstances, vmNics, volumes } from '../db/schema/index.js';
import type { VmService } from './service.js';

const uuidsOf = (rows: Array<{ uuid: string | null }>) => [...new Set(rows.map((r) => r.uuid!).filter(Boolean))];

export function registerVmCascade(app: DomainContext, vms: VmService): void {
  const { db } = app;
  app.cascade.register({
    kind: 'vm',
    parents: {
      host: async (hostUuids) => uuidsOf(await db.select({ uuid: vmInstances.uuid }).from(vmInstances).where(inArray(vmInstances.hostUuid, hostUuids))),
      primaryStorage: async (psUuids) =>
        uuidsOf(
          await db
            .select({ uuid: volumes.vmInstanceUuid })
            .from(volumes)
            .where(and(inArray(volumes.primaryStorageUuid, psUuids), eq(volumes.type, 'Root'))),
        ),
      zone: async (zoneUuids) => uuidsOf(await db.select({ uuid: vmInstances.uuid }).from(vmInstances).where(inArray(vmInstances.zoneUuid, zoneUuids))),
    },
    async delete(uuids, rootKind) {
      if (rootKind === 'zone' || rootKind === 'primaryStorage') await vms.deleteForCascade(uuids);
      else await vms.stopForHostDeletion(uuids);
    },
  });

  app.cascade.register({
    kind: 'vmNic',
    parents: {
      l3: async (l3Uuids) => uuidsOf(await db.select({ uuid: vmNics.uuid }).from(vmNics).where(inArray(vmNics.l3NetworkUuid, l3Uuids))),
      ipRange: async (rangeUuids) =>
        uuidsOf(
          await db
            .select({ uuid: vmNics.uuid })
            .from(vmNics)
            .innerJoin(usedIps, eq(usedIps.uuid, vmNics.usedIpUuid))
            .where(inArray(usedIps.ipRangeUuid, rangeUuids)),
        ),
    },
    async delete(uuids, rootKind) {
      const rows = await db
        .select({ nic: vmNics.uuid, vm: vmInstances.uuid, type: vmInstances.type })
        .from(vmNics)
        .innerJoin(vmInstances, eq(vmInstances.uuid, vmNics.vmInstanceUuid))
        .where(inArray(vmNics.uuid, uuids));
      // An appliance VM exists for the network being deleted: it goes as a whole (upstream ApplianceVmCascadeExtension).
      for (const vmUuid of new Set(rows.filter((r) => r.type === 'ApplianceVm').map((r) => r.vm))) {
        await vms.destroy(vmUuid).catch((e) => console.warn(`[vm] cascade: destroying appliance VM[uuid:${vmUuid}] failed:`, toApiError(e).message));
      }
      for (const r of rows.filter((x) => x.type !== 'ApplianceVm')) {
        await vms
          .detachNic(r.nic, { cascade: true, touchHost: rootKind !== 'zone' })
          .catch((e) => console.warn(`[vm] cascade: detaching NIC[uuid:${r.nic}] failed:`, toApiError(e).message));
      }
    },
  });

  app.cascade.register({
    kind: 'volume',
    parents: {
      primaryStorage: async (psUuids) =>
        uuidsOf(
          await db
            .select({ uuid: volumes.uuid })
            .from(volumes)
            .where(and(inArray(volumes.primaryStorageUuid, psUuids), eq(volumes.type, 'Data'))),
        ),
    },
    async delete(uuids) {
      await db.delete(volumes).where(inArray(volumes.uuid, uuids));
      app.events.emit('volume.expunged', { volumeUuids: uuids });
    },
  });
}

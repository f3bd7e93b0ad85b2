import { schemaExpands } from '../core/inventory-schema.js';
import { formatDate } from '../core/dates.js';
import { fieldsFromTable, type InventoryDescriptor } from '../core/query.js';
import { clusters } from '../db/schema/index.js';

export type ClusterRow = typeof clusters.$inferSelect;

export function clusterInventory(c: ClusterRow) {
  return {
    uuid: c.uuid,
    name: c.name,
    description: c.description ?? undefined,
    state: c.state as 'Enabled' | 'Disabled',
    hypervisorType: c.hypervisorType as 'KVM' | 'Simulator',
    zoneUuid: c.zoneUuid,
    type: c.type,
    architecture: c.architecture ?? undefined,
    createDate: formatDate(c.createDate)!,
    lastOpDate: formatDate(c.lastOpDate)!,
  };
}

export const clusterDescriptor: InventoryDescriptor<ClusterRow> = {
  name: 'ClusterInventory',
  table: clusters,
  fields: fieldsFromTable(clusters),
  expand: {
    ...schemaExpands(clusters),
    host: { inventory: 'HostInventory', localKey: 'uuid', remoteKey: 'clusterUuid' },
    vmInstance: { inventory: 'VmInstanceInventory', localKey: 'uuid', remoteKey: 'clusterUuid' },
    primaryStorageRef: { inventory: 'PrimaryStorageClusterRefInventory', localKey: 'uuid', remoteKey: 'clusterUuid' },
    // The network domain registers this ref inventory (it owns the L2 ↔ cluster attachments).
    l2NetworkRef: { inventory: 'L2NetworkClusterRefInventory', localKey: 'uuid', remoteKey: 'clusterUuid' },
  },
  aliases: { primaryStorage: 'primaryStorageRef.primaryStorage', l2Network: 'l2NetworkRef.l2Network' },
  defaultSort: 'createDate',
  toInventories: async (rows) => rows.map(clusterInventory),
};

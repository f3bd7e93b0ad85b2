import { schemaExpands, schemaLinks } from '../core/inventory-schema.js';
import { formatDate } from '../core/dates.js';
import { fieldsFromTable, type InventoryDescriptor } from '../core/query.js';
import { clusters, l2ClusterRefs, primaryStorageClusterRefs } from '../db/schema/index.js';

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

// The network domain registers L2NetworkClusterRefInventory (it owns the L2 ↔ cluster attachments).
const clusterLinks = schemaLinks(clusters, primaryStorageClusterRefs, l2ClusterRefs);

export const clusterDescriptor: InventoryDescriptor<ClusterRow> = {
  name: 'ClusterInventory',
  table: clusters,
  fields: fieldsFromTable(clusters),
  expand: {
    ...schemaExpands(clusters),
    // One-to-many: 1.1's names, not the keys' (vm_instances.cluster_uuid has no foreign key either).
    host: { inventory: 'HostInventory', localKey: 'uuid', remoteKey: 'clusterUuid' },
    vmInstance: { inventory: 'VmInstanceInventory', localKey: 'uuid', remoteKey: 'clusterUuid' },
    ...clusterLinks.expand,
  },
  aliases: clusterLinks.aliases,
  defaultSort: 'createDate',
  toInventories: async (rows) => rows.map(clusterInventory),
};

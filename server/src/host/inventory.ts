import { schemaExpands } from '../core/inventory-schema.js';
import { formatDate } from '../core/dates.js';
import { fieldsFromTable, type InventoryDescriptor } from '../core/query.js';
import { hosts } from '../db/schema/index.js';

export type HostRow = typeof hosts.$inferSelect;

type HostStatus = 'Connecting' | 'Connected' | 'Disconnected';
type HostState = 'Enabled' | 'Disabled' | 'PreMaintenance' | 'Maintenance';

/** One mapping for replies and queries. KVM hosts add their SSH and OS fields; credentials never leave. */
export function hostInventory(h: HostRow) {
  const inv = {
    uuid: h.uuid,
    name: h.name,
    description: h.description ?? undefined,
    zoneUuid: h.zoneUuid,
    clusterUuid: h.clusterUuid,
    managementIp: h.managementIp,
    hypervisorType: h.hypervisorType as 'KVM' | 'Simulator',
    state: h.state as HostState,
    status: h.status as HostStatus,
    totalCpuCapacity: h.totalCpuCapacity,
    availableCpuCapacity: Math.max(0, h.availableCpuCapacity),
    totalMemoryCapacity: h.totalMemoryCapacity,
    availableMemoryCapacity: Math.max(0, h.availableMemoryCapacity),
    cpuSockets: h.cpuSockets,
    cpuNum: h.cpuNum,
    architecture: h.architecture ?? undefined,
    createDate: formatDate(h.createDate)!,
    lastOpDate: formatDate(h.lastOpDate)!,
  };
  if (h.hypervisorType !== 'KVM') return inv;
  return {
    ...inv,
    username: h.username ?? undefined,
    sshPort: h.sshPort ?? undefined,
    osDistribution: h.osDistribution ?? undefined,
    osRelease: h.osRelease ?? undefined,
    osVersion: h.osVersion ?? undefined,
  };
}

export const hostDescriptor: InventoryDescriptor<HostRow> = {
  name: 'HostInventory',
  table: hosts,
  fields: fieldsFromTable(hosts, { exclude: ['credential', 'hostKey', 'agentUrl', 'reservedVmCount'] }),
  expand: {
    ...schemaExpands(hosts),
    // One-to-many, and vm_instances.host_uuid has no foreign key.
    vmInstance: { inventory: 'VmInstanceInventory', localKey: 'uuid', remoteKey: 'hostUuid' },
  },
  defaultSort: 'createDate',
  toInventories: async (rows) => rows.map(hostInventory),
};

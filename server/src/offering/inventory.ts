import { eq } from 'drizzle-orm';
import { formatDate } from '../core/dates.js';
import { fieldsFromTable, type InventoryDescriptor } from '../core/query.js';
import { diskOfferings, instanceOfferings } from '../db/schema/index.js';

export type InstanceOfferingRow = typeof instanceOfferings.$inferSelect;
export type DiskOfferingRow = typeof diskOfferings.$inferSelect;

export function instanceOfferingInventory(o: InstanceOfferingRow) {
  const inv = {
    uuid: o.uuid,
    name: o.name,
    description: o.description ?? undefined,
    cpuNum: o.cpuNum,
    cpuSpeed: o.cpuSpeed,
    memorySize: o.memorySize,
    reservedMemorySize: o.reservedMemorySize,
    type: o.type as 'UserVm' | 'VirtualRouter',
    allocatorStrategy: o.allocatorStrategy ?? undefined,
    sortKey: o.sortKey,
    state: o.state as 'Enabled' | 'Disabled',
    createDate: formatDate(o.createDate)!,
    lastOpDate: formatDate(o.lastOpDate)!,
  };
  return o.type === 'VirtualRouter' ? { ...inv, ...virtualRouterFields(o) } : inv;
}

const virtualRouterFields = (o: InstanceOfferingRow) => ({
  zoneUuid: o.zoneUuid!,
  managementNetworkUuid: o.managementNetworkUuid!,
  publicNetworkUuid: o.publicNetworkUuid ?? o.managementNetworkUuid!,
  imageUuid: o.imageUuid!,
  isDefault: o.isDefault ?? false,
});

export const virtualRouterOfferingInventory = (o: InstanceOfferingRow) => ({ ...instanceOfferingInventory(o), ...virtualRouterFields(o) });

export function diskOfferingInventory(o: DiskOfferingRow) {
  return {
    uuid: o.uuid,
    name: o.name,
    description: o.description ?? undefined,
    diskSize: o.diskSize,
    sortKey: o.sortKey,
    state: o.state as 'Enabled' | 'Disabled',
    type: o.type,
    allocatorStrategy: o.allocatorStrategy ?? undefined,
    createDate: formatDate(o.createDate)!,
    lastOpDate: formatDate(o.lastOpDate)!,
  };
}

// One-to-many, and vm_instances.instance_offering_uuid has no foreign key (nor has any key of the offerings' tables).
const vmExpansion = { vmInstance: { inventory: 'VmInstanceInventory', localKey: 'uuid', remoteKey: 'instanceOfferingUuid' } };

export const instanceOfferingDescriptor: InventoryDescriptor<InstanceOfferingRow> = {
  name: 'InstanceOfferingInventory',
  table: instanceOfferings,
  fields: fieldsFromTable(instanceOfferings),
  expand: vmExpansion,
  defaultSort: 'createDate',
  toInventories: async (rows) => rows.map(instanceOfferingInventory),
};

export const virtualRouterOfferingDescriptor: InventoryDescriptor<InstanceOfferingRow> = {
  ...instanceOfferingDescriptor,
  name: 'VirtualRouterOfferingInventory',
  where: (t) => eq(t.type, 'VirtualRouter'),
  expand: {
    ...vmExpansion,
    // instance_offerings has no foreign keys: by hand.
    zone: { inventory: 'ZoneInventory', localKey: 'zoneUuid', remoteKey: 'uuid' },
    image: { inventory: 'ImageInventory', localKey: 'imageUuid', remoteKey: 'uuid' },
    managementL3Network: { inventory: 'L3NetworkInventory', localKey: 'managementNetworkUuid', remoteKey: 'uuid' },
    publicL3Network: { inventory: 'L3NetworkInventory', localKey: 'publicNetworkUuid', remoteKey: 'uuid' },
  },
  toInventories: async (rows) => rows.map(virtualRouterOfferingInventory),
};

export const diskOfferingDescriptor: InventoryDescriptor<DiskOfferingRow> = {
  name: 'DiskOfferingInventory',
  table: diskOfferings,
  fields: fieldsFromTable(diskOfferings),
  // One-to-many, and volumes.disk_offering_uuid has no foreign key.
  expand: { volume: { inventory: 'VolumeInventory', localKey: 'uuid', remoteKey: 'diskOfferingUuid' } },
  defaultSort: 'createDate',
  toInventories: async (rows) => rows.map(diskOfferingInventory),
};

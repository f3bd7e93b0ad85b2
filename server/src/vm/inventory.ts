// Row → inventory mappings for VMs, NICs and volumes (one mapping each, shared by replies and queries), and the
// query descriptors. Shapes follow upstream v1.1's inventories exactly (the seed's QueryVirtualRouterVm output):
// empty references are left out, later upstream fields (architecture, actualSize, isShareable…) are not shown,
// NICs and volumes come ordered by device id.
import { eq, sql } from 'drizzle-orm';
import type { Inventory } from '@zstack-ts/openapi/helpers';
import type { Tx } from '../db/index.js';
import { vmInstances, vmNics, volumes } from '../db/schema/index.js';
import { formatDate } from '../core/dates.js';
import { fieldsFromTable, selectRows, type InventoryDescriptor } from '../core/query.js';

export type VmRow = typeof vmInstances.$inferSelect;
export type NicRow = typeof vmNics.$inferSelect;
export type VolumeRow = typeof volumes.$inferSelect;
export type VmInventory = Inventory<'VmInstanceInventory'> & Partial<Inventory<'VirtualRouterVmInventory'>>;
type NicInventory = Inventory<'VmNicInventory'>;
type VolumeInventory = Inventory<'VolumeInventory'>;

// Upstream leaves null references out of its JSON. Objects are built key by key in the inventory's order, skipping
// empty values (no `delete`, which turns objects into slow dictionaries: a page of 100 VMs builds ~700 of them).
function put(o: Record<string, unknown>, k: string, v: unknown): void {
  if (v !== null && v !== undefined) o[k] = v;
}

export function nicInventory(n: NicRow): NicInventory {
  const o: Record<string, unknown> = { uuid: n.uuid, vmInstanceUuid: n.vmInstanceUuid, l3NetworkUuid: n.l3NetworkUuid };
  put(o, 'ip', n.ip);
  o.mac = n.mac;
  put(o, 'netmask', n.netmask);
  put(o, 'gateway', n.gateway);
  put(o, 'metaData', n.metaData);
  o.deviceId = n.deviceId;
  o.createDate = formatDate(n.createDate);
  o.lastOpDate = formatDate(n.lastOpDate);
  return o as NicInventory;
}

export function volumeInventory(v: VolumeRow): VolumeInventory {
  const o: Record<string, unknown> = { uuid: v.uuid, name: v.name };
  put(o, 'description', v.description);
  put(o, 'primaryStorageUuid', v.primaryStorageUuid);
  put(o, 'vmInstanceUuid', v.vmInstanceUuid);
  put(o, 'diskOfferingUuid', v.diskOfferingUuid);
  put(o, 'rootImageUuid', v.rootImageUuid);
  put(o, 'installPath', v.installPath);
  o.type = v.type;
  o.format = v.format;
  o.size = v.size;
  put(o, 'deviceId', v.deviceId);
  o.state = v.state;
  o.status = v.status;
  o.createDate = formatDate(v.createDate);
  o.lastOpDate = formatDate(v.lastOpDate);
  return o as VolumeInventory;
}

/** A VM with its NICs and volumes; appliance VMs add their appliance fields (VirtualRouterVmInventory). */
function vmInventoryOf(vm: VmRow, nics: NicInventory[], vols: VolumeInventory[]): VmInventory {
  const o: Record<string, unknown> = { uuid: vm.uuid, name: vm.name };
  put(o, 'description', vm.description);
  put(o, 'zoneUuid', vm.zoneUuid);
  put(o, 'clusterUuid', vm.clusterUuid);
  put(o, 'hostUuid', vm.hostUuid);
  put(o, 'lastHostUuid', vm.lastHostUuid);
  put(o, 'imageUuid', vm.imageUuid);
  put(o, 'instanceOfferingUuid', vm.instanceOfferingUuid);
  put(o, 'rootVolumeUuid', vm.rootVolumeUuid);
  put(o, 'defaultL3NetworkUuid', vm.defaultL3NetworkUuid);
  put(o, 'platform', vm.platform);
  o.type = vm.type;
  put(o, 'hypervisorType', vm.hypervisorType);
  o.memorySize = vm.memorySize;
  o.cpuNum = vm.cpuNum;
  o.cpuSpeed = vm.cpuSpeed;
  put(o, 'allocatorStrategy', vm.allocatorStrategy);
  o.state = vm.state;
  o.vmNics = nics;
  o.allVolumes = vols;
  o.createDate = formatDate(vm.createDate);
  o.lastOpDate = formatDate(vm.lastOpDate);
  if (vm.type === 'ApplianceVm') {
    put(o, 'applianceVmType', vm.applianceVmType);
    put(o, 'managementNetworkUuid', vm.managementNetworkUuid);
    put(o, 'publicNetworkUuid', vm.publicNetworkUuid);
    put(o, 'defaultRouteL3NetworkUuid', vm.defaultRouteL3NetworkUuid);
    put(o, 'status', vm.status);
  }
  return o as VmInventory;
}

function groupBy<T, V>(items: T[], key: (t: T) => string, map: (t: T) => V): Map<string, V[]> {
  const m = new Map<string, V[]>();
  for (const it of items) {
    const list = m.get(key(it));
    if (list) list.push(map(it));
    else m.set(key(it), [map(it)]);
  }
  return m;
}

/** Batch mapping: NICs and volumes of all rows in two statements (the VM uuids as one array parameter). */
export async function vmInventories(rows: VmRow[], db: Tx): Promise<VmInventory[]> {
  if (rows.length === 0) return [];
  // Comma-joined (uuids contain no commas): one text parameter, portable across drivers.
  const uuids = rows.map((r) => r.uuid).join(',');
  const [nics, vols] = await Promise.all([
    selectRows(db, vmNics, sql`vm_instance_uuid = ANY(string_to_array(${uuids}::text, ',')) ORDER BY device_id`),
    selectRows(db, volumes, sql`vm_instance_uuid = ANY(string_to_array(${uuids}::text, ',')) ORDER BY device_id`),
  ]);
  const nicsOf = groupBy(nics, (n) => n.vmInstanceUuid, nicInventory);
  const volsOf = groupBy(vols, (v) => v.vmInstanceUuid!, volumeInventory);
  return rows.map((vm) => vmInventoryOf(vm, nicsOf.get(vm.uuid) ?? [], volsOf.get(vm.uuid) ?? []));
}

/** The inventory of rows already in hand (e.g. those a create flow has just written): no statement. */
export function vmInventoryFromRows(vm: VmRow, nics: NicRow[], vols: VolumeRow[]): VmInventory {
  const byDevice = <T extends { deviceId: number | null }>(a: T, b: T) => (a.deviceId ?? 0) - (b.deviceId ?? 0);
  return vmInventoryOf(vm, [...nics].sort(byDevice).map(nicInventory), [...vols].sort(byDevice).map(volumeInventory));
}

export async function vmInventory(db: Tx, uuid: string): Promise<VmInventory> {
  const [row] = await db.select().from(vmInstances).where(eq(vmInstances.uuid, uuid));
  if (!row) throw new Error(`vm ${uuid} vanished`);
  return (await vmInventories([row], db))[0];
}

// vm_instances and volumes have no foreign keys: by hand.
const vmExpand = {
  vmNics: { inventory: 'VmNicInventory', localKey: 'uuid', remoteKey: 'vmInstanceUuid' },
  allVolumes: { inventory: 'VolumeInventory', localKey: 'uuid', remoteKey: 'vmInstanceUuid' },
  rootVolume: { inventory: 'VolumeInventory', localKey: 'rootVolumeUuid', remoteKey: 'uuid' },
  host: { inventory: 'HostInventory', localKey: 'hostUuid', remoteKey: 'uuid' },
  cluster: { inventory: 'ClusterInventory', localKey: 'clusterUuid', remoteKey: 'uuid' },
  zone: { inventory: 'ZoneInventory', localKey: 'zoneUuid', remoteKey: 'uuid' },
  image: { inventory: 'ImageInventory', localKey: 'imageUuid', remoteKey: 'uuid' },
  instanceOffering: { inventory: 'InstanceOfferingInventory', localKey: 'instanceOfferingUuid', remoteKey: 'uuid' },
};

export const vmDescriptor: InventoryDescriptor<VmRow> = {
  name: 'VmInstanceInventory',
  table: vmInstances,
  fields: fieldsFromTable(vmInstances, { exclude: ['internalId'] }),
  expand: vmExpand,
  defaultSort: 'createDate',
  toInventories: vmInventories,
};

export const nicDescriptor: InventoryDescriptor<NicRow> = {
  name: 'VmNicInventory',
  // A NIC is seen with its VM.
  ownerKey: 'vmInstanceUuid',
  table: vmNics,
  fields: fieldsFromTable(vmNics),
  expand: {
    // By hand: vm_instances is several inventories' table (VM, appliance VM, virtual router); l3_network_uuid has no
    // foreign key.
    vmInstance: { inventory: 'VmInstanceInventory', localKey: 'vmInstanceUuid', remoteKey: 'uuid' },
    l3Network: { inventory: 'L3NetworkInventory', localKey: 'l3NetworkUuid', remoteKey: 'uuid' },
  },
  defaultSort: 'createDate',
  toInventories: async (rows) => rows.map(nicInventory),
};

export const volumeDescriptor: InventoryDescriptor<VolumeRow> = {
  name: 'VolumeInventory',
  table: volumes,
  fields: fieldsFromTable(volumes),
  // volumes has no foreign keys: by hand.
  expand: {
    vmInstance: { inventory: 'VmInstanceInventory', localKey: 'vmInstanceUuid', remoteKey: 'uuid' },
    diskOffering: { inventory: 'DiskOfferingInventory', localKey: 'diskOfferingUuid', remoteKey: 'uuid' },
    primaryStorage: { inventory: 'PrimaryStorageInventory', localKey: 'primaryStorageUuid', remoteKey: 'uuid' },
    image: { inventory: 'ImageInventory', localKey: 'rootImageUuid', remoteKey: 'uuid' },
  },
  defaultSort: 'createDate',
  toInventories: async (rows) => rows.map(volumeInventory),
};

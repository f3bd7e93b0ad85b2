// Row → inventory mappings for VMs, NICs and volumes (one mapping each, shared by replies and queries), and the
// query descriptors. Shapes follow upstream v1.1's inventories exactly (the seed's QueryVirtualRouterVm output):
// empty references are left out, later upstream fields (architecture, actualSize, isShareable…) are not shown,
// NICs and volumes come ordered by device id.
import { eq, sql } from 'drizzle-orm';
import type { Inventory } from '@zstack-ts/openapi/helpers';
import type { Tx } from '../db/index.js';
import { vmInstances, vmNics, volumes } from '../db/schema/index.js';
import { columnFields, objectOf, type JsonShape } from '../core/json-page.js';
import { fieldsFromTable, selectRows, type InventoryDescriptor } from '../core/query.js';

export type VmRow = typeof vmInstances.$inferSelect;
export type NicRow = typeof vmNics.$inferSelect;
export type VolumeRow = typeof volumes.$inferSelect;
export type VmInventory = Inventory<'VmInstanceInventory'> & Partial<Inventory<'VirtualRouterVmInventory'>>;
type NicInventory = Inventory<'VmNicInventory'>;
type VolumeInventory = Inventory<'VolumeInventory'>;

// One shape per inventory, in upstream's field order (core/json-page.ts): it builds the objects of replies and lets
// PostgreSQL render Query API pages as JSON text, so both give the same bytes. Upstream leaves null references out.
const nicShape: JsonShape = {
  fields: columnFields('uuid', 'vmInstanceUuid', 'l3NetworkUuid', 'ip', 'mac', 'netmask', 'gateway', 'metaData', 'deviceId', 'createDate', 'lastOpDate'),
};

const volumeShape: JsonShape = {
  fields: columnFields(
    'uuid',
    'name',
    'description',
    'primaryStorageUuid',
    'vmInstanceUuid',
    'diskOfferingUuid',
    'rootImageUuid',
    'installPath',
    'type',
    'format',
    'size',
    'deviceId',
    'state',
    'status',
    'createDate',
    'lastOpDate',
  ),
};

const appliance = { column: 'type', equals: 'ApplianceVm' };

/** A VM with its NICs and volumes; appliance VMs add their appliance fields (VirtualRouterVmInventory). */
const vmShape: JsonShape = {
  fields: [
    ...columnFields(
      'uuid',
      'name',
      'description',
      'zoneUuid',
      'clusterUuid',
      'hostUuid',
      'lastHostUuid',
      'imageUuid',
      'instanceOfferingUuid',
      'rootVolumeUuid',
      'defaultL3NetworkUuid',
      'platform',
      'type',
      'hypervisorType',
      'memorySize',
      'cpuNum',
      'cpuSpeed',
      'allocatorStrategy',
      'state',
    ),
    { name: 'vmNics', nested: { table: vmNics, shape: nicShape, localKey: 'uuid', remoteKey: 'vmInstanceUuid', orderBy: 'deviceId' } },
    { name: 'allVolumes', nested: { table: volumes, shape: volumeShape, localKey: 'uuid', remoteKey: 'vmInstanceUuid', orderBy: 'deviceId' } },
    ...columnFields('createDate', 'lastOpDate'),
    ...['applianceVmType', 'managementNetworkUuid', 'publicNetworkUuid', 'defaultRouteL3NetworkUuid', 'status'].map((key) => ({
      name: key,
      column: key,
      when: appliance,
    })),
  ],
  discriminator: 'type',
};

export function nicInventory(n: NicRow): NicInventory {
  return objectOf(nicShape, n) as NicInventory;
}

export function volumeInventory(v: VolumeRow): VolumeInventory {
  return objectOf(volumeShape, v) as VolumeInventory;
}

function vmInventoryOf(vm: VmRow, nics: NicInventory[], vols: VolumeInventory[]): VmInventory {
  return objectOf(vmShape, vm, { vmNics: nics, allVolumes: vols }) as VmInventory;
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
  json: vmShape,
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
  json: nicShape,
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
  json: volumeShape,
};

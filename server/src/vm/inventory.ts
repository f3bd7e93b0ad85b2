// Row → inventory mappings for VMs, NICs and volumes (one mapping each, shared by replies and queries), and the
// query descriptors. Shapes follow upstream v1.1's inventories exactly (the seed's QueryVirtualRouterVm output):
// empty references are left out, later upstream fields (architecture, actualSize, isShareable…) are not shown,
// NICs and volumes come ordered by device id.
import { asc, eq, inArray } from 'drizzle-orm';
import type { Tx } from '../db/index.js';
import { vmInstances, vmNics, volumes } from '../db/schema/index.js';
import { formatDate } from '../core/dates.js';
import { fieldsFromTable, type InventoryDescriptor } from '../core/query.js';

export type VmRow = typeof vmInstances.$inferSelect;
export type NicRow = typeof vmNics.$inferSelect;
export type VolumeRow = typeof volumes.$inferSelect;

/** Copies the non-empty values only: upstream leaves null references out of its JSON. */
function compact<T extends Record<string, unknown>>(o: T): T {
  for (const k of Object.keys(o)) if (o[k] === null || o[k] === undefined) delete o[k];
  return o;
}

export function nicInventory(n: NicRow) {
  return compact({
    uuid: n.uuid,
    vmInstanceUuid: n.vmInstanceUuid,
    l3NetworkUuid: n.l3NetworkUuid,
    ip: n.ip ?? undefined,
    mac: n.mac,
    netmask: n.netmask ?? undefined,
    gateway: n.gateway ?? undefined,
    metaData: n.metaData ?? undefined,
    deviceId: n.deviceId,
    createDate: formatDate(n.createDate)!,
    lastOpDate: formatDate(n.lastOpDate)!,
  });
}

export function volumeInventory(v: VolumeRow) {
  return compact({
    uuid: v.uuid,
    name: v.name,
    description: v.description ?? undefined,
    primaryStorageUuid: v.primaryStorageUuid ?? undefined,
    vmInstanceUuid: v.vmInstanceUuid ?? undefined,
    diskOfferingUuid: v.diskOfferingUuid ?? undefined,
    rootImageUuid: v.rootImageUuid ?? undefined,
    installPath: v.installPath ?? undefined,
    type: v.type as 'Root' | 'Data',
    format: v.format,
    size: v.size,
    deviceId: v.deviceId ?? undefined,
    state: v.state as 'Enabled' | 'Disabled',
    status: v.status as 'Creating' | 'Ready' | 'NotInstantiated' | 'Deleted' | 'Migrating',
    createDate: formatDate(v.createDate)!,
    lastOpDate: formatDate(v.lastOpDate)!,
  });
}

type NicInv = ReturnType<typeof nicInventory>;
type VolumeInv = ReturnType<typeof volumeInventory>;

function vmFields(vm: VmRow, nics: NicInv[], vols: VolumeInv[]) {
  return {
    uuid: vm.uuid,
    name: vm.name,
    description: vm.description ?? undefined,
    zoneUuid: vm.zoneUuid ?? undefined,
    clusterUuid: vm.clusterUuid ?? undefined,
    hostUuid: vm.hostUuid ?? undefined,
    lastHostUuid: vm.lastHostUuid ?? undefined,
    imageUuid: vm.imageUuid ?? undefined,
    instanceOfferingUuid: vm.instanceOfferingUuid ?? undefined,
    rootVolumeUuid: vm.rootVolumeUuid ?? undefined,
    defaultL3NetworkUuid: vm.defaultL3NetworkUuid ?? undefined,
    platform: vm.platform ?? undefined,
    type: vm.type as 'UserVm' | 'ApplianceVm',
    hypervisorType: vm.hypervisorType ?? undefined,
    memorySize: vm.memorySize,
    cpuNum: vm.cpuNum,
    cpuSpeed: vm.cpuSpeed,
    allocatorStrategy: vm.allocatorStrategy ?? undefined,
    state: vm.state as any,
    vmNics: nics,
    allVolumes: vols,
    createDate: formatDate(vm.createDate)!,
    lastOpDate: formatDate(vm.lastOpDate)!,
  };
}

/** Appliance VMs add their appliance fields (VirtualRouterVmInventory is this shape). */
function applianceFields(vm: VmRow) {
  if (vm.type !== 'ApplianceVm') return {};
  return {
    applianceVmType: vm.applianceVmType ?? undefined,
    managementNetworkUuid: vm.managementNetworkUuid ?? undefined,
    publicNetworkUuid: vm.publicNetworkUuid ?? undefined,
    defaultRouteL3NetworkUuid: vm.defaultRouteL3NetworkUuid ?? undefined,
    status: vm.status ?? undefined,
  };
}

/** Batch mapping: NICs and volumes of all rows in two queries. */
export async function vmInventories(rows: VmRow[], db: Tx) {
  if (rows.length === 0) return [];
  const uuids = rows.map((r) => r.uuid);
  const [nics, vols] = await Promise.all([
    db.select().from(vmNics).where(inArray(vmNics.vmInstanceUuid, uuids)).orderBy(asc(vmNics.deviceId)),
    db.select().from(volumes).where(inArray(volumes.vmInstanceUuid, uuids)).orderBy(asc(volumes.deviceId)),
  ]);
  const nicsOf = groupBy(nics, (n) => n.vmInstanceUuid);
  const volsOf = groupBy(vols, (v) => v.vmInstanceUuid!);
  return rows.map((vm) =>
    compact({
      ...vmFields(vm, (nicsOf.get(vm.uuid) ?? []).map(nicInventory), (volsOf.get(vm.uuid) ?? []).map(volumeInventory)),
      ...applianceFields(vm),
    }),
  );
}

export type VmInventory = Awaited<ReturnType<typeof vmInventories>>[number];

export async function vmInventory(db: Tx, uuid: string): Promise<VmInventory> {
  const [row] = await db.select().from(vmInstances).where(eq(vmInstances.uuid, uuid));
  if (!row) throw new Error(`vm ${uuid} vanished`);
  return (await vmInventories([row], db))[0];
}

function groupBy<T>(items: T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const it of items) {
    const k = key(it);
    m.set(k, [...(m.get(k) ?? []), it]);
  }
  return m;
}

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
  table: vmNics,
  fields: fieldsFromTable(vmNics),
  expand: {
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
  expand: {
    vmInstance: { inventory: 'VmInstanceInventory', localKey: 'vmInstanceUuid', remoteKey: 'uuid' },
    diskOffering: { inventory: 'DiskOfferingInventory', localKey: 'diskOfferingUuid', remoteKey: 'uuid' },
    primaryStorage: { inventory: 'PrimaryStorageInventory', localKey: 'primaryStorageUuid', remoteKey: 'uuid' },
    image: { inventory: 'ImageInventory', localKey: 'rootImageUuid', remoteKey: 'uuid' },
  },
  defaultSort: 'createDate',
  toInventories: async (rows) => rows.map(volumeInventory),
};

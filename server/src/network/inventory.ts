// Row → inventory mappings of the network domain, shared by replies and queries, and the query descriptors.
// Inventories carry what the v1.1 replies carry (release notes §9) plus a few fields of today's upstream that
// our validation rules make visible: L3 `category`, IP range `networkCidr` and `ipRangeType`.
import { schemaExpands, schemaLinks } from '../core/inventory-schema.js';
import { asc, eq, inArray } from 'drizzle-orm';
import type { Tx } from '../db/index.js';
import {
  ipRanges,
  l2ClusterRefs,
  l2Networks,
  l3Dns,
  l3Networks,
  networkServiceL3Refs,
  networkServiceProviderL2Refs,
  networkServiceProviders,
  networkServiceTypes,
  usedIps,
} from '../db/schema/index.js';
import { formatDate } from '../core/dates.js';
import { fieldsFromTable, type InventoryDescriptor } from '../core/query.js';
import { serviceTypeOrder } from './providers.js';

export type L2Row = typeof l2Networks.$inferSelect;
export type L3Row = typeof l3Networks.$inferSelect;
export type IpRangeRow = typeof ipRanges.$inferSelect;
export type ProviderRow = typeof networkServiceProviders.$inferSelect;
export type L3RefRow = typeof networkServiceL3Refs.$inferSelect;
export type UsedIpRow = typeof usedIps.$inferSelect;

const dates = (r: { createDate: Date; lastOpDate: Date }) => ({ createDate: formatDate(r.createDate)!, lastOpDate: formatDate(r.lastOpDate)! });
const opt = <T>(v: T | null | undefined): T | undefined => v ?? undefined;

function groupBy<T, K>(rows: T[], key: (r: T) => K): Map<K, T[]> {
  const m = new Map<K, T[]>();
  for (const r of rows) m.set(key(r), [...(m.get(key(r)) ?? []), r]);
  return m;
}

// ---- L2 ---------------------------------------------------------------------------------------------------

export async function l2Inventories(rows: L2Row[], db: Tx) {
  if (rows.length === 0) return [];
  const refs = await db
    .select()
    .from(l2ClusterRefs)
    .where(
      inArray(
        l2ClusterRefs.l2NetworkUuid,
        rows.map((r) => r.uuid),
      ),
    )
    .orderBy(asc(l2ClusterRefs.createDate), asc(l2ClusterRefs.clusterUuid));
  const byL2 = groupBy(refs, (r) => r.l2NetworkUuid);
  return rows.map((r) => ({
    uuid: r.uuid,
    name: r.name,
    description: opt(r.description),
    zoneUuid: r.zoneUuid,
    physicalInterface: r.physicalInterface,
    type: r.type as 'L2NoVlanNetwork' | 'L2VlanNetwork',
    ...(r.type === 'L2VlanNetwork' ? { vlan: r.vlan! } : {}),
    vSwitchType: r.vSwitchType,
    attachedClusterUuids: (byL2.get(r.uuid) ?? []).map((x) => x.clusterUuid),
    ...dates(r),
  }));
}

const l2Links = schemaLinks(l2Networks, l2ClusterRefs);

export const l2Descriptor: InventoryDescriptor<L2Row> = {
  name: 'L2NetworkInventory',
  table: l2Networks,
  fields: fieldsFromTable(l2Networks),
  expand: {
    ...schemaExpands(l2Networks),
    // One-to-many: 1.1's name, not the key's.
    l3Network: { inventory: 'L3NetworkInventory', localKey: 'uuid', remoteKey: 'l2NetworkUuid' },
    ...l2Links.expand,
  },
  aliases: l2Links.aliases,
  defaultSort: 'createDate',
  toInventories: l2Inventories,
};

/** QueryL2VlanNetwork: the VLAN rows of the same table. */
export const l2VlanDescriptor: InventoryDescriptor<L2Row> = {
  ...l2Descriptor,
  name: 'L2VlanNetworkInventory',
  where: (t) => eq(t.type, 'L2VlanNetwork'),
};

/** Not an API inventory: the join behind `QueryL2Network q=cluster.name=...`. */
export const l2ClusterRefDescriptor: InventoryDescriptor<typeof l2ClusterRefs.$inferSelect> = {
  name: 'L2NetworkClusterRefInventory',
  table: l2ClusterRefs,
  fields: fieldsFromTable(l2ClusterRefs),
  expand: schemaExpands(l2ClusterRefs),
  toInventories: async (rows) => rows.map((r) => ({ l2NetworkUuid: r.l2NetworkUuid, clusterUuid: r.clusterUuid, ...dates(r) })),
};

// ---- IP ranges, used IPs -----------------------------------------------------------------------------------

export function ipRangeInventory(r: IpRangeRow) {
  return {
    uuid: r.uuid,
    l3NetworkUuid: r.l3NetworkUuid,
    name: r.name,
    description: opt(r.description),
    startIp: r.startIp,
    endIp: r.endIp,
    netmask: r.netmask,
    gateway: r.gateway,
    networkCidr: r.networkCidr,
    ipRangeType: r.ipRangeType as 'Normal' | 'AddressPool',
    ...dates(r),
  };
}

export const ipRangeDescriptor: InventoryDescriptor<IpRangeRow> = {
  name: 'IpRangeInventory',
  // Seen with their L3 network (an admin's ranges on an L3 shared with the account too).
  ownerKey: 'l3NetworkUuid',
  table: ipRanges,
  fields: fieldsFromTable(ipRanges, { exclude: ['startInt', 'endInt'] }),
  expand: schemaExpands(ipRanges),
  defaultSort: 'createDate',
  toInventories: async (rows) => rows.map(ipRangeInventory),
};

export function usedIpInventory(r: UsedIpRow) {
  return {
    uuid: r.uuid,
    ipRangeUuid: r.ipRangeUuid,
    l3NetworkUuid: r.l3NetworkUuid,
    ipVersion: r.ipVersion,
    ip: r.ip,
    netmask: r.netmask,
    gateway: r.gateway,
    usedFor: r.usedFor,
    ipInLong: r.ipInLong,
    vmNicUuid: opt(r.vmNicUuid),
    ...dates(r),
  };
}

/** Not queried by an API of its own; the target of `QueryL3Network q=usedIp.ip=...`. */
export const usedIpDescriptor: InventoryDescriptor<UsedIpRow> = {
  name: 'UsedIpInventory',
  table: usedIps,
  fields: fieldsFromTable(usedIps),
  expand: schemaExpands(usedIps),
  toInventories: async (rows) => rows.map(usedIpInventory),
};

// ---- network service refs and providers --------------------------------------------------------------------

export const l3RefInventory = (r: L3RefRow) => ({
  l3NetworkUuid: r.l3NetworkUuid,
  networkServiceProviderUuid: r.networkServiceProviderUuid,
  networkServiceType: r.networkServiceType,
});

export const l3RefDescriptor: InventoryDescriptor<L3RefRow> = {
  name: 'NetworkServiceL3NetworkRefInventory',
  ownerKey: 'l3NetworkUuid',
  table: networkServiceL3Refs,
  // createDate is not in the inventory, but stays queryable: it orders the refs.
  fields: fieldsFromTable(networkServiceL3Refs, { exclude: ['lastOpDate'] }),
  expand: {
    ...schemaExpands(networkServiceL3Refs),
    // 1.1's name, not the key's: the providers' table stays out of the derivation (it would name this networkServiceProvider).
    serviceProvider: { inventory: 'NetworkServiceProviderInventory', localKey: 'networkServiceProviderUuid', remoteKey: 'uuid' },
  },
  // Attach order (refs get increasing createDates when attached).
  defaultSort: 'createDate',
  toInventories: async (rows) => rows.map(l3RefInventory),
};

export async function providerInventories(rows: ProviderRow[], db: Tx) {
  if (rows.length === 0) return [];
  const uuids = rows.map((r) => r.uuid);
  const types = groupBy(await db.select().from(networkServiceTypes).where(inArray(networkServiceTypes.providerUuid, uuids)), (t) => t.providerUuid);
  const l2s = groupBy(
    await db
      .select()
      .from(networkServiceProviderL2Refs)
      .where(inArray(networkServiceProviderL2Refs.providerUuid, uuids))
      .orderBy(asc(networkServiceProviderL2Refs.createDate), asc(networkServiceProviderL2Refs.l2NetworkUuid)),
    (r) => r.providerUuid,
  );
  return rows.map((r) => ({
    uuid: r.uuid,
    name: r.name,
    description: opt(r.description),
    type: r.type,
    networkServiceTypes: (types.get(r.uuid) ?? []).map((t) => t.serviceType).sort(serviceTypeOrder(r.type)),
    attachedL2NetworkUuids: (l2s.get(r.uuid) ?? []).map((x) => x.l2NetworkUuid),
    ...dates(r),
  }));
}

const providerLinks = schemaLinks(networkServiceProviders, networkServiceProviderL2Refs);

export const providerDescriptor: InventoryDescriptor<ProviderRow> = {
  name: 'NetworkServiceProviderInventory',
  globalReadable: true,
  table: networkServiceProviders,
  fields: fieldsFromTable(networkServiceProviders),
  expand: providerLinks.expand,
  aliases: providerLinks.aliases,
  defaultSort: 'createDate',
  toInventories: providerInventories,
};

/** Not an API inventory: the join behind `QueryNetworkServiceProvider q=l2Network.uuid=...`. */
export const providerL2RefDescriptor: InventoryDescriptor<typeof networkServiceProviderL2Refs.$inferSelect> = {
  name: 'NetworkServiceProviderL2NetworkRefInventory',
  table: networkServiceProviderL2Refs,
  fields: fieldsFromTable(networkServiceProviderL2Refs),
  expand: schemaExpands(networkServiceProviderL2Refs),
  toInventories: async (rows) => rows.map((r) => ({ providerUuid: r.providerUuid, l2NetworkUuid: r.l2NetworkUuid })),
};

// ---- L3 -----------------------------------------------------------------------------------------------------

export async function l3Inventories(rows: L3Row[], db: Tx) {
  if (rows.length === 0) return [];
  const uuids = rows.map((r) => r.uuid);
  const [dns, ranges, refs] = await Promise.all([
    db.select().from(l3Dns).where(inArray(l3Dns.l3NetworkUuid, uuids)).orderBy(asc(l3Dns.position)),
    db.select().from(ipRanges).where(inArray(ipRanges.l3NetworkUuid, uuids)).orderBy(asc(ipRanges.createDate), asc(ipRanges.startInt)),
    db.select().from(networkServiceL3Refs).where(inArray(networkServiceL3Refs.l3NetworkUuid, uuids)).orderBy(asc(networkServiceL3Refs.createDate)),
  ]);
  const dnsBy = groupBy(dns, (d) => d.l3NetworkUuid);
  const rangesBy = groupBy(ranges, (r) => r.l3NetworkUuid);
  const refsBy = groupBy(refs, (r) => r.l3NetworkUuid);
  return rows.map((r) => ({
    uuid: r.uuid,
    name: r.name,
    description: opt(r.description),
    type: r.type,
    zoneUuid: r.zoneUuid,
    l2NetworkUuid: r.l2NetworkUuid,
    state: r.state as 'Enabled' | 'Disabled',
    dnsDomain: opt(r.dnsDomain),
    system: r.system,
    category: r.category as 'Public' | 'Private' | 'System',
    dns: (dnsBy.get(r.uuid) ?? []).map((d) => d.dns),
    ipRanges: (rangesBy.get(r.uuid) ?? []).map(ipRangeInventory),
    networkServices: (refsBy.get(r.uuid) ?? []).map(l3RefInventory),
    ...dates(r),
  }));
}

export type L3Inventory = Awaited<ReturnType<typeof l3Inventories>>[number];

export const l3Descriptor: InventoryDescriptor<L3Row> = {
  name: 'L3NetworkInventory',
  table: l3Networks,
  fields: fieldsFromTable(l3Networks),
  expand: {
    ...schemaExpands(l3Networks),
    // One-to-many: 1.1's names, not the keys'. serviceProviderRef links to the providers, but by 1.1's name for them
    // (the key would derive networkServiceProviderRef); vm_nics.l3_network_uuid has no foreign key.
    ipRanges: { inventory: 'IpRangeInventory', localKey: 'uuid', remoteKey: 'l3NetworkUuid' },
    serviceProviderRef: { inventory: 'NetworkServiceL3NetworkRefInventory', localKey: 'uuid', remoteKey: 'l3NetworkUuid' },
    networkServices: { inventory: 'NetworkServiceL3NetworkRefInventory', localKey: 'uuid', remoteKey: 'l3NetworkUuid' },
    usedIp: { inventory: 'UsedIpInventory', localKey: 'uuid', remoteKey: 'l3NetworkUuid' },
    // VmNicInventory is registered by the VM module (vm_nics.l3_network_uuid).
    vmNic: { inventory: 'VmNicInventory', localKey: 'uuid', remoteKey: 'l3NetworkUuid' },
  },
  aliases: { serviceProvider: 'serviceProviderRef.serviceProvider', ipRange: 'ipRanges' },
  defaultSort: 'createDate',
  toInventories: l3Inventories,
};

export const networkDescriptors = [
  l2Descriptor,
  l2VlanDescriptor,
  l2ClusterRefDescriptor,
  l3Descriptor,
  ipRangeDescriptor,
  usedIpDescriptor,
  l3RefDescriptor,
  providerDescriptor,
  providerL2RefDescriptor,
];

// Inventory facts read from the drizzle schema instead of restated per descriptor: the many-to-one expansions of a
// query descriptor (`zone` → ZoneInventory by `zoneUuid`) follow the table's foreign keys (`.references(...)`), and a
// many-to-many through a link table (a table without a `uuid` of its own, e.g. primary_storage_cluster_refs) is the
// link's expansion (`clusterRef`) plus an alias through it (`cluster` → `clusterRef.cluster`). Other one-to-many
// expansions (`cluster.host`) keep their names by hand: 1.1's names are not the keys'. test/foundation/
// inventory-schema.test.ts checks every registered descriptor against the schema.
import { getTableColumns, getTableName } from 'drizzle-orm';
import { getTableConfig, type PgTable } from 'drizzle-orm/pg-core';
import * as schema from '../db/schema/index.js';
import type { Expansion } from './query.js';

/** `zoneUuid` → `zone`; keys that do not end in `Uuid` are not expansions. */
const expansionName = (localKey: string) => (localKey.endsWith('Uuid') && localKey.length > 4 ? localKey.slice(0, -4) : undefined);

/** `table`'s single-column foreign keys onto a `uuid` column: the column's key and the table it points to. */
export function foreignKeysOf(table: PgTable): Array<{ localKey: string; foreignTable: PgTable }> {
  const keyOf = new Map(Object.entries(getTableColumns(table)).map(([key, col]) => [col, key] as const));
  return getTableConfig(table).foreignKeys.flatMap((fk) => {
    const { columns, foreignColumns, foreignTable } = fk.reference();
    const localKey = columns.length === 1 && foreignColumns[0]?.name === 'uuid' ? keyOf.get(columns[0]) : undefined;
    return localKey ? [{ localKey, foreignTable }] : [];
  });
}

/** A link table: no `uuid` of its own (its rows are pairs), e.g. primary_storage_cluster_refs. */
export const isLinkTable = (table: PgTable) => !('uuid' in getTableColumns(table));

/**
 * The expansions following `table`'s foreign keys: `<x>Uuid` → `x`, to the inventory `inventoryOf` names for the
 * referenced table (a table without one is skipped).
 */
export function foreignKeyExpands(table: PgTable, inventoryOf: (table: PgTable) => string | undefined): Record<string, Expansion> {
  const out: Record<string, Expansion> = {};
  for (const { localKey, foreignTable } of foreignKeysOf(table)) {
    const name = expansionName(localKey);
    const inventory = inventoryOf(foreignTable);
    if (name && inventory) out[name] = { inventory, localKey, remoteKey: 'uuid' };
  }
  return out;
}

/**
 * The many-to-many expansions of `table` through `links`: per link table, its one foreign key onto `table` and one
 * onto another table, whose expansion `x` gives `<x>Ref` → the link's inventory (by the key onto `table`) and the
 * alias `x` → `<x>Ref.x`. Anything else (not a link table, no inventory, other keys) is a mistake in the call.
 */
export function linkExpands(
  table: PgTable,
  links: PgTable[],
  inventoryOf: (table: PgTable) => string | undefined,
): { expand: Record<string, Expansion>; aliases: Record<string, string> } {
  const expand: Record<string, Expansion> = {};
  const aliases: Record<string, string> = {};
  for (const link of links) {
    const keys = foreignKeysOf(link);
    const back = keys.filter((k) => k.foreignTable === table);
    const other = keys.filter((k) => k.foreignTable !== table);
    const name = other.length === 1 ? expansionName(other[0].localKey) : undefined;
    const inventory = inventoryOf(link);
    if (!isLinkTable(link) || back.length !== 1 || !name || !inventory || !inventoryOf(other[0].foreignTable))
      throw new Error(`${getTableName(link)} is not a link from ${getTableName(table)} to one other table with inventories`);
    expand[`${name}Ref`] = { inventory, localKey: 'uuid', remoteKey: back[0].localKey };
    aliases[name] = `${name}Ref.${name}`;
  }
  return { expand, aliases };
}

/** The inventory of each table an expansion leads to (tables several inventories describe are left out). */
const inventoryOfTable = new Map<PgTable, string>([
  [schema.zones, 'ZoneInventory'],
  [schema.clusters, 'ClusterInventory'],
  [schema.hosts, 'HostInventory'],
  [schema.primaryStorage, 'PrimaryStorageInventory'],
  [schema.backupStorage, 'BackupStorageInventory'],
  [schema.images, 'ImageInventory'],
  [schema.l2Networks, 'L2NetworkInventory'],
  [schema.l3Networks, 'L3NetworkInventory'],
  [schema.ipRanges, 'IpRangeInventory'],
  [schema.vmNics, 'VmNicInventory'],
  [schema.securityGroups, 'SecurityGroupInventory'],
  [schema.vips, 'VipInventory'],
  [schema.volumeSnapshots, 'VolumeSnapshotInventory'],
  [schema.volumeSnapshotTrees, 'VolumeSnapshotTreeInventory'],
  [schema.loadBalancers, 'LoadBalancerInventory'],
  [schema.loadBalancerListeners, 'LoadBalancerListenerInventory'],
  // Link tables.
  [schema.primaryStorageClusterRefs, 'PrimaryStorageClusterRefInventory'],
  [schema.l2ClusterRefs, 'L2NetworkClusterRefInventory'],
  [schema.backupStorageZoneRefs, 'BackupStorageZoneRefInventory'],
  [schema.imageBackupStorageRefs, 'ImageBackupStorageRefInventory'],
  [schema.networkServiceProviderL2Refs, 'NetworkServiceProviderL2NetworkRefInventory'],
  [schema.vmNicSecurityGroupRefs, 'VmNicSecurityGroupRefInventory'],
  [schema.securityGroupL3Refs, 'SecurityGroupL3NetworkRefInventory'],
  [schema.volumeSnapshotBackupStorageRefs, 'VolumeSnapshotBackupStorageRefInventory'],
  [schema.loadBalancerListenerVmNicRefs, 'LoadBalancerListenerVmNicRefInventory'],
]);
const inventoryOf = (t: PgTable) => inventoryOfTable.get(t);

/** `table`'s many-to-one expansions, from its foreign keys (`expand: { ...schemaExpands(table), <one-to-many…> }`). */
export const schemaExpands = (table: PgTable): Record<string, Expansion> => foreignKeyExpands(table, inventoryOf);

/**
 * `table`'s many-to-many expansions through the link tables `links` (`expand: { …, ...refs.expand }`,
 * `aliases: refs.aliases`): e.g. for clusters and primary_storage_cluster_refs, `primaryStorageRef` and
 * `primaryStorage` → `primaryStorageRef.primaryStorage`.
 */
export const schemaLinks = (table: PgTable, ...links: PgTable[]) => linkExpands(table, links, inventoryOf);

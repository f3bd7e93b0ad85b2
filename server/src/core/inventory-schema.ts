// Inventory facts read from the drizzle schema instead of restated per descriptor: the many-to-one expansions of a
// query descriptor (`zone` → ZoneInventory by `zoneUuid`) follow the table's foreign keys (`.references(...)`).
// Only the direction the key points is derived; one-to-many expansions (`cluster.host`) and ref inventories keep
// their names by hand. test/foundation/inventory-schema.test.ts checks every registered descriptor against it.
import { getTableColumns } from 'drizzle-orm';
import { getTableConfig, type PgTable } from 'drizzle-orm/pg-core';
import * as schema from '../db/schema/index.js';
import type { Expansion } from './query.js';

/** `zoneUuid` → `zone`; keys that do not end in `Uuid` are not expansions. */
const expansionName = (localKey: string) => (localKey.endsWith('Uuid') && localKey.length > 4 ? localKey.slice(0, -4) : undefined);

/**
 * The expansions following `table`'s single-column foreign keys onto a `uuid` column: `<x>Uuid` → `x`, to the
 * inventory `inventoryOf` names for the referenced table (a table without one is skipped).
 */
export function foreignKeyExpands(table: PgTable, inventoryOf: (table: PgTable) => string | undefined): Record<string, Expansion> {
  const keyOf = new Map(Object.entries(getTableColumns(table)).map(([key, col]) => [col, key] as const));
  const out: Record<string, Expansion> = {};
  for (const fk of getTableConfig(table).foreignKeys) {
    const { columns, foreignColumns, foreignTable } = fk.reference();
    if (columns.length !== 1 || foreignColumns[0]?.name !== 'uuid') continue;
    const localKey = keyOf.get(columns[0]);
    const name = localKey && expansionName(localKey);
    const inventory = inventoryOf(foreignTable);
    if (!localKey || !name || !inventory) continue;
    out[name] = { inventory, localKey, remoteKey: 'uuid' };
  }
  return out;
}

/** The inventory a foreign key onto each table expands to (tables several inventories describe are left out). */
const inventoryOfTable = new Map<PgTable, string>([
  [schema.zones, 'ZoneInventory'],
  [schema.clusters, 'ClusterInventory'],
  [schema.primaryStorage, 'PrimaryStorageInventory'],
  [schema.backupStorage, 'BackupStorageInventory'],
  [schema.images, 'ImageInventory'],
  [schema.l2Networks, 'L2NetworkInventory'],
  [schema.l3Networks, 'L3NetworkInventory'],
  [schema.ipRanges, 'IpRangeInventory'],
  [schema.vmNics, 'VmNicInventory'],
  [schema.securityGroups, 'SecurityGroupInventory'],
  [schema.vips, 'VipInventory'],
]);

/** `table`'s many-to-one expansions, from its foreign keys (`expand: { ...schemaExpands(table), <one-to-many…> }`). */
export const schemaExpands = (table: PgTable): Record<string, Expansion> => foreignKeyExpands(table, (t) => inventoryOfTable.get(t));

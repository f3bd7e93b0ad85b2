// Row → inventory mappings of volume snapshots and their trees (the tree as upstream's SnapshotLeafInventory), shared by
// replies and queries, and their query descriptors.
import { asc, inArray } from 'drizzle-orm';
import { formatDate } from '../core/dates.js';
import { schemaExpands, schemaLinks } from '../core/inventory-schema.js';
import { fieldsFromTable, type InventoryDescriptor } from '../core/query.js';
import type { Tx } from '../db/index.js';
import { volumeSnapshotBackupStorageRefs, volumeSnapshots, volumeSnapshotTrees } from '../db/schema/index.js';

export type SnapshotRow = typeof volumeSnapshots.$inferSelect;
export type TreeRow = typeof volumeSnapshotTrees.$inferSelect;
export type SnapshotBsRefRow = typeof volumeSnapshotBackupStorageRefs.$inferSelect;

const dates = (r: { createDate: Date; lastOpDate: Date }) => ({ createDate: formatDate(r.createDate)!, lastOpDate: formatDate(r.lastOpDate)! });

const refInventory = (r: SnapshotBsRefRow) => ({
  volumeSnapshotUuid: r.volumeSnapshotUuid,
  backupStorageUuid: r.backupStorageUuid,
  installPath: r.installPath,
});

function snapshotInventory(s: SnapshotRow, refs: SnapshotBsRefRow[]) {
  return {
    uuid: s.uuid,
    name: s.name,
    ...(s.description !== null ? { description: s.description } : {}),
    type: s.type,
    volumeUuid: s.volumeUuid,
    treeUuid: s.treeUuid,
    ...(s.parentUuid !== null ? { parentUuid: s.parentUuid } : {}),
    primaryStorageUuid: s.primaryStorageUuid,
    ...(s.primaryStorageInstallPath !== null ? { primaryStorageInstallPath: s.primaryStorageInstallPath } : {}),
    volumeType: s.volumeType as 'Root' | 'Data',
    format: s.format,
    latest: s.latest,
    fullSnapshot: s.fullSnapshot,
    size: s.size,
    state: s.state as 'Enabled' | 'Disabled',
    status: s.status as 'Creating' | 'Ready' | 'Deleting',
    backupStorageRefs: refs.filter((r) => r.volumeSnapshotUuid === s.uuid).map(refInventory),
    ...dates(s),
  };
}

export type SnapshotInventory = ReturnType<typeof snapshotInventory>;

export async function snapshotInventories(rows: SnapshotRow[], db: Tx): Promise<SnapshotInventory[]> {
  if (rows.length === 0) return [];
  const refs = await db
    .select()
    .from(volumeSnapshotBackupStorageRefs)
    .where(
      inArray(
        volumeSnapshotBackupStorageRefs.volumeSnapshotUuid,
        rows.map((r) => r.uuid),
      ),
    )
    .orderBy(asc(volumeSnapshotBackupStorageRefs.createDate));
  return rows.map((s) => snapshotInventory(s, refs));
}

export interface SnapshotLeaf {
  inventory: SnapshotInventory;
  parentUuid?: string;
  children: SnapshotLeaf[];
}

/** The trees with their snapshots as nested leaves (children oldest first). */
export async function treeInventories(rows: TreeRow[], db: Tx) {
  if (rows.length === 0) return [];
  const snapshots = await db
    .select()
    .from(volumeSnapshots)
    .where(
      inArray(
        volumeSnapshots.treeUuid,
        rows.map((r) => r.uuid),
      ),
    )
    .orderBy(asc(volumeSnapshots.createDate), asc(volumeSnapshots.uuid));
  const inventories = await snapshotInventories(snapshots, db);
  const leaves = new Map(
    inventories.map((inv) => [inv.uuid, { inventory: inv, ...(inv.parentUuid ? { parentUuid: inv.parentUuid } : {}), children: [] } as SnapshotLeaf]),
  );
  const roots = new Map<string, SnapshotLeaf>();
  for (const leaf of leaves.values()) {
    const parent = leaf.parentUuid ? leaves.get(leaf.parentUuid) : undefined;
    if (parent) parent.children.push(leaf);
    else roots.set(leaf.inventory.treeUuid, leaf);
  }
  return rows.map((t) => {
    const root = roots.get(t.uuid);
    return { uuid: t.uuid, volumeUuid: t.volumeUuid, current: t.current, ...(root ? { tree: root } : {}), ...dates(t) };
  });
}

const snapshotLinks = schemaLinks(volumeSnapshots, volumeSnapshotBackupStorageRefs);

export const snapshotDescriptor: InventoryDescriptor<SnapshotRow> = {
  name: 'VolumeSnapshotInventory',
  table: volumeSnapshots,
  fields: fieldsFromTable(volumeSnapshots),
  expand: {
    ...schemaExpands(volumeSnapshots),
    // volume_snapshots.volume_uuid has no foreign key: by hand.
    volume: { inventory: 'VolumeInventory', localKey: 'volumeUuid', remoteKey: 'uuid' },
    ...snapshotLinks.expand,
  },
  aliases: snapshotLinks.aliases,
  defaultSort: 'createDate',
  toInventories: snapshotInventories,
};

export const treeDescriptor: InventoryDescriptor<TreeRow> = {
  name: 'VolumeSnapshotTreeInventory',
  table: volumeSnapshotTrees,
  fields: fieldsFromTable(volumeSnapshotTrees),
  expand: {
    // volume_snapshot_trees.volume_uuid has no foreign key; snapshot is one-to-many (1.1's name, not the key's).
    volume: { inventory: 'VolumeInventory', localKey: 'volumeUuid', remoteKey: 'uuid' },
    snapshot: { inventory: 'VolumeSnapshotInventory', localKey: 'uuid', remoteKey: 'treeUuid' },
  },
  defaultSort: 'createDate',
  toInventories: treeInventories,
};

/** Not an API inventory: the join behind `QueryVolumeSnapshot q=backupStorage.uuid=...`. */
export const snapshotRefDescriptor: InventoryDescriptor<SnapshotBsRefRow> = {
  name: 'VolumeSnapshotBackupStorageRefInventory',
  ownerKey: 'volumeSnapshotUuid',
  table: volumeSnapshotBackupStorageRefs,
  fields: fieldsFromTable(volumeSnapshotBackupStorageRefs),
  expand: schemaExpands(volumeSnapshotBackupStorageRefs),
  toInventories: async (rows) => rows.map(refInventory),
};

export const snapshotDescriptors = [snapshotDescriptor, treeDescriptor, snapshotRefDescriptor];

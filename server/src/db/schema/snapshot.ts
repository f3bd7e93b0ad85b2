// Volume snapshots (upstream 1.1's VolumeSnapshotVO, VolumeSnapshotTreeVO, VolumeSnapshotBackupStorageRefVO).
// A snapshot names its volume without a foreign key: the volume row may go first (expunged), and the snapshot
// domain then removes the orphans with their files and capacity. Snapshots go with their primary storage, backup
// copies with their backup storage (ON DELETE CASCADE): nothing is left to clean on storage that no longer exists.
import { bigint, boolean, index, integer, pgTable, primaryKey, text } from 'drizzle-orm/pg-core';
import { dates } from './common.js';
import { backupStorage, primaryStorage } from './storage.js';

const big = (name: string) => bigint(name, { mode: 'number' });

export const volumeSnapshotTrees = pgTable(
  'volume_snapshot_trees',
  {
    uuid: text('uuid').primaryKey(),
    volumeUuid: text('volume_uuid').notNull(),
    /** The tree new snapshots of the volume grow on; at most one per volume. */
    current: boolean('current').notNull().default(true),
    ...dates(),
  },
  (t) => [index('volume_snapshot_trees_volume_idx').on(t.volumeUuid)],
);

export const volumeSnapshots = pgTable(
  'volume_snapshots',
  {
    uuid: text('uuid').primaryKey(),
    name: text('name').notNull(),
    description: text('description'),
    /** Hypervisor (a qcow2 file on the primary storage) */
    type: text('type').notNull().default('Hypervisor'),
    volumeUuid: text('volume_uuid').notNull(),
    treeUuid: text('tree_uuid')
      .notNull()
      .references(() => volumeSnapshotTrees.uuid, { onDelete: 'cascade' }),
    parentUuid: text('parent_uuid'),
    primaryStorageUuid: text('primary_storage_uuid')
      .notNull()
      .references(() => primaryStorage.uuid, { onDelete: 'cascade' }),
    primaryStorageInstallPath: text('primary_storage_install_path'),
    /** Root | Data: the volume's type when the snapshot was taken. */
    volumeType: text('volume_type').notNull(),
    format: text('format').notNull().default('qcow2'),
    /** The snapshot the volume's current file sits directly on (its next snapshot's parent, on a current tree). */
    latest: boolean('latest').notNull().default(false),
    /** A standalone copy of the volume (a tree's root after the incremental chain reached its maximum). */
    fullSnapshot: boolean('full_snapshot').notNull().default(false),
    /** Snapshots between this one and its tree's root (0 = the root). */
    distance: integer('distance').notNull().default(0),
    /** Bytes the snapshot holds on its primary storage (reserved there while it exists). */
    size: big('size').notNull().default(0),
    state: text('state').notNull().default('Enabled'),
    /** Creating | Ready | Deleting */
    status: text('status').notNull().default('Creating'),
    ...dates(),
  },
  (t) => [
    index('volume_snapshots_volume_idx').on(t.volumeUuid),
    index('volume_snapshots_tree_idx').on(t.treeUuid),
    index('volume_snapshots_ps_idx').on(t.primaryStorageUuid),
  ],
);

export const volumeSnapshotBackupStorageRefs = pgTable(
  'volume_snapshot_backup_storage_refs',
  {
    volumeSnapshotUuid: text('volume_snapshot_uuid')
      .notNull()
      .references(() => volumeSnapshots.uuid, { onDelete: 'cascade' }),
    backupStorageUuid: text('backup_storage_uuid')
      .notNull()
      .references(() => backupStorage.uuid, { onDelete: 'cascade' }),
    installPath: text('install_path').notNull(),
    ...dates(),
  },
  (t) => [primaryKey({ columns: [t.volumeSnapshotUuid, t.backupStorageUuid] })],
);

// What the NFS, Ceph and iSCSI storage types keep beyond the primary_storage / backup_storage rows (owned by the
// storage domain, like those): Ceph's pools, fsid and monitors, the iSCSI server's credentials. Passwords are sealed
// by the node's credential vault (`credential`), never stored in clear.
import { boolean, integer, pgTable, text, uniqueIndex } from 'drizzle-orm/pg-core';
import { dates } from './common.js';
import { backupStorage, primaryStorage } from './storage.js';

export const cephPrimaryStorage = pgTable('ceph_primary_storage', {
  uuid: text('uuid')
    .primaryKey()
    .references(() => primaryStorage.uuid, { onDelete: 'cascade' }),
  fsid: text('fsid'),
  rootVolumePoolName: text('root_volume_pool_name').notNull(),
  dataVolumePoolName: text('data_volume_pool_name').notNull(),
  imageCachePoolName: text('image_cache_pool_name').notNull(),
  /** Pools the user named (they existed before; deleting the storage keeps them), comma-separated. */
  predefinedPools: text('predefined_pools').notNull().default(''),
});

const monColumns = () => ({
  uuid: text('uuid').primaryKey(),
  hostname: text('hostname').notNull(),
  monAddr: text('mon_addr'),
  monPort: integer('mon_port').notNull().default(6789),
  sshPort: integer('ssh_port').notNull().default(22),
  sshUsername: text('ssh_username').notNull(),
  credential: text('credential'),
  status: text('status').notNull().default('Connected'),
  ...dates(),
});

// A monitor hostname belongs to one Ceph primary storage (and one Ceph backup storage), as 1.1 checks.
export const cephPrimaryStorageMons = pgTable(
  'ceph_primary_storage_mons',
  {
    ...monColumns(),
    primaryStorageUuid: text('primary_storage_uuid')
      .notNull()
      .references(() => primaryStorage.uuid, { onDelete: 'cascade' }),
  },
  (t) => [uniqueIndex('ceph_primary_storage_mons_hostname').on(t.hostname)],
);

export const cephBackupStorage = pgTable('ceph_backup_storage', {
  uuid: text('uuid')
    .primaryKey()
    .references(() => backupStorage.uuid, { onDelete: 'cascade' }),
  fsid: text('fsid'),
  poolName: text('pool_name').notNull(),
  poolPredefined: boolean('pool_predefined').notNull().default(false),
});

export const cephBackupStorageMons = pgTable(
  'ceph_backup_storage_mons',
  {
    ...monColumns(),
    backupStorageUuid: text('backup_storage_uuid')
      .notNull()
      .references(() => backupStorage.uuid, { onDelete: 'cascade' }),
  },
  (t) => [uniqueIndex('ceph_backup_storage_mons_hostname').on(t.hostname)],
);

export const iscsiPrimaryStorage = pgTable(
  'iscsi_primary_storage',
  {
    uuid: text('uuid')
      .primaryKey()
      .references(() => primaryStorage.uuid, { onDelete: 'cascade' }),
    hostname: text('hostname').notNull(),
    sshUsername: text('ssh_username').notNull(),
    chapUsername: text('chap_username'),
    filesystemType: text('filesystem_type').notNull().default('btrfs'),
    /** The SSH password, sealed. */
    credential: text('credential').notNull(),
    /** The CHAP password, sealed (as a password). */
    chapCredential: text('chap_credential'),
  },
  (t) => [uniqueIndex('iscsi_primary_storage_hostname').on(t.hostname)],
);

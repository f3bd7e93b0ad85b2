// Primary storage (where volumes live), backup storage (where images live), images and their attachments.
import { bigint, boolean, integer, pgTable, primaryKey, text } from 'drizzle-orm/pg-core';
import { dates } from './common.js';
import { clusters } from './compute.js';
import { zones } from './zone.js';

const big = (name: string) => bigint(name, { mode: 'number' });

export const primaryStorage = pgTable('primary_storage', {
  uuid: text('uuid').primaryKey(),
  zoneUuid: text('zone_uuid')
    .notNull()
    .references(() => zones.uuid),
  name: text('name').notNull(),
  description: text('description'),
  url: text('url').notNull(),
  type: text('type').notNull(),
  state: text('state').notNull().default('Enabled'),
  status: text('status').notNull().default('Connected'),
  mountPath: text('mount_path'),
  totalCapacity: big('total_capacity').notNull().default(0),
  availableCapacity: big('available_capacity').notNull().default(0),
  totalPhysicalCapacity: big('total_physical_capacity').notNull().default(0),
  availablePhysicalCapacity: big('available_physical_capacity').notNull().default(0),
  systemUsedCapacity: big('system_used_capacity').notNull().default(0),
  ...dates(),
});

export const primaryStorageClusterRefs = pgTable(
  'primary_storage_cluster_refs',
  {
    primaryStorageUuid: text('primary_storage_uuid')
      .notNull()
      .references(() => primaryStorage.uuid, { onDelete: 'cascade' }),
    clusterUuid: text('cluster_uuid')
      .notNull()
      .references(() => clusters.uuid, { onDelete: 'cascade' }),
    ...dates(),
  },
  (t) => [primaryKey({ columns: [t.primaryStorageUuid, t.clusterUuid] })],
);

export const backupStorage = pgTable('backup_storage', {
  uuid: text('uuid').primaryKey(),
  name: text('name').notNull(),
  description: text('description'),
  url: text('url').notNull(),
  type: text('type').notNull(),
  state: text('state').notNull().default('Enabled'),
  status: text('status').notNull().default('Connecting'),
  totalCapacity: big('total_capacity').notNull().default(0),
  availableCapacity: big('available_capacity').notNull().default(0),
  agentUrl: text('agent_url'),
  hostname: text('hostname'),
  username: text('username'),
  sshPort: integer('ssh_port'),
  credential: text('credential'),
  hostKey: text('host_key'),
  ...dates(),
});

export const backupStorageZoneRefs = pgTable(
  'backup_storage_zone_refs',
  {
    backupStorageUuid: text('backup_storage_uuid')
      .notNull()
      .references(() => backupStorage.uuid, { onDelete: 'cascade' }),
    zoneUuid: text('zone_uuid')
      .notNull()
      .references(() => zones.uuid, { onDelete: 'cascade' }),
    ...dates(),
  },
  (t) => [primaryKey({ columns: [t.backupStorageUuid, t.zoneUuid] })],
);

export const images = pgTable('images', {
  uuid: text('uuid').primaryKey(),
  name: text('name').notNull(),
  description: text('description'),
  state: text('state').notNull().default('Enabled'),
  status: text('status').notNull().default('Downloading'),
  size: big('size').notNull().default(0),
  actualSize: big('actual_size').notNull().default(0),
  md5Sum: text('md5_sum'),
  url: text('url').notNull(),
  mediaType: text('media_type').notNull().default('RootVolumeTemplate'),
  guestOsType: text('guest_os_type'),
  type: text('type').notNull().default('zstack'),
  platform: text('platform').notNull().default('Linux'),
  architecture: text('architecture'),
  format: text('format').notNull().default('qcow2'),
  system: boolean('system').notNull().default(false),
  virtio: boolean('virtio').notNull().default(true),
  /** Download progress, e.g. `45%` (our extension, visible while Downloading). */
  progress: text('progress'),
  ...dates(),
});

export const imageBackupStorageRefs = pgTable(
  'image_backup_storage_refs',
  {
    imageUuid: text('image_uuid')
      .notNull()
      .references(() => images.uuid, { onDelete: 'cascade' }),
    backupStorageUuid: text('backup_storage_uuid')
      .notNull()
      .references(() => backupStorage.uuid, { onDelete: 'cascade' }),
    installPath: text('install_path'),
    status: text('status').notNull().default('Downloading'),
    exportMd5Sum: text('export_md5_sum'),
    exportUrl: text('export_url'),
    ...dates(),
  },
  (t) => [primaryKey({ columns: [t.imageUuid, t.backupStorageUuid] })],
);

// Local storage (upstream's LocalStorageResourceRefVO): which host's disk holds each volume on a local primary
// storage. Rows go with the primary storage or host they name (ON DELETE CASCADE); the storage domain keeps them in
// step with the volumes (server/src/storage/local-storage.ts).
import { bigint, index, pgTable, text } from 'drizzle-orm/pg-core';
import { dates } from './common.js';
import { hosts } from './compute.js';
import { primaryStorage } from './storage.js';

export const localStorageResourceRefs = pgTable(
  'local_storage_resource_refs',
  {
    resourceUuid: text('resource_uuid').primaryKey(),
    primaryStorageUuid: text('primary_storage_uuid')
      .notNull()
      .references(() => primaryStorage.uuid, { onDelete: 'cascade' }),
    hostUuid: text('host_uuid')
      .notNull()
      .references(() => hosts.uuid, { onDelete: 'cascade' }),
    size: bigint('size', { mode: 'number' }).notNull(),
    /** VolumeVO */
    resourceType: text('resource_type').notNull().default('VolumeVO'),
    ...dates(),
  },
  (t) => [index('local_storage_refs_host_idx').on(t.hostUuid, t.primaryStorageUuid)],
);

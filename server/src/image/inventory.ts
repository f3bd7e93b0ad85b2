import { schemaExpands, schemaLinks } from '../core/inventory-schema.js';
import { inArray } from 'drizzle-orm';
import { formatDate } from '../core/dates.js';
import { fieldsFromTable, type InventoryDescriptor } from '../core/query.js';
import type { Tx } from '../db/index.js';
import { imageBackupStorageRefs, images } from '../db/schema/index.js';

export type ImageRow = typeof images.$inferSelect;
export type ImageRefRow = typeof imageBackupStorageRefs.$inferSelect;
type ImageStatus = 'Creating' | 'Downloading' | 'Ready' | 'Error' | 'Deleted' | 'Migrating';

export const imageRefInventory = (r: ImageRefRow) => ({
  imageUuid: r.imageUuid,
  backupStorageUuid: r.backupStorageUuid,
  installPath: r.installPath ?? undefined,
  status: r.status as ImageStatus,
  exportMd5Sum: r.exportMd5Sum ?? undefined,
  exportUrl: r.exportUrl ?? undefined,
  createDate: formatDate(r.createDate)!,
  lastOpDate: formatDate(r.lastOpDate)!,
});

export async function imageInventories(rows: ImageRow[], db: Tx) {
  const refs = rows.length
    ? await db
        .select()
        .from(imageBackupStorageRefs)
        .where(
          inArray(
            imageBackupStorageRefs.imageUuid,
            rows.map((r) => r.uuid),
          ),
        )
        .orderBy(imageBackupStorageRefs.createDate)
    : [];
  return rows.map((i) => ({
    uuid: i.uuid,
    name: i.name,
    description: i.description ?? undefined,
    state: i.state as 'Enabled' | 'Disabled',
    status: i.status as ImageStatus,
    size: i.size,
    actualSize: i.actualSize,
    md5Sum: i.md5Sum ?? undefined,
    url: i.url,
    mediaType: i.mediaType as 'RootVolumeTemplate' | 'DataVolumeTemplate' | 'ISO',
    guestOsType: i.guestOsType ?? undefined,
    type: i.type,
    platform: i.platform as 'Linux' | 'Windows' | 'Other',
    architecture: i.architecture ?? undefined,
    format: i.format,
    system: i.system,
    virtio: i.virtio,
    // Our extension: visible only while the download (or a template's upload) runs.
    progress: (i.status === 'Downloading' || i.status === 'Creating') && i.progress ? i.progress : undefined,
    backupStorageRefs: refs.filter((r) => r.imageUuid === i.uuid).map(imageRefInventory),
    createDate: formatDate(i.createDate)!,
    lastOpDate: formatDate(i.lastOpDate)!,
  }));
}

const imageLinks = schemaLinks(images, imageBackupStorageRefs);

export const imageDescriptor: InventoryDescriptor<ImageRow> = {
  name: 'ImageInventory',
  table: images,
  fields: fieldsFromTable(images),
  expand: {
    ...imageLinks.expand,
    // One-to-many, and volumes.root_image_uuid has no foreign key.
    volume: { inventory: 'VolumeInventory', localKey: 'uuid', remoteKey: 'rootImageUuid' },
  },
  aliases: imageLinks.aliases,
  defaultSort: 'createDate',
  toInventories: imageInventories,
};

export const imageRefDescriptor: InventoryDescriptor<ImageRefRow> = {
  name: 'ImageBackupStorageRefInventory',
  table: imageBackupStorageRefs,
  fields: fieldsFromTable(imageBackupStorageRefs),
  expand: schemaExpands(imageBackupStorageRefs),
  toInventories: async (rows) => rows.map(imageRefInventory),
};

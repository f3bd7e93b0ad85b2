// The image service other domains use (`ctx.use('images')`): an image's row and where its files are.
import { eq } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import { imageBackupStorageRefs, images } from '../db/schema/index.js';
import type { ImageRefRow, ImageRow } from './inventory.js';

export class ImageService {
  constructor(private app: DomainContext) {}

  async get(uuid: string): Promise<ImageRow | undefined> {
    const [i] = await this.app.db.select().from(images).where(eq(images.uuid, uuid));
    return i;
  }

  /** The image's backup storage refs (status Ready = the file is there). */
  async backupStorageRefs(imageUuid: string): Promise<ImageRefRow[]> {
    return this.app.db.select().from(imageBackupStorageRefs).where(eq(imageBackupStorageRefs.imageUuid, imageUuid));
  }
}

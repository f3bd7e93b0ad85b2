// Image lifecycle APIs besides add/delete/expunge (upstream 1.1 ImageBase): RecoverImage brings back what the
// Delay/Never deletion policy kept as Deleted, UpdateImage changes what is said about the image, ChangeImageState
// enables or disables it (CreateVmInstance and virtual router offerings take only Enabled images).
import { and, eq, inArray } from 'drizzle-orm';
import { changeStateHandler } from '../core/crud.js';
import type { DomainContext } from '../core/domain.js';
import { argErr, notFound, stateErr } from '../core/errors.js';
import { defineHandlers } from '../core/handlers.js';
import { imageBackupStorageRefs, images } from '../db/schema/index.js';
import type { ImageService } from './service.js';
import type { ImageRow } from './inventory.js';

/** Serialises what brings an image back with what removes its files (RecoverImage, ExpungeImage, the periodic expunge). */
export const imageLockKey = (uuid: string) => `image:${uuid}`;

/** Upstream's aliases of the platforms it no longer distinguishes. */
export const normalizePlatform = (p?: string) => (p === 'Paravirtualization' ? 'Other' : p === 'WindowsVirtio' ? 'Windows' : (p ?? 'Linux'));

export function imageLifecycleHandlers(app: DomainContext, service: ImageService, inventory: (uuid: string) => Promise<any>) {
  const { db } = app;
  const requireImage = async (uuid: string, field: string): Promise<ImageRow> => {
    const image = await service.get(uuid);
    if (!image) throw notFound('ImageVO', uuid, field);
    return image;
  };

  /** The backup storage to recover the image on: the named ones (each must hold it Deleted), else all where it is Deleted. */
  const toRecover = async (image: ImageRow, only?: string[]): Promise<string[]> => {
    const refs = await service.backupStorageRefs(image.uuid);
    if (!only?.length) {
      const deleted = refs.filter((r) => r.status === 'Deleted').map((r) => r.backupStorageUuid);
      if (!deleted.length) throw stateErr('SYS.1005', `the image[uuid:${image.uuid}, name:${image.name}] is not deleted on any backup storage`);
      return deleted;
    }
    for (const bsUuid of only) {
      const ref = refs.find((r) => r.backupStorageUuid === bsUuid);
      if (!ref) throw argErr(`field[backupStorageUuids]: the image[uuid:${image.uuid}, name:${image.name}] is not on the backup storage[uuid:${bsUuid}]`);
      if (ref.status !== 'Deleted') {
        throw argErr(
          `field[backupStorageUuids]: the image[uuid:${image.uuid}, name:${image.name}]'s status[${ref.status}] is not Deleted on the backup storage[uuid:${bsUuid}]`,
        );
      }
    }
    return [...new Set(only)];
  };

  /** An ISO's format is iso (as AddImage forces it); a template needs a disk format. */
  const mediaTypeAndFormat = (image: ImageRow, msg: { mediaType?: string; format?: string }) => {
    const mediaType = msg.mediaType ?? image.mediaType;
    const format = mediaType === 'ISO' ? 'iso' : (msg.format ?? (image.format === 'iso' ? undefined : image.format));
    if (mediaType !== 'ISO' && (!format || format === 'iso')) throw argErr(`field[format]: a ${mediaType} image needs a disk format (qcow2 or raw), not iso`);
    return { mediaType, format };
  };

  return defineHandlers({
    RecoverImage: {
      check: async (msg) => toRecover(await requireImage(msg.imageUuid, 'imageUuid'), msg.backupStorageUuids),
      async run(msg) {
        await app.locks.withLock(imageLockKey(msg.imageUuid), async () => {
          const image = await requireImage(msg.imageUuid, 'imageUuid');
          const bsUuids = await toRecover(image, msg.backupStorageUuids);
          const now = new Date();
          await db.transaction(async (tx) => {
            await tx
              .update(imageBackupStorageRefs)
              .set({ status: 'Ready', lastOpDate: now })
              .where(and(eq(imageBackupStorageRefs.imageUuid, image.uuid), inArray(imageBackupStorageRefs.backupStorageUuid, bsUuids)));
            await tx.update(images).set({ status: 'Ready', lastOpDate: now }).where(eq(images.uuid, image.uuid));
          });
        });
        return { inventory: await inventory(msg.imageUuid) };
      },
    },
    UpdateImage: {
      check: async (msg) => void mediaTypeAndFormat(await requireImage(msg.uuid, 'uuid'), msg),
      async run(msg) {
        const image = await requireImage(msg.uuid, 'uuid');
        const { mediaType, format } = mediaTypeAndFormat(image, msg);
        const changes: Partial<ImageRow> = {
          ...(msg.name !== undefined && { name: msg.name }),
          ...(msg.description !== undefined && { description: msg.description }),
          ...(msg.guestOsType !== undefined && { guestOsType: msg.guestOsType }),
          ...(msg.system !== undefined && { system: msg.system }),
          ...(msg.platform !== undefined && { platform: normalizePlatform(msg.platform) }),
          mediaType,
          format,
        };
        await db
          .update(images)
          .set({ ...changes, lastOpDate: new Date() })
          .where(eq(images.uuid, image.uuid));
        return { inventory: await inventory(image.uuid) };
      },
    },
    ChangeImageState: changeStateHandler(app, { table: images, entity: 'ImageVO', inventory: (row) => inventory(row.uuid) }),
  });
}

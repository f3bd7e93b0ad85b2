// Image files on backup storage that could not be deleted because the storage agent was unreachable: a GC job
// retries the deletion on its timer (gc/imageBits.interval) until the agent answers, and is cancelled when the
// backup storage itself is deleted.
import type { DomainContext } from '../core/domain.js';
import { isUnreachable } from '../agent-client/index.js';

export const DELETE_IMAGE_BITS = 'DeleteImageBits';

interface ImageBitsContext {
  imageUuid: string;
  backupStorageUuid: string;
  installPath: string;
}

export function registerImageGarbageCollector(app: DomainContext): void {
  app.globalConfig.define({
    category: 'gc',
    name: 'imageBits.interval',
    type: 'seconds',
    defaultValue: '60',
    min: 1,
    description: 'Seconds between retries of deleting an image file on a backup storage that was unreachable',
  });
  app.gc.register({
    name: DELETE_IMAGE_BITS,
    intervalMs: () => app.globalConfig.getMs('gc', 'imageBits.interval'),
    async run(ctx: ImageBitsContext) {
      const bs = await app.use('backupStorage').get(ctx.backupStorageUuid);
      if (!bs) return 'cancel'; // the storage and its files are gone
      await app.use('backupStorage').call(bs, '/backupstorage/delete', { installPath: ctx.installPath });
      return 'done';
    },
  });
}

/** Deletes an image file on a backup storage; an unreachable agent turns it into a GC job instead of a leftover. */
export async function deleteImageBits(app: DomainContext, ref: { imageUuid: string; backupStorageUuid: string; installPath: string | null }): Promise<void> {
  const bs = await app.use('backupStorage').get(ref.backupStorageUuid);
  if (!bs || !ref.installPath) return;
  try {
    await app.use('backupStorage').call(bs, '/backupstorage/delete', { installPath: ref.installPath });
  } catch (e) {
    if (!isUnreachable(e)) throw e;
    const context: ImageBitsContext = { imageUuid: ref.imageUuid, backupStorageUuid: bs.uuid, installPath: ref.installPath };
    await app.gc.submit({ name: `gc-image-bits-${ref.imageUuid}-on-bs-${bs.uuid}`, runner: DELETE_IMAGE_BITS, context, resourceUuid: bs.uuid });
  }
}

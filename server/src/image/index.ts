// Images (VM templates and ISOs) on backup storage: AddImage downloads them (see download.ts); deletion follows
// `image/deletionPolicy` (Direct removes the files now; Delay and Never keep the image as Deleted until expunged).
import { deleteImageBits, registerImageGarbageCollector } from './gc.js';
import { and, eq, inArray, lt } from 'drizzle-orm';
import { defineDomain, type DomainContext } from '../core/domain.js';
import { argErr, notFound, stateErr, toApiError } from '../core/errors.js';
import { defineHandlers, type Message } from '../core/handlers.js';
import { newUuid } from '../core/ids.js';
import { imageBackupStorageRefs, images } from '../db/schema/index.js';
import { noOtherManagementNode } from '../core/alone.js';
import type { BackupStorageRow } from '../storage/index.js';
import { downloadImage, installPathOf } from './download.js';
import { imageLifecycleHandlers, imageLockKey, normalizePlatform } from './lifecycle.js';
import { ImageService } from './service.js';
import { imageDescriptor, imageInventories, imageRefDescriptor, type ImageRefRow, type ImageRow } from './inventory.js';

export type { ImageRow, ImageRefRow };
export { deleteImageBits, imageInventories, ImageService };

declare module '../services.js' {
  interface Services {
    images: ImageService;
  }
}

/** Where the agents can download from: what real agents support; simulated backup storage takes any url. */
const REAL_AGENT_SCHEMES = ['http:', 'https:', 'file:'];

export const imageModule = defineDomain({ name: 'image', needs: ['backupStorage'], provides: ['images'], register });

/** Registers the image domain: inventories, handlers, cascade nodes, settings and its service. */
function register(app: DomainContext): void {
  const { db } = app;
  registerImageGarbageCollector(app);
  const service = new ImageService(app);
  app.provide('images', service);
  app.globalConfig.define({
    category: 'image',
    name: 'deletionPolicy',
    type: 'string',
    defaultValue: 'Delay',
    validValues: ['Direct', 'Delay', 'Never'],
    description: 'Direct: DeleteImage removes the files at once; Delay: Deleted until ExpungeImage or expungePeriod; Never: Deleted until ExpungeImage',
  });
  app.globalConfig.define({
    category: 'image',
    name: 'expungePeriod',
    type: 'seconds',
    defaultValue: '86400',
    min: 1,
    description: 'Seconds an image stays Deleted on a backup storage before it is expunged there (Delay policy)',
  });
  app.globalConfig.define({
    category: 'image',
    name: 'expungeInterval',
    type: 'seconds',
    defaultValue: '3600',
    min: 1,
    description: 'Seconds between runs of the image expunge task',
  });
  app.addInventory(imageDescriptor);
  app.addInventory(imageRefDescriptor);
  // A download cut short by a crash would stay Downloading forever: when no other management node is alive (none
  // can be running it), such images become Error.
  app.onBoot(async () => {
    if (!(await noOtherManagementNode(app))) return;
    await db.update(images).set({ status: 'Error', progress: null }).where(eq(images.status, 'Downloading'));
  });
  const inventory = async (uuid: string) => (await imageInventories([(await service.get(uuid))!], db))[0];

  // Images kept only on backup storage being deleted go with it.
  app.cascade.register({
    kind: 'image',
    parents: {
      backupStorage: async (bsUuids) => {
        const refs = await db
          .select()
          .from(imageBackupStorageRefs)
          .where(
            inArray(
              imageBackupStorageRefs.imageUuid,
              db
                .select({ uuid: imageBackupStorageRefs.imageUuid })
                .from(imageBackupStorageRefs)
                .where(inArray(imageBackupStorageRefs.backupStorageUuid, bsUuids)),
            ),
          );
        const elsewhere = new Set(refs.filter((r) => !bsUuids.includes(r.backupStorageUuid)).map((r) => r.imageUuid));
        return [...new Set(refs.map((r) => r.imageUuid))].filter((u) => !elsewhere.has(u));
      },
    },
    delete: async (uuids) => void (await db.delete(images).where(inArray(images.uuid, uuids))),
  });

  /** The backup storage an image can go to: known (404), Enabled and Connected with room (else 409). */
  const usableBackupStorage = async (msg: Message<'AddImage'>): Promise<BackupStorageRow[]> => {
    const rows: BackupStorageRow[] = [];
    for (const uuid of msg.backupStorageUuids) rows.push(await app.use('backupStorage').require(uuid, 'backupStorageUuids'));
    const usable = rows.filter((bs) => bs.state === 'Enabled' && bs.status === 'Connected' && bs.availableCapacity > 0);
    if (usable.length === 0) {
      const why = rows.map((bs) => `backup storage[uuid:${bs.uuid}] is ${bs.state}, ${bs.status}, ${bs.availableCapacity} bytes free`).join('; ');
      throw stateErr('SYS.1010', `no backup storage can take the image (it needs one Enabled, Connected, with free capacity): ${why}`);
    }
    const scheme = parseUrl(msg.url).protocol;
    for (const bs of usable) {
      if (!app.use('backupStorage').isSimulated(bs) && !REAL_AGENT_SCHEMES.includes(scheme)) {
        throw argErr(`field[url]: ${bs.type} backup storage[uuid:${bs.uuid}] downloads only http://, https:// and file:// urls, not ${scheme}//`);
      }
    }
    return usable;
  };

  /** Deletes image files from backup storage (an unreachable agent leaves a GC job, not a stray file). */
  const removeFiles = async (refs: ImageRefRow[]) => {
    for (const ref of refs) {
      await deleteImageBits(app, ref).catch((e) =>
        console.warn(`[image] could not delete ${ref.installPath} from backup storage ${ref.backupStorageUuid}: ${toApiError(e).message}`),
      );
      await db
        .delete(imageBackupStorageRefs)
        .where(and(eq(imageBackupStorageRefs.imageUuid, ref.imageUuid), eq(imageBackupStorageRefs.backupStorageUuid, ref.backupStorageUuid)));
    }
  };

  /** The image record goes when no backup storage holds it any more. */
  const dropIfEmpty = async (imageUuid: string) => {
    if ((await service.backupStorageRefs(imageUuid)).length === 0) await app.cascade.delete('image', [imageUuid], 'Enforcing');
  };

  // Delay policy: what stayed Deleted on a backup storage longer than image/expungePeriod is expunged there
  // (upstream's expunge-image task; Never keeps it). Under the image's lock, so a RecoverImage is never half undone.
  const expungeExpired = async () => {
    if (app.globalConfig.get('image', 'deletionPolicy') === 'Never') return;
    const before = new Date(Date.now() - app.globalConfig.getMs('image', 'expungePeriod'));
    const due = await db
      .select({ imageUuid: imageBackupStorageRefs.imageUuid })
      .from(imageBackupStorageRefs)
      .where(and(eq(imageBackupStorageRefs.status, 'Deleted'), lt(imageBackupStorageRefs.lastOpDate, before)));
    for (const imageUuid of new Set(due.map((r) => r.imageUuid))) {
      await app.locks
        .withLock(imageLockKey(imageUuid), async () => {
          const refs = (await service.backupStorageRefs(imageUuid)).filter((r) => r.status === 'Deleted' && r.lastOpDate < before);
          await removeFiles(refs);
          await dropIfEmpty(imageUuid);
        })
        .catch((e) => console.error(`[image] expunging image[uuid:${imageUuid}] failed:`, toApiError(e).message));
    }
  };
  // Ticks at least every second so a shortened expungeInterval takes effect without waiting out the old one.
  let lastExpunge = Date.now();
  app.every(
    'image-expunge',
    () => Math.min(1000, app.globalConfig.getMs('image', 'expungeInterval')),
    async () => {
      if (Date.now() - lastExpunge < app.globalConfig.getMs('image', 'expungeInterval')) return;
      lastExpunge = Date.now();
      await expungeExpired();
    },
  );

  app.addHandlers(imageLifecycleHandlers(app, service, inventory));
  app.addHandlers(
    defineHandlers({
      AddImage: {
        check: async (msg) => void (await usableBackupStorage(msg)),
        async run(msg) {
          const targets = await usableBackupStorage(msg);
          const mediaType = msg.mediaType ?? 'RootVolumeTemplate';
          const base = {
            uuid: msg.resourceUuid ?? newUuid(),
            mediaType,
            format: mediaType === 'ISO' ? 'iso' : (msg.format ?? 'qcow2'),
          };
          const image = await db.transaction(async (tx) => {
            const [row] = await tx
              .insert(images)
              .values({
                ...base,
                name: msg.name,
                description: msg.description ?? null,
                url: imageUrl(msg.url),
                status: 'Downloading',
                progress: '0%',
                guestOsType: msg.guestOsType ?? null,
                platform: normalizePlatform(msg.platform),
                architecture: msg.architecture ?? 'x86_64',
                system: msg.system ?? false,
                virtio: msg.virtio ?? true,
                type: msg.type ?? 'zstack',
              })
              .returning();
            await tx.insert(imageBackupStorageRefs).values(
              targets.map((bs) => ({
                imageUuid: row.uuid,
                backupStorageUuid: bs.uuid,
                status: 'Downloading',
                installPath: installPathOf(app.use('backupStorage').storagePathOf(bs), base),
              })),
            );
            return row;
          });
          await downloadImage(app, image, targets);
          return { inventory: await inventory(image.uuid) };
        },
      },
      DeleteImage: {
        async run(msg) {
          const image = await service.get(msg.uuid);
          if (!image) return {};
          const only = msg.backupStorageUuids;
          const refs = (await service.backupStorageRefs(image.uuid)).filter((r) => !only || only.includes(r.backupStorageUuid));
          if (app.globalConfig.get('image', 'deletionPolicy') === 'Direct') {
            await removeFiles(refs);
            await dropIfEmpty(image.uuid);
            return {};
          }
          await db.transaction(async (tx) => {
            for (const r of refs) {
              await tx
                .update(imageBackupStorageRefs)
                .set({ status: 'Deleted', lastOpDate: new Date() })
                .where(and(eq(imageBackupStorageRefs.imageUuid, r.imageUuid), eq(imageBackupStorageRefs.backupStorageUuid, r.backupStorageUuid)));
            }
          });
          const left = (await service.backupStorageRefs(image.uuid)).filter((r) => r.status !== 'Deleted');
          if (left.length === 0) await db.update(images).set({ status: 'Deleted', progress: null, lastOpDate: new Date() }).where(eq(images.uuid, image.uuid));
          return {};
        },
      },
      ExpungeImage: {
        async check(msg) {
          const image = await service.get(msg.imageUuid);
          if (!image) throw notFound('ImageVO', msg.imageUuid, 'imageUuid');
          const refs = await service.backupStorageRefs(image.uuid);
          for (const bsUuid of msg.backupStorageUuids ?? []) {
            const ref = refs.find((r) => r.backupStorageUuid === bsUuid);
            if (!ref) throw argErr(`field[backupStorageUuids]: image[uuid:${image.uuid}] is not on backup storage[uuid:${bsUuid}]`);
            if (ref.status !== 'Deleted')
              throw stateErr('SYS.1005', `image[uuid:${image.uuid}] is ${ref.status} on backup storage[uuid:${bsUuid}], not Deleted; delete it first`);
          }
          if (image.status !== 'Deleted' && !refs.some((r) => r.status === 'Deleted')) {
            throw stateErr('SYS.1005', `image[uuid:${image.uuid}] is ${image.status}, not Deleted; delete it first`);
          }
        },
        async run(msg) {
          const only = msg.backupStorageUuids;
          await app.locks.withLock(imageLockKey(msg.imageUuid), async () => {
            const refs = (await service.backupStorageRefs(msg.imageUuid)).filter(
              (r) => r.status === 'Deleted' && (!only || only.includes(r.backupStorageUuid)),
            );
            await removeFiles(refs);
            await dropIfEmpty(msg.imageUuid);
          });
          return {};
        },
      },
    }),
  );
}

/** A url starting with `/` is a local file. */
const imageUrl = (url: string) => (url.startsWith('/') ? `file://${url}` : url);

function parseUrl(url: string): URL {
  try {
    return new URL(imageUrl(url));
  } catch {
    throw argErr(`field[url]: ${url} is not a valid url`);
  }
}

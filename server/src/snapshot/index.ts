// Volume snapshots and what is made from volumes and snapshots (templates, data volumes): inventories, APIs, the
// setting bounding incremental chains, and the cleanup of snapshots whose volume was expunged (on the volume's and
// VM's deletion events, at start and periodically, so a missed event or a crash leaves nothing behind).
import { and, eq, like, or, sql } from 'drizzle-orm';
import { noOtherManagementNode } from '../core/alone.js';
import { images, volumeSnapshots } from '../db/schema/index.js';
import { defineDomain, type DomainContext } from '../core/domain.js';
import { snapshotHandlers } from './handlers.js';
import { snapshotDescriptors } from './inventory.js';
import { VolumeSnapshotService, type SnapshotDeps } from './service.js';
import { Templates } from './templates.js';

declare module '../services.js' {
  interface Services {
    volumeSnapshots: VolumeSnapshotService;
  }
}

export type { VolumeSnapshotService };

export const snapshotModule = defineDomain({
  name: 'snapshot',
  needs: ['volumes', 'vms', 'hosts', 'primaryStorage', 'backupStorage', 'images'],
  provides: ['volumeSnapshots'],
  register,
});

/** Registers the snapshot domain: inventories, APIs, settings and the orphan cleanup. */
function register(app: DomainContext<SnapshotDeps | 'images', 'volumeSnapshots'>): void {
  app.globalConfig.define({
    category: 'volumeSnapshot',
    name: 'incrementalSnapshot.maxNum',
    type: 'int',
    defaultValue: '16',
    min: 1,
    max: 1000,
    description: 'Snapshots in one incremental chain; the next one starts a new tree with a full copy of the volume',
  });
  const service = new VolumeSnapshotService(app);
  app.provide('volumeSnapshots', service);
  for (const d of snapshotDescriptors) app.addInventory(d);
  app.addHandlers(snapshotHandlers(app, service, new Templates(service)));

  // Snapshots hold primary storage too: SyncPrimaryStorageCapacity counts them next to the volumes.
  app.use('primaryStorage').reportUsage(async (psUuid) => {
    const [r] = await app.db
      .select({ bytes: sql<string>`COALESCE(SUM(${volumeSnapshots.size}), 0)` })
      .from(volumeSnapshots)
      .where(eq(volumeSnapshots.primaryStorageUuid, psUuid));
    return Number(r?.bytes ?? 0);
  });

  const cleanup = () => service.removeOrphans();
  app.events.on('volume.expunged', cleanup);
  app.events.on('vm.deleted', cleanup);
  app.events.on('primaryStorage.deleted', cleanup);
  app.onBoot(async () => {
    // Work a crash cut short: nobody else can be doing it when this node is alone.
    if (!(await noOtherManagementNode(app))) return;
    await service.settleInterrupted();
    // Templates whose upload a crash cut short: Error (as AddImage's downloads), to be deleted by the user.
    await app.db
      .update(images)
      .set({ status: 'Error', progress: null })
      .where(and(eq(images.status, 'Creating'), or(like(images.url, 'volume://%'), like(images.url, 'volumeSnapshot://%'))));
  });
  app.every('volume-snapshot-orphans', () => 10 * 60_000, cleanup);
}

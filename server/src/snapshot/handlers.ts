// The volume snapshot APIs and the template / data volume APIs made from volumes and snapshots.
import { asc, eq } from 'drizzle-orm';
import { updateHandler } from '../core/crud.js';
import type { DomainContext } from '../core/domain.js';
import { argErr, notFound } from '../core/errors.js';
import { defineHandlers } from '../core/handlers.js';
import { images, volumeSnapshots, volumeSnapshotTrees } from '../db/schema/index.js';
import { imageInventories } from '../image/index.js';
import { notInStateErr, volumeInventory as volumeInventoryOf } from '../vm/index.js';
import { snapshotInventories, treeInventories } from './inventory.js';
import type { SnapshotDeps, VolumeSnapshotService } from './service.js';
import type { Templates } from './templates.js';

export function snapshotHandlers(app: DomainContext<SnapshotDeps>, svc: VolumeSnapshotService, templates: Templates) {
  const { db } = app;
  const resourceFree = async (uuid: string | undefined) => {
    if (!uuid) return;
    const [a] = await db.select({ uuid: volumeSnapshots.uuid }).from(volumeSnapshots).where(eq(volumeSnapshots.uuid, uuid));
    const [b] = await db.select({ uuid: images.uuid }).from(images).where(eq(images.uuid, uuid));
    const c = await app.use('volumes').get(uuid);
    if (a || b || c) throw argErr(`resourceUuid[${uuid}] is already used`);
  };
  const imageInventory = async (uuid: string) => {
    const [row] = await db.select().from(images).where(eq(images.uuid, uuid));
    return { inventory: (await imageInventories([row], db))[0] };
  };
  const volumeInventory = async (uuid: string) => ({ inventory: volumeInventoryOf((await app.use('volumes').require(uuid))!) });

  return defineHandlers({
    CreateVolumeSnapshot: {
      async check(msg) {
        await resourceFree(msg.resourceUuid);
        const v = await app.use('volumes').get(msg.volumeUuid);
        if (!v) throw notFound('VolumeVO', msg.volumeUuid, 'volumeUuid');
        svc.checkSnapshottable(v, v.vmInstanceUuid ? await app.use('vms').get(v.vmInstanceUuid) : undefined);
      },
      async run(msg) {
        const s = await svc.create(msg.volumeUuid, { uuid: msg.resourceUuid, name: msg.name, description: msg.description });
        return { inventory: await svc.inventory(s.uuid) };
      },
    },
    UpdateVolumeSnapshot: updateHandler(app, {
      table: volumeSnapshots,
      entity: 'VolumeSnapshotVO',
      inventory: async (row) => (await snapshotInventories([row], db))[0],
      fields: ['name', 'description'],
    }),
    DeleteVolumeSnapshot: {
      async run(msg) {
        await svc.delete(msg.uuid);
        return {};
      },
    },
    RevertVolumeFromSnapshot: {
      async check(msg) {
        const s = await svc.require(msg.uuid);
        const v = await app.use('volumes').get(s.volumeUuid);
        const vm = v?.vmInstanceUuid ? await app.use('vms').get(v.vmInstanceUuid) : undefined;
        if (vm && vm.state !== 'Stopped') throw notInStateErr(vm.state, 'RevertVolumeFromSnapshot', ['Stopped']);
      },
      async run(msg) {
        await svc.revert(msg.uuid);
        return {};
      },
    },
    BackupVolumeSnapshot: {
      async check(msg) {
        const s = await svc.require(msg.uuid);
        await svc.targetBackupStorage(s.primaryStorageUuid, msg.backupStorageUuid ? [msg.backupStorageUuid] : undefined, 'backupStorageUuid');
      },
      async run(msg) {
        await svc.backup(msg.uuid, msg.backupStorageUuid);
        return { inventory: await svc.inventory(msg.uuid) };
      },
    },
    DeleteVolumeSnapshotFromBackupStorage: {
      check: async (msg) => void (await svc.require(msg.uuid)),
      async run(msg) {
        await svc.deleteFromBackupStorage(msg.uuid, [msg.backupStorageUuids].flat());
        return { inventory: await svc.inventory(msg.uuid) };
      },
    },
    GetVolumeSnapshotTree: {
      async run(msg) {
        if (!msg.volumeUuid && !msg.treeUuid) throw argErr('volumeUuid or treeUuid is required');
        const q = db.select().from(volumeSnapshotTrees);
        const rows = msg.treeUuid
          ? await q.where(eq(volumeSnapshotTrees.uuid, msg.treeUuid))
          : await q.where(eq(volumeSnapshotTrees.volumeUuid, msg.volumeUuid!)).orderBy(asc(volumeSnapshotTrees.createDate), asc(volumeSnapshotTrees.uuid));
        return { inventories: await treeInventories(rows, db) };
      },
    },
    CreateRootVolumeTemplateFromRootVolume: {
      async check(msg) {
        await resourceFree(msg.resourceUuid);
        await templates.checkTemplate({ volumeUuid: msg.rootVolumeUuid }, 'rootVolumeUuid', msg, 'CreateRootVolumeTemplateFromRootVolume', true);
      },
      async run(msg) {
        const uuid = await templates.createTemplate(
          { volumeUuid: msg.rootVolumeUuid },
          'rootVolumeUuid',
          { ...msg, uuid: msg.resourceUuid },
          'RootVolumeTemplate',
          'CreateRootVolumeTemplateFromRootVolume',
        );
        return imageInventory(uuid);
      },
    },
    CreateDataVolumeTemplateFromVolume: {
      async check(msg) {
        await resourceFree(msg.resourceUuid);
        await templates.checkTemplate({ volumeUuid: msg.volumeUuid }, 'volumeUuid', msg, 'CreateDataVolumeTemplateFromVolume', false);
      },
      async run(msg) {
        const uuid = await templates.createTemplate(
          { volumeUuid: msg.volumeUuid },
          'volumeUuid',
          { ...msg, uuid: msg.resourceUuid },
          'DataVolumeTemplate',
          'CreateDataVolumeTemplateFromVolume',
        );
        return imageInventory(uuid);
      },
    },
    CreateRootVolumeTemplateFromVolumeSnapshot: {
      async check(msg) {
        await resourceFree(msg.resourceUuid);
        const s = await svc.require(msg.snapshotUuid, 'snapshotUuid');
        await templates.checkTemplate(
          { volumeUuid: s.volumeUuid, snapshotUuid: s.uuid },
          'snapshotUuid',
          msg,
          'CreateRootVolumeTemplateFromVolumeSnapshot',
          false,
        );
      },
      async run(msg) {
        const s = await svc.require(msg.snapshotUuid, 'snapshotUuid');
        const uuid = await templates.createTemplate(
          { volumeUuid: s.volumeUuid, snapshotUuid: s.uuid },
          'snapshotUuid',
          { ...msg, uuid: msg.resourceUuid },
          'RootVolumeTemplate',
          'CreateRootVolumeTemplateFromVolumeSnapshot',
        );
        return imageInventory(uuid);
      },
    },
    CreateDataVolumeFromVolumeSnapshot: {
      async check(msg) {
        await resourceFree(msg.resourceUuid);
        await templates.checkFromSnapshot(msg.volumeSnapshotUuid, msg.primaryStorageUuid);
      },
      async run(msg) {
        return volumeInventory(await templates.dataVolumeFromSnapshot(msg.volumeSnapshotUuid, { ...msg, uuid: msg.resourceUuid }));
      },
    },
    CreateDataVolumeFromVolumeTemplate: {
      async check(msg) {
        await resourceFree(msg.resourceUuid);
        await templates.checkFromTemplate(msg.imageUuid, msg.primaryStorageUuid, msg.hostUuid);
      },
      async run(msg) {
        return volumeInventory(await templates.dataVolumeFromTemplate(msg.imageUuid, { ...msg, uuid: msg.resourceUuid }));
      },
    },
  });
}

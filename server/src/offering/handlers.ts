import { and, eq } from 'drizzle-orm';
import { changeStateHandler, deleteHandler, updateHandler } from '../core/crud.js';
import type { DomainContext } from '../core/domain.js';
import type { Tx } from '../db/index.js';
import { argErr, notFound } from '../core/errors.js';
import { defineHandlers, type Message } from '../core/handlers.js';
import { newUuid } from '../core/ids.js';
import { diskOfferings, images, instanceOfferings, l3Networks, zones } from '../db/schema/index.js';
import { diskOfferingInventory, instanceOfferingInventory, virtualRouterOfferingInventory, type InstanceOfferingRow } from './inventory.js';
import { DEFAULT_ALLOCATOR_STRATEGY } from './service.js';

export function offeringHandlers(app: DomainContext) {
  const { db } = app;
  const l3InZone = async (uuid: string, zoneUuid: string, field: string) => {
    const [l3] = await db.select({ uuid: l3Networks.uuid, zoneUuid: l3Networks.zoneUuid }).from(l3Networks).where(eq(l3Networks.uuid, uuid));
    if (!l3) throw notFound('L3NetworkVO', uuid, field);
    if (l3.zoneUuid !== zoneUuid) throw argErr(`field[${field}]: L3 network[uuid:${uuid}] is in zone[uuid:${l3.zoneUuid}], not in zone[uuid:${zoneUuid}]`);
  };

  /** The image a virtual router boots: a RootVolumeTemplate in a disk format. */
  const routerImage = async (uuid: string) => {
    const [img] = await db.select({ uuid: images.uuid, mediaType: images.mediaType, format: images.format }).from(images).where(eq(images.uuid, uuid));
    if (!img) throw notFound('ImageVO', uuid, 'imageUuid');
    if (img.mediaType !== 'RootVolumeTemplate' || img.format === 'iso')
      throw argErr(`field[imageUuid]: image[uuid:${img.uuid}] is a ${img.mediaType} in ${img.format} format; a virtual router boots a RootVolumeTemplate`);
  };
  /** One default per zone (a unique index holds it): concurrent changes in the zone take turns on its row. */
  const takeDefault = async (tx: Tx, zoneUuid: string) => {
    await tx.select({ uuid: zones.uuid }).from(zones).where(eq(zones.uuid, zoneUuid)).for('no key update');
    await tx
      .update(instanceOfferings)
      .set({ isDefault: false })
      .where(and(eq(instanceOfferings.type, 'VirtualRouter'), eq(instanceOfferings.zoneUuid, zoneUuid)));
  };
  const requireRouterOffering = async (uuid: string): Promise<InstanceOfferingRow> => {
    const [o] = await db.select().from(instanceOfferings).where(eq(instanceOfferings.uuid, uuid));
    if (!o) throw notFound('InstanceOfferingVO', uuid);
    if (o.type !== 'VirtualRouter') throw notFound('VirtualRouterOfferingVO', uuid);
    return o;
  };

  // User VM and disk offerings are updated, change state and are deleted as every resource (core/crud.ts); a
  // virtual router offering's update is its own (the image, the zone's default).
  const instanceOffering = { table: instanceOfferings, entity: 'InstanceOfferingVO', inventory: instanceOfferingInventory };
  const diskOffering = { table: diskOfferings, entity: 'DiskOfferingVO', inventory: diskOfferingInventory };

  return defineHandlers({
    CreateInstanceOffering: {
      async run(msg) {
        const [o] = await db
          .insert(instanceOfferings)
          .values({ ...instanceOfferingColumns(msg), type: 'UserVm' })
          .returning();
        return { inventory: instanceOfferingInventory(o) };
      },
    },
    CreateVirtualRouterOffering: {
      async check(msg) {
        const [z] = await db.select({ uuid: zones.uuid }).from(zones).where(eq(zones.uuid, msg.zoneUuid));
        if (!z) throw notFound('ZoneVO', msg.zoneUuid, 'zoneUuid');
        await l3InZone(msg.managementNetworkUuid, msg.zoneUuid, 'managementNetworkUuid');
        if (msg.publicNetworkUuid) await l3InZone(msg.publicNetworkUuid, msg.zoneUuid, 'publicNetworkUuid');
        await routerImage(msg.imageUuid);
      },
      async run(msg) {
        const o = await db.transaction(async (tx) => {
          if (msg.isDefault) await takeDefault(tx, msg.zoneUuid);
          const [row] = await tx
            .insert(instanceOfferings)
            .values({
              ...instanceOfferingColumns(msg),
              type: 'VirtualRouter',
              zoneUuid: msg.zoneUuid,
              managementNetworkUuid: msg.managementNetworkUuid,
              publicNetworkUuid: msg.publicNetworkUuid ?? msg.managementNetworkUuid,
              imageUuid: msg.imageUuid,
              isDefault: msg.isDefault ?? false,
            })
            .returning();
          return row;
        });
        return { inventory: virtualRouterOfferingInventory(o) };
      },
    },
    CreateDiskOffering: {
      async run(msg) {
        const [o] = await db
          .insert(diskOfferings)
          .values({
            uuid: msg.resourceUuid ?? newUuid(),
            name: msg.name,
            description: msg.description ?? null,
            diskSize: msg.diskSize,
            sortKey: msg.sortKey ?? 0,
            allocatorStrategy: msg.allocationStrategy ?? null,
            type: msg.type ?? 'zstack',
          })
          .returning();
        return { inventory: diskOfferingInventory(o) };
      },
    },
    UpdateInstanceOffering: updateHandler(app, { ...instanceOffering, fields: ['name', 'description'] }),
    ChangeInstanceOfferingState: changeStateHandler(app, instanceOffering),
    UpdateVirtualRouterOffering: {
      async check(msg) {
        await requireRouterOffering(msg.uuid);
        if (msg.imageUuid) await routerImage(msg.imageUuid);
      },
      async run(msg) {
        const o = await requireRouterOffering(msg.uuid);
        if (msg.imageUuid) await routerImage(msg.imageUuid);
        const updated = await db.transaction(async (tx) => {
          if (msg.isDefault) await takeDefault(tx, o.zoneUuid!);
          const changes = {
            ...nameAndDescription(msg),
            ...(msg.imageUuid !== undefined && { imageUuid: msg.imageUuid }),
            ...(msg.isDefault !== undefined && { isDefault: msg.isDefault }),
          };
          const [row] = await tx
            .update(instanceOfferings)
            .set({ ...changes, lastOpDate: new Date() })
            .where(eq(instanceOfferings.uuid, o.uuid))
            .returning();
          if (!row) throw notFound('InstanceOfferingVO', o.uuid);
          return row;
        });
        return { inventory: virtualRouterOfferingInventory(updated) };
      },
    },
    UpdateDiskOffering: updateHandler(app, { ...diskOffering, fields: ['name', 'description'] }),
    ChangeDiskOfferingState: changeStateHandler(app, diskOffering),
    DeleteInstanceOffering: deleteHandler(app, { node: 'instanceOffering' }),
    DeleteDiskOffering: deleteHandler(app, { node: 'diskOffering' }),
  });
}

type OfferingChanges = { name?: string; description?: string | null; imageUuid?: string; isDefault?: boolean };

/** What an update message gives of the name and description (absent = unchanged). */
const nameAndDescription = (msg: { name?: string; description?: string }): OfferingChanges => ({
  ...(msg.name !== undefined && { name: msg.name }),
  ...(msg.description !== undefined && { description: msg.description }),
});

/** The columns user VM and virtual router offerings share, from a create message. */
const instanceOfferingColumns = (msg: Message<'CreateInstanceOffering'> | Message<'CreateVirtualRouterOffering'>) => ({
  uuid: msg.resourceUuid ?? newUuid(),
  name: msg.name,
  description: msg.description ?? null,
  cpuNum: msg.cpuNum,
  memorySize: msg.memorySize,
  reservedMemorySize: msg.reservedMemorySize ?? 0,
  allocatorStrategy: msg.allocatorStrategy ?? DEFAULT_ALLOCATOR_STRATEGY,
  sortKey: msg.sortKey ?? 0,
  cpuSpeed: msg.cpuSpeed ?? 0,
});

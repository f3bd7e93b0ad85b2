// Offerings: instance offerings (CPU/memory of user VMs), virtual router offerings (an instance offering of type
// VirtualRouter plus the router's image and networks) and disk offerings. Deleting one only removes the row: VMs
// and volumes created from it keep running and keep their copy of the sizes.
import { and, asc, desc, eq, inArray, or } from 'drizzle-orm';
import { defineDomain, type DomainContext } from '../core/domain.js';
import { argErr, notFound } from '../core/errors.js';
import { defineHandlers } from '../core/handlers.js';
import { newUuid } from '../core/ids.js';
import { diskOfferings, images, instanceOfferings, l3Networks, zones } from '../db/schema/index.js';
import {
  diskOfferingDescriptor,
  diskOfferingInventory,
  instanceOfferingDescriptor,
  instanceOfferingInventory,
  virtualRouterOfferingDescriptor,
  virtualRouterOfferingInventory,
  type DiskOfferingRow,
  type InstanceOfferingRow,
} from './inventory.js';

export type { InstanceOfferingRow, DiskOfferingRow };

declare module '../services.js' {
  interface Services {
    offerings: OfferingService;
  }
}

/** Upstream's allocator when an offering names none. */
export const DEFAULT_ALLOCATOR_STRATEGY = 'LeastVmPreferredHostAllocatorStrategy';

export class OfferingService {
  constructor(private app: DomainContext) {}

  async instanceOffering(uuid: string): Promise<InstanceOfferingRow | undefined> {
    const [o] = await this.app.db.select().from(instanceOfferings).where(eq(instanceOfferings.uuid, uuid));
    return o;
  }

  async diskOffering(uuid: string): Promise<DiskOfferingRow | undefined> {
    const [o] = await this.app.db.select().from(diskOfferings).where(eq(diskOfferings.uuid, uuid));
    return o;
  }

  /** The zone's virtual router offering marked default, else its oldest one. */
  async defaultVirtualRouterOffering(zoneUuid: string): Promise<InstanceOfferingRow | undefined> {
    const [o] = await this.app.db
      .select()
      .from(instanceOfferings)
      .where(and(eq(instanceOfferings.type, 'VirtualRouter'), eq(instanceOfferings.zoneUuid, zoneUuid), eq(instanceOfferings.state, 'Enabled')))
      .orderBy(desc(instanceOfferings.isDefault), asc(instanceOfferings.createDate))
      .limit(1);
    return o;
  }
}

export const offeringModule = defineDomain({ name: 'offering', provides: ['offerings'], register });

/** Registers the offering domain: inventories, handlers, cascade nodes, settings and its service. */
function register(app: DomainContext): void {
  const { db } = app;
  app.provide('offerings', new OfferingService(app));
  app.addInventory(instanceOfferingDescriptor);
  app.addInventory(virtualRouterOfferingDescriptor);
  app.addInventory(diskOfferingDescriptor);

  const deleteInstanceOfferings = async (uuids: string[]) => void (await db.delete(instanceOfferings).where(inArray(instanceOfferings.uuid, uuids)));
  app.cascade.register({ kind: 'instanceOffering', parents: {}, delete: deleteInstanceOfferings });
  app.cascade.register({
    kind: 'diskOffering',
    parents: {},
    delete: async (uuids) => void (await db.delete(diskOfferings).where(inArray(diskOfferings.uuid, uuids))),
  });
  // A virtual router offering cannot outlive its zone, image or networks (upstream's cascade edges).
  const vrOfferingsWhere = async (cond: ReturnType<typeof eq>) =>
    (
      await db
        .select({ uuid: instanceOfferings.uuid })
        .from(instanceOfferings)
        .where(and(eq(instanceOfferings.type, 'VirtualRouter'), cond))
    ).map((r) => r.uuid);
  app.cascade.register({
    kind: 'virtualRouterOffering',
    parents: {
      zone: (uuids) => vrOfferingsWhere(inArray(instanceOfferings.zoneUuid, uuids)),
      image: (uuids) => vrOfferingsWhere(inArray(instanceOfferings.imageUuid, uuids)),
      l3: (uuids) => vrOfferingsWhere(or(inArray(instanceOfferings.managementNetworkUuid, uuids), inArray(instanceOfferings.publicNetworkUuid, uuids))!),
    },
    delete: deleteInstanceOfferings,
  });

  const l3InZone = async (uuid: string, zoneUuid: string, field: string) => {
    const [l3] = await db.select({ uuid: l3Networks.uuid, zoneUuid: l3Networks.zoneUuid }).from(l3Networks).where(eq(l3Networks.uuid, uuid));
    if (!l3) throw notFound('L3NetworkVO', uuid, field);
    if (l3.zoneUuid !== zoneUuid) throw argErr(`field[${field}]: L3 network[uuid:${uuid}] is in zone[uuid:${l3.zoneUuid}], not in zone[uuid:${zoneUuid}]`);
  };

  app.addHandlers(
    defineHandlers({
      CreateInstanceOffering: {
        async run(msg) {
          const [o] = await db
            .insert(instanceOfferings)
            .values({
              uuid: msg.resourceUuid ?? newUuid(),
              name: msg.name,
              description: msg.description ?? null,
              cpuNum: msg.cpuNum,
              memorySize: msg.memorySize,
              reservedMemorySize: msg.reservedMemorySize ?? 0,
              allocatorStrategy: msg.allocatorStrategy ?? DEFAULT_ALLOCATOR_STRATEGY,
              sortKey: msg.sortKey ?? 0,
              cpuSpeed: msg.cpuSpeed ?? 0,
              type: 'UserVm',
            })
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
          const [img] = await db.select({ uuid: images.uuid, mediaType: images.mediaType }).from(images).where(eq(images.uuid, msg.imageUuid));
          if (!img) throw notFound('ImageVO', msg.imageUuid, 'imageUuid');
          if (img.mediaType !== 'RootVolumeTemplate')
            throw argErr(`field[imageUuid]: image[uuid:${img.uuid}] is a ${img.mediaType}; a virtual router boots a RootVolumeTemplate`);
        },
        async run(msg) {
          const o = await db.transaction(async (tx) => {
            // One default per zone (a unique index holds it): concurrent creations in the zone take turns on its row.
            if (msg.isDefault) {
              await tx.select({ uuid: zones.uuid }).from(zones).where(eq(zones.uuid, msg.zoneUuid)).for('no key update');
              await tx
                .update(instanceOfferings)
                .set({ isDefault: false })
                .where(and(eq(instanceOfferings.type, 'VirtualRouter'), eq(instanceOfferings.zoneUuid, msg.zoneUuid)));
            }
            const [row] = await tx
              .insert(instanceOfferings)
              .values({
                uuid: msg.resourceUuid ?? newUuid(),
                name: msg.name,
                description: msg.description ?? null,
                cpuNum: msg.cpuNum,
                memorySize: msg.memorySize,
                reservedMemorySize: msg.reservedMemorySize ?? 0,
                allocatorStrategy: msg.allocatorStrategy ?? DEFAULT_ALLOCATOR_STRATEGY,
                sortKey: msg.sortKey ?? 0,
                cpuSpeed: msg.cpuSpeed ?? 0,
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
      DeleteInstanceOffering: {
        async run(msg) {
          await app.cascade.delete('instanceOffering', [msg.uuid], msg.deleteMode ?? 'Permissive');
          return {};
        },
      },
      DeleteDiskOffering: {
        async run(msg) {
          await app.cascade.delete('diskOffering', [msg.uuid], msg.deleteMode ?? 'Permissive');
          return {};
        },
      },
    }),
  );
}

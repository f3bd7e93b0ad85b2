// Offerings: instance offerings (CPU/memory of user VMs), virtual router offerings (an instance offering of type
// VirtualRouter plus the router's image and networks) and disk offerings. Deleting one only removes the row: VMs
// and volumes created from it keep running and keep their copy of the sizes.
import { and, eq, inArray, or } from 'drizzle-orm';
import { defineDomain, type DomainContext } from '../core/domain.js';
import { diskOfferings, instanceOfferings } from '../db/schema/index.js';
import { offeringHandlers } from './handlers.js';
import { diskOfferingDescriptor, instanceOfferingDescriptor, virtualRouterOfferingDescriptor } from './inventory.js';
import { OfferingService } from './service.js';

// The offering domain's public face.
export type { InstanceOfferingRow, DiskOfferingRow } from './inventory.js';
export { DEFAULT_ALLOCATOR_STRATEGY, OfferingService } from './service.js';

declare module '../services.js' {
  interface Services {
    offerings: OfferingService;
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
  app.addHandlers(offeringHandlers(app));
}

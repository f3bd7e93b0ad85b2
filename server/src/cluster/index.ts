// Clusters: groups of hosts of one hypervisor type inside a zone. Deleting one takes its hosts with it (cascade);
// its primary storage and L2 attachments go with the rows (ON DELETE CASCADE refs).
import { inArray } from 'drizzle-orm';
import { defineDomain, type DomainContext } from '../core/domain.js';
import { clusters } from '../db/schema/index.js';
import { clusterHandlers } from './handlers.js';
import { clusterDescriptor } from './inventory.js';

export const clusterModule = defineDomain({ name: 'cluster', register });

function register(app: DomainContext): void {
  const { db } = app;
  app.addInventory(clusterDescriptor);
  app.addHandlers(clusterHandlers(app));
  app.cascade.register({
    kind: 'cluster',
    parents: {
      zone: async (zoneUuids) => (await db.select({ uuid: clusters.uuid }).from(clusters).where(inArray(clusters.zoneUuid, zoneUuids))).map((r) => r.uuid),
    },
    delete: async (uuids) => void (await db.delete(clusters).where(inArray(clusters.uuid, uuids))),
  });
}

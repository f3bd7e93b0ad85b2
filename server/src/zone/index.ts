// Zones: the top of the resource tree. Deleting one takes everything in it (clusters, networks, storage…) through
// the cascade, whose other nodes hang below `zone`.
import { inArray } from 'drizzle-orm';
import { defineDomain, type DomainContext } from '../core/domain.js';
import { zones } from '../db/schema/index.js';
import { zoneHandlers } from './handlers.js';
import { zoneDescriptor } from './inventory.js';

export const zoneModule = defineDomain({ name: 'zone', register });

function register(app: DomainContext): void {
  app.addInventory(zoneDescriptor);
  app.addHandlers(zoneHandlers(app));
  app.cascade.register({
    kind: 'zone',
    parents: {},
    delete: async (uuids) => void (await app.db.delete(zones).where(inArray(zones.uuid, uuids))),
  });
}

import { eq } from 'drizzle-orm';
import { changeStateHandler, deleteHandler, updateHandler } from '../core/crud.js';
import type { DomainContext } from '../core/domain.js';
import { notFound } from '../core/errors.js';
import { defineHandlers } from '../core/handlers.js';
import { newUuid } from '../core/ids.js';
import { clusters, zones } from '../db/schema/index.js';
import { clusterInventory } from './inventory.js';

export function clusterHandlers(app: DomainContext) {
  const { db } = app;
  const cluster = { table: clusters, entity: 'ClusterVO', inventory: clusterInventory };
  return defineHandlers({
    CreateCluster: {
      async check(msg) {
        const [z] = await db.select({ uuid: zones.uuid }).from(zones).where(eq(zones.uuid, msg.zoneUuid));
        if (!z) throw notFound('ZoneVO', msg.zoneUuid, 'zoneUuid');
      },
      async run(msg) {
        const [c] = await db
          .insert(clusters)
          .values({
            uuid: msg.resourceUuid ?? newUuid(),
            zoneUuid: msg.zoneUuid,
            name: msg.name,
            description: msg.description ?? null,
            hypervisorType: msg.hypervisorType,
            type: msg.type ?? 'zstack',
            architecture: msg.architecture ?? null,
          })
          .returning();
        return { inventory: clusterInventory(c) };
      },
    },
    UpdateCluster: updateHandler(app, { ...cluster, fields: ['name', 'description'] }),
    ChangeClusterState: changeStateHandler(app, cluster),
    DeleteCluster: deleteHandler(app, { node: 'cluster' }),
  });
}

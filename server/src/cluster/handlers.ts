import { eq } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import { notFound } from '../core/errors.js';
import { defineHandlers } from '../core/handlers.js';
import { newUuid } from '../core/ids.js';
import { clusters, zones } from '../db/schema/index.js';
import { clusterInventory } from './inventory.js';

export function clusterHandlers(app: DomainContext) {
  const { db } = app;
  const load = async (uuid: string) => {
    const [c] = await db.select().from(clusters).where(eq(clusters.uuid, uuid));
    if (!c) throw notFound('ClusterVO', uuid);
    return c;
  };
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
    UpdateCluster: {
      check: async (msg) => void (await load(msg.uuid)),
      async run(msg) {
        const set: Partial<typeof clusters.$inferInsert> = { lastOpDate: new Date() };
        if (msg.name !== undefined) set.name = msg.name;
        if (msg.description !== undefined) set.description = msg.description;
        const [c] = await db.update(clusters).set(set).where(eq(clusters.uuid, msg.uuid)).returning();
        if (!c) throw notFound('ClusterVO', msg.uuid);
        return { inventory: clusterInventory(c) };
      },
    },
    ChangeClusterState: {
      check: async (msg) => void (await load(msg.uuid)),
      async run(msg) {
        const state = msg.stateEvent === 'enable' ? 'Enabled' : 'Disabled';
        const [c] = await db.update(clusters).set({ state, lastOpDate: new Date() }).where(eq(clusters.uuid, msg.uuid)).returning();
        if (!c) throw notFound('ClusterVO', msg.uuid);
        return { inventory: clusterInventory(c) };
      },
    },
    DeleteCluster: {
      async run(msg) {
        await app.cascade.delete('cluster', [msg.uuid], msg.deleteMode ?? 'Permissive');
        return {};
      },
    },
  });
}

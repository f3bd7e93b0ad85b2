import { eq } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import { notFound } from '../core/errors.js';
import { defineHandlers } from '../core/handlers.js';
import { newUuid } from '../core/ids.js';
import { zones } from '../db/schema/index.js';
import { zoneInventory } from './inventory.js';

export function zoneHandlers(app: DomainContext) {
  const { db } = app;
  const load = async (uuid: string) => {
    const [z] = await db.select().from(zones).where(eq(zones.uuid, uuid));
    if (!z) throw notFound('ZoneVO', uuid);
    return z;
  };
  return defineHandlers({
    CreateZone: {
      async run(msg) {
        const [z] = await db
          .insert(zones)
          .values({ uuid: msg.resourceUuid ?? newUuid(), name: msg.name, description: msg.description ?? null, isDefault: msg.isDefault ?? false })
          .returning();
        return { inventory: zoneInventory(z) };
      },
    },
    UpdateZone: {
      check: async (msg) => void (await load(msg.uuid)),
      async run(msg) {
        const set: Partial<typeof zones.$inferInsert> = { lastOpDate: new Date() };
        if (msg.name !== undefined) set.name = msg.name;
        if (msg.description !== undefined) set.description = msg.description;
        const [z] = await db.update(zones).set(set).where(eq(zones.uuid, msg.uuid)).returning();
        if (!z) throw notFound('ZoneVO', msg.uuid);
        return { inventory: zoneInventory(z) };
      },
    },
    ChangeZoneState: {
      check: async (msg) => void (await load(msg.uuid)),
      async run(msg) {
        const state = msg.stateEvent === 'enable' ? 'Enabled' : 'Disabled';
        const [z] = await db.update(zones).set({ state, lastOpDate: new Date() }).where(eq(zones.uuid, msg.uuid)).returning();
        if (!z) throw notFound('ZoneVO', msg.uuid);
        return { inventory: zoneInventory(z) };
      },
    },
    DeleteZone: {
      async run(msg) {
        await app.cascade.delete('zone', [msg.uuid], msg.deleteMode ?? 'Permissive');
        return {};
      },
    },
  });
}

import type { DomainContext } from '../core/domain.js';
import { changeStateHandler, deleteHandler, updateHandler } from '../core/crud.js';
import { defineHandlers } from '../core/handlers.js';
import { newUuid } from '../core/ids.js';
import { zones } from '../db/schema/index.js';
import { zoneInventory } from './inventory.js';

export function zoneHandlers(app: DomainContext) {
  const { db } = app;
  const zone = { table: zones, entity: 'ZoneVO', inventory: zoneInventory };
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
    UpdateZone: updateHandler(app, { ...zone, fields: ['name', 'description'] }),
    ChangeZoneState: changeStateHandler(app, zone),
    DeleteZone: deleteHandler(app, { node: 'zone' }),
  });
}

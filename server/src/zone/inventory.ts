import { formatDate } from '../core/dates.js';
import { fieldsFromTable, type InventoryDescriptor } from '../core/query.js';
import { zones } from '../db/schema/index.js';

export type ZoneRow = typeof zones.$inferSelect;

export function zoneInventory(z: ZoneRow) {
  return {
    uuid: z.uuid,
    name: z.name,
    description: z.description ?? undefined,
    state: z.state as 'Enabled' | 'Disabled',
    type: z.type,
    isDefault: z.isDefault,
    createDate: formatDate(z.createDate)!,
    lastOpDate: formatDate(z.lastOpDate)!,
  };
}

export const zoneDescriptor: InventoryDescriptor<ZoneRow> = {
  name: 'ZoneInventory',
  // Zones are readable by every account (upstream's global readable resources); only admins change them.
  globalReadable: true,
  table: zones,
  fields: fieldsFromTable(zones),
  expand: {},
  defaultSort: 'createDate',
  toInventories: async (rows) => rows.map(zoneInventory),
};

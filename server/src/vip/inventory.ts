// Row → inventory of VIPs, shared by replies and QueryVip, and its query descriptor.
import { schemaExpands } from '../core/inventory-schema.js';
import type { Tx } from '../db/index.js';
import { vips } from '../db/schema/index.js';
import { formatDate } from '../core/dates.js';
import { fieldsFromTable, type InventoryDescriptor } from '../core/query.js';

export type VipRow = typeof vips.$inferSelect;

export const vipInventory = (r: VipRow) => ({
  uuid: r.uuid,
  name: r.name,
  ...(r.description !== null ? { description: r.description } : {}),
  l3NetworkUuid: r.l3NetworkUuid,
  ip: r.ip,
  state: r.state as 'Enabled' | 'Disabled',
  gateway: r.gateway,
  netmask: r.netmask,
  ...(r.serviceProvider ? { serviceProvider: r.serviceProvider } : {}),
  ...(r.peerL3NetworkUuid ? { peerL3NetworkUuid: r.peerL3NetworkUuid } : {}),
  ...(r.useFor ? { useFor: r.useFor } : {}),
  createDate: formatDate(r.createDate)!,
  lastOpDate: formatDate(r.lastOpDate)!,
});

export type VipInventory = ReturnType<typeof vipInventory>;

export const vipDescriptor: InventoryDescriptor<VipRow> = {
  name: 'VipInventory',
  table: vips,
  // ipRangeUuid and usedIpUuid are upstream's @APINoSee: not queryable either.
  fields: fieldsFromTable(vips, { exclude: ['ipRangeUuid', 'usedIpUuid'] }),
  expand: schemaExpands(vips),
  defaultSort: 'createDate',
  toInventories: async (rows: VipRow[], _db: Tx) => rows.map(vipInventory),
};

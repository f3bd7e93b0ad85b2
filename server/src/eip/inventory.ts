// Row → inventory of EIPs, shared by replies and QueryEip, and its query descriptor.
import { schemaExpands } from '../core/inventory-schema.js';
import { eips } from '../db/schema/index.js';
import { formatDate } from '../core/dates.js';
import { fieldsFromTable, type InventoryDescriptor } from '../core/query.js';

export type EipRow = typeof eips.$inferSelect;

export const eipInventory = (r: EipRow) => ({
  uuid: r.uuid,
  name: r.name,
  ...(r.description !== null ? { description: r.description } : {}),
  ...(r.vmNicUuid ? { vmNicUuid: r.vmNicUuid } : {}),
  vipUuid: r.vipUuid,
  state: r.state as 'Enabled' | 'Disabled',
  vipIp: r.vipIp,
  // A NIC deleted under the EIP detaches it (ON DELETE SET NULL): its old address is not shown.
  ...(r.vmNicUuid && r.guestIp ? { guestIp: r.guestIp } : {}),
  createDate: formatDate(r.createDate)!,
  lastOpDate: formatDate(r.lastOpDate)!,
});

export const eipDescriptor: InventoryDescriptor<EipRow> = {
  name: 'EipInventory',
  table: eips,
  fields: fieldsFromTable(eips),
  expand: schemaExpands(eips),
  defaultSort: 'createDate',
  toInventories: async (rows) => rows.map(eipInventory),
};

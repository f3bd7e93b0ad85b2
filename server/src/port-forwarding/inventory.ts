// Row → inventory of port forwarding rules, shared by replies, QueryPortForwardingRule and the List form.
import { schemaExpands } from '../core/inventory-schema.js';
import { portForwardingRules } from '../db/schema/index.js';
import { formatDate } from '../core/dates.js';
import { fieldsFromTable, type InventoryDescriptor } from '../core/query.js';

export type RuleRow = typeof portForwardingRules.$inferSelect;

export const ruleInventory = (r: RuleRow) => ({
  uuid: r.uuid,
  name: r.name,
  ...(r.description !== null ? { description: r.description } : {}),
  vipIp: r.vipIp,
  // A NIC deleted under the rule detaches it (ON DELETE SET NULL): its old address is not shown.
  ...(r.vmNicUuid && r.guestIp ? { guestIp: r.guestIp } : {}),
  vipUuid: r.vipUuid,
  vipPortStart: r.vipPortStart,
  vipPortEnd: r.vipPortEnd,
  privatePortStart: r.privatePortStart,
  privatePortEnd: r.privatePortEnd,
  ...(r.vmNicUuid ? { vmNicUuid: r.vmNicUuid } : {}),
  protocolType: r.protocolType as 'TCP' | 'UDP',
  state: r.state as 'Enabled' | 'Disabled',
  ...(r.allowedCidr ? { allowedCidr: r.allowedCidr } : {}),
  createDate: formatDate(r.createDate)!,
  lastOpDate: formatDate(r.lastOpDate)!,
});

export const ruleDescriptor: InventoryDescriptor<RuleRow> = {
  name: 'PortForwardingRuleInventory',
  table: portForwardingRules,
  fields: fieldsFromTable(portForwardingRules),
  expand: schemaExpands(portForwardingRules),
  defaultSort: 'createDate',
  toInventories: async (rows) => rows.map(ruleInventory),
};

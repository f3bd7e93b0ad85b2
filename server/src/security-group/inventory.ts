// Row → inventory mappings of security groups, shared by replies and queries, and their query descriptors.
import { schemaExpands, schemaLinks } from '../core/inventory-schema.js';
import { asc, inArray } from 'drizzle-orm';
import type { Tx } from '../db/index.js';
import { securityGroupL3Refs, securityGroupRules, securityGroups, vmNicSecurityGroupRefs } from '../db/schema/index.js';
import { formatDate } from '../core/dates.js';
import { fieldsFromTable, type InventoryDescriptor } from '../core/query.js';

export type SecurityGroupRow = typeof securityGroups.$inferSelect;
export type RuleRow = typeof securityGroupRules.$inferSelect;
type L3RefRow = typeof securityGroupL3Refs.$inferSelect;
type NicRefRow = typeof vmNicSecurityGroupRefs.$inferSelect;

const dates = (r: { createDate: Date; lastOpDate: Date }) => ({ createDate: formatDate(r.createDate)!, lastOpDate: formatDate(r.lastOpDate)! });

export const ruleInventory = (r: RuleRow) => ({
  uuid: r.uuid,
  securityGroupUuid: r.securityGroupUuid,
  type: r.type as 'Ingress' | 'Egress',
  startPort: r.startPort,
  endPort: r.endPort,
  protocol: r.protocol as 'TCP' | 'UDP' | 'ICMP',
  state: r.state as 'Enabled' | 'Disabled',
  allowedCidr: r.allowedCidr,
  ...dates(r),
});

export async function securityGroupInventories(rows: SecurityGroupRow[], db: Tx) {
  if (rows.length === 0) return [];
  const uuids = rows.map((r) => r.uuid);
  const [rules, l3s] = await Promise.all([
    db
      .select()
      .from(securityGroupRules)
      .where(inArray(securityGroupRules.securityGroupUuid, uuids))
      .orderBy(asc(securityGroupRules.createDate), asc(securityGroupRules.uuid)),
    db.select().from(securityGroupL3Refs).where(inArray(securityGroupL3Refs.securityGroupUuid, uuids)).orderBy(asc(securityGroupL3Refs.createDate)),
  ]);
  return rows.map((r) => ({
    uuid: r.uuid,
    name: r.name,
    ...(r.description !== null ? { description: r.description } : {}),
    state: r.state as 'Enabled' | 'Disabled',
    rules: rules.filter((x) => x.securityGroupUuid === r.uuid).map(ruleInventory),
    attachedL3NetworkUuids: l3s.filter((x) => x.securityGroupUuid === r.uuid).map((x) => x.l3NetworkUuid),
    ...dates(r),
  }));
}

export type SecurityGroupInventory = Awaited<ReturnType<typeof securityGroupInventories>>[number];

const securityGroupLinks = schemaLinks(securityGroups, vmNicSecurityGroupRefs, securityGroupL3Refs);

export const securityGroupDescriptor: InventoryDescriptor<SecurityGroupRow> = {
  name: 'SecurityGroupInventory',
  table: securityGroups,
  fields: fieldsFromTable(securityGroups),
  expand: {
    // One-to-many: 1.1's name, not the key's.
    rules: { inventory: 'SecurityGroupRuleInventory', localKey: 'uuid', remoteKey: 'securityGroupUuid' },
    ...securityGroupLinks.expand,
  },
  aliases: securityGroupLinks.aliases,
  defaultSort: 'createDate',
  toInventories: securityGroupInventories,
};

export const ruleDescriptor: InventoryDescriptor<RuleRow> = {
  name: 'SecurityGroupRuleInventory',
  // Seen with their group.
  ownerKey: 'securityGroupUuid',
  table: securityGroupRules,
  fields: fieldsFromTable(securityGroupRules),
  expand: schemaExpands(securityGroupRules),
  defaultSort: 'createDate',
  toInventories: async (rows) => rows.map(ruleInventory),
};

export const nicRefInventory = (r: NicRefRow) => ({
  vmNicUuid: r.vmNicUuid,
  securityGroupUuid: r.securityGroupUuid,
  vmInstanceUuid: r.vmInstanceUuid,
  ...dates(r),
});

export const nicRefDescriptor: InventoryDescriptor<NicRefRow> = {
  name: 'VmNicSecurityGroupRefInventory',
  ownerKey: 'securityGroupUuid',
  table: vmNicSecurityGroupRefs,
  fields: fieldsFromTable(vmNicSecurityGroupRefs),
  expand: schemaExpands(vmNicSecurityGroupRefs),
  defaultSort: 'createDate',
  toInventories: async (rows) => rows.map(nicRefInventory),
};

/** Not an API inventory: the join behind `QuerySecurityGroup q=l3Network.uuid=...`. */
export const l3RefDescriptor: InventoryDescriptor<L3RefRow> = {
  name: 'SecurityGroupL3NetworkRefInventory',
  ownerKey: 'securityGroupUuid',
  table: securityGroupL3Refs,
  fields: fieldsFromTable(securityGroupL3Refs),
  expand: schemaExpands(securityGroupL3Refs),
  toInventories: async (rows) => rows.map((r) => ({ securityGroupUuid: r.securityGroupUuid, l3NetworkUuid: r.l3NetworkUuid, ...dates(r) })),
};

export const securityGroupDescriptors = [securityGroupDescriptor, ruleDescriptor, nicRefDescriptor, l3RefDescriptor];

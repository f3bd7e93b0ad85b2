// Security groups (upstream's SecurityGroupVO, SecurityGroupRuleVO, SecurityGroupL3NetworkRefVO,
// VmNicSecurityGroupRefVO, SecurityGroupFailureHostVO). Memberships and attachments go with the L3 network, VM NIC
// or host they name (ON DELETE CASCADE), so every deletion path cleans them.
import { index, integer, pgTable, primaryKey, text } from 'drizzle-orm/pg-core';
import { dates } from './common.js';
import { hosts } from './compute.js';
import { l3Networks } from './network.js';
import { vmNics } from './vm.js';

export const securityGroups = pgTable('security_groups', {
  uuid: text('uuid').primaryKey(),
  name: text('name').notNull(),
  description: text('description'),
  /** Enabled | Disabled: a Disabled group's rules are not applied. */
  state: text('state').notNull().default('Enabled'),
  ...dates(),
});

export const securityGroupRules = pgTable(
  'security_group_rules',
  {
    uuid: text('uuid').primaryKey(),
    securityGroupUuid: text('security_group_uuid')
      .notNull()
      .references(() => securityGroups.uuid, { onDelete: 'cascade' }),
    /** Ingress | Egress */
    type: text('type').notNull(),
    /** TCP | UDP | ICMP */
    protocol: text('protocol').notNull(),
    startPort: integer('start_port').notNull(),
    endPort: integer('end_port').notNull(),
    allowedCidr: text('allowed_cidr').notNull(),
    state: text('state').notNull().default('Enabled'),
    ...dates(),
  },
  (t) => [index('security_group_rules_sg_idx').on(t.securityGroupUuid)],
);

export const securityGroupL3Refs = pgTable(
  'security_group_l3_refs',
  {
    securityGroupUuid: text('security_group_uuid')
      .notNull()
      .references(() => securityGroups.uuid, { onDelete: 'cascade' }),
    l3NetworkUuid: text('l3_network_uuid')
      .notNull()
      .references(() => l3Networks.uuid, { onDelete: 'cascade' }),
    ...dates(),
  },
  (t) => [primaryKey({ columns: [t.securityGroupUuid, t.l3NetworkUuid] }), index('security_group_l3_refs_l3_idx').on(t.l3NetworkUuid)],
);

export const vmNicSecurityGroupRefs = pgTable(
  'vm_nic_security_group_refs',
  {
    vmNicUuid: text('vm_nic_uuid')
      .notNull()
      .references(() => vmNics.uuid, { onDelete: 'cascade' }),
    securityGroupUuid: text('security_group_uuid')
      .notNull()
      .references(() => securityGroups.uuid, { onDelete: 'cascade' }),
    vmInstanceUuid: text('vm_instance_uuid').notNull(),
    ...dates(),
  },
  (t) => [
    primaryKey({ columns: [t.vmNicUuid, t.securityGroupUuid] }),
    index('vm_nic_security_group_refs_sg_idx').on(t.securityGroupUuid),
    // Every VM state change asks whether the VM has NICs in a group.
    index('vm_nic_security_group_refs_vm_idx').on(t.vmInstanceUuid),
  ],
);

/** Hosts whose rules failed to apply: refreshed whole by the retry worker and when they reconnect. */
export const securityGroupFailureHosts = pgTable('security_group_failure_hosts', {
  hostUuid: text('host_uuid')
    .primaryKey()
    .references(() => hosts.uuid, { onDelete: 'cascade' }),
  ...dates(),
});

// VIPs, EIPs and port forwarding rules (upstream VipVO, EipVO, PortForwardingRuleVO). A VIP holds a used IP of its
// L3 network (the NIC allocator's table); EIPs and rules hang on a VIP and, when attached, on a VM NIC. Deletions
// go through the cascade (vip/, eip/, port-forwarding/ remove what is applied on the virtual router first); the
// foreign keys' ON DELETE only keep rows consistent when a parent goes another way (a NIC row deleted: detached).
import { index, integer, pgTable, text, uniqueIndex } from 'drizzle-orm/pg-core';
import { dates } from './common.js';
import { ipRanges, l3Networks, usedIps } from './network.js';
import { vmNics } from './vm.js';

export const vips = pgTable(
  'vips',
  {
    uuid: text('uuid').primaryKey(),
    name: text('name').notNull(),
    description: text('description'),
    l3NetworkUuid: text('l3_network_uuid')
      .notNull()
      .references(() => l3Networks.uuid, { onDelete: 'cascade' }),
    ipRangeUuid: text('ip_range_uuid').references(() => ipRanges.uuid, { onDelete: 'set null' }),
    usedIpUuid: text('used_ip_uuid').references(() => usedIps.uuid, { onDelete: 'set null' }),
    ip: text('ip').notNull(),
    gateway: text('gateway').notNull(),
    netmask: text('netmask').notNull(),
    /** Enabled | Disabled */
    state: text('state').notNull().default('Enabled'),
    /** The provider applying the service using it (VirtualRouter), while used. */
    serviceProvider: text('service_provider'),
    /** The guest L3 network it serves, while used. */
    peerL3NetworkUuid: text('peer_l3_network_uuid').references(() => l3Networks.uuid, { onDelete: 'set null' }),
    /** Eip | PortForwarding | LoadBalancer: the one service using it. */
    useFor: text('use_for'),
    ...dates(),
  },
  (t) => [uniqueIndex('vips_l3_ip_idx').on(t.l3NetworkUuid, t.ip), index('vips_peer_l3_idx').on(t.peerL3NetworkUuid)],
);

export const eips = pgTable(
  'eips',
  {
    uuid: text('uuid').primaryKey(),
    name: text('name').notNull(),
    description: text('description'),
    vipUuid: text('vip_uuid')
      .notNull()
      .references(() => vips.uuid, { onDelete: 'cascade' }),
    vmNicUuid: text('vm_nic_uuid').references(() => vmNics.uuid, { onDelete: 'set null' }),
    vipIp: text('vip_ip').notNull(),
    guestIp: text('guest_ip'),
    /** Enabled | Disabled */
    state: text('state').notNull().default('Enabled'),
    ...dates(),
  },
  // One EIP per VIP (a VIP serves one service) and per NIC.
  (t) => [uniqueIndex('eips_vip_idx').on(t.vipUuid), uniqueIndex('eips_vm_nic_idx').on(t.vmNicUuid)],
);

export const portForwardingRules = pgTable(
  'port_forwarding_rules',
  {
    uuid: text('uuid').primaryKey(),
    name: text('name').notNull(),
    description: text('description'),
    vipUuid: text('vip_uuid')
      .notNull()
      .references(() => vips.uuid, { onDelete: 'cascade' }),
    vmNicUuid: text('vm_nic_uuid').references(() => vmNics.uuid, { onDelete: 'set null' }),
    vipIp: text('vip_ip').notNull(),
    guestIp: text('guest_ip'),
    vipPortStart: integer('vip_port_start').notNull(),
    vipPortEnd: integer('vip_port_end').notNull(),
    privatePortStart: integer('private_port_start').notNull(),
    privatePortEnd: integer('private_port_end').notNull(),
    /** TCP | UDP */
    protocolType: text('protocol_type').notNull(),
    allowedCidr: text('allowed_cidr'),
    /** Enabled | Disabled */
    state: text('state').notNull().default('Enabled'),
    ...dates(),
  },
  (t) => [index('port_forwarding_rules_vip_idx').on(t.vipUuid), index('port_forwarding_rules_vm_nic_idx').on(t.vmNicUuid)],
);

// L2/L3 networks, IP ranges and used IPs (UNIQUE(l3, ip): a duplicate insert means a concurrent allocation, so
// the allocator retries — no IP can be handed out twice), network service providers and their attachments.
import { bigint, boolean, index, integer, pgTable, primaryKey, text, uniqueIndex } from 'drizzle-orm/pg-core';
import { dates } from './common.js';
import { clusters } from './compute.js';
import { zones } from './zone.js';

const big = (name: string) => bigint(name, { mode: 'number' });

export const l2Networks = pgTable('l2_networks', {
  uuid: text('uuid').primaryKey(),
  name: text('name').notNull(),
  description: text('description'),
  zoneUuid: text('zone_uuid')
    .notNull()
    .references(() => zones.uuid),
  physicalInterface: text('physical_interface').notNull(),
  /** L2NoVlanNetwork | L2VlanNetwork */
  type: text('type').notNull(),
  vSwitchType: text('v_switch_type').notNull().default('LinuxBridge'),
  vlan: integer('vlan'),
  virtualNetworkId: integer('virtual_network_id').notNull().default(0),
  isolated: boolean('isolated').notNull().default(false),
  pvlan: text('pvlan'),
  ...dates(),
});

export const l2ClusterRefs = pgTable(
  'l2_network_cluster_refs',
  {
    l2NetworkUuid: text('l2_network_uuid')
      .notNull()
      .references(() => l2Networks.uuid, { onDelete: 'cascade' }),
    clusterUuid: text('cluster_uuid')
      .notNull()
      .references(() => clusters.uuid, { onDelete: 'cascade' }),
    ...dates(),
  },
  (t) => [primaryKey({ columns: [t.l2NetworkUuid, t.clusterUuid] })],
);

export const l3Networks = pgTable('l3_networks', {
  uuid: text('uuid').primaryKey(),
  name: text('name').notNull(),
  description: text('description'),
  type: text('type').notNull().default('L3BasicNetwork'),
  zoneUuid: text('zone_uuid')
    .notNull()
    .references(() => zones.uuid),
  l2NetworkUuid: text('l2_network_uuid')
    .notNull()
    .references(() => l2Networks.uuid),
  state: text('state').notNull().default('Enabled'),
  dnsDomain: text('dns_domain'),
  system: boolean('system').notNull().default(false),
  category: text('category').notNull().default('Private'),
  ipVersion: integer('ip_version').notNull().default(4),
  enableIPAM: boolean('enable_ipam').notNull().default(true),
  ...dates(),
});

export const l3Dns = pgTable(
  'l3_network_dns',
  {
    l3NetworkUuid: text('l3_network_uuid')
      .notNull()
      .references(() => l3Networks.uuid, { onDelete: 'cascade' }),
    dns: text('dns').notNull(),
    /** Keeps the order DNS servers were added in. */
    position: integer('position').notNull(),
    ...dates(),
  },
  (t) => [primaryKey({ columns: [t.l3NetworkUuid, t.dns] })],
);

export const ipRanges = pgTable(
  'ip_ranges',
  {
    uuid: text('uuid').primaryKey(),
    l3NetworkUuid: text('l3_network_uuid')
      .notNull()
      .references(() => l3Networks.uuid),
    name: text('name').notNull(),
    description: text('description'),
    startIp: text('start_ip').notNull(),
    endIp: text('end_ip').notNull(),
    netmask: text('netmask').notNull(),
    gateway: text('gateway').notNull(),
    networkCidr: text('network_cidr').notNull(),
    ipVersion: integer('ip_version').notNull().default(4),
    ipRangeType: text('ip_range_type').notNull().default('Normal'),
    startInt: big('start_int').notNull(),
    endInt: big('end_int').notNull(),
    ...dates(),
  },
  (t) => [index('ip_ranges_l3_idx').on(t.l3NetworkUuid)],
);

export const usedIps = pgTable(
  'used_ips',
  {
    uuid: text('uuid').primaryKey(),
    ipRangeUuid: text('ip_range_uuid')
      .notNull()
      .references(() => ipRanges.uuid),
    l3NetworkUuid: text('l3_network_uuid')
      .notNull()
      .references(() => l3Networks.uuid),
    ip: text('ip').notNull(),
    ipInLong: big('ip_in_long').notNull(),
    netmask: text('netmask').notNull(),
    gateway: text('gateway').notNull(),
    ipVersion: integer('ip_version').notNull().default(4),
    /** UserVm | ApplianceVm | DHCP … */
    usedFor: text('used_for').notNull(),
    vmNicUuid: text('vm_nic_uuid'),
    ...dates(),
  },
  (t) => [uniqueIndex('used_ips_l3_ip_idx').on(t.l3NetworkUuid, t.ipInLong), index('used_ips_range_idx').on(t.ipRangeUuid)],
);

export const networkServiceProviders = pgTable('network_service_providers', {
  uuid: text('uuid').primaryKey(),
  name: text('name').notNull(),
  description: text('description'),
  type: text('type').notNull().unique(),
  ...dates(),
});

export const networkServiceTypes = pgTable(
  'network_service_types',
  {
    providerUuid: text('provider_uuid')
      .notNull()
      .references(() => networkServiceProviders.uuid, { onDelete: 'cascade' }),
    serviceType: text('service_type').notNull(),
  },
  (t) => [primaryKey({ columns: [t.providerUuid, t.serviceType] })],
);

export const networkServiceProviderL2Refs = pgTable(
  'network_service_provider_l2_refs',
  {
    providerUuid: text('provider_uuid')
      .notNull()
      .references(() => networkServiceProviders.uuid, { onDelete: 'cascade' }),
    l2NetworkUuid: text('l2_network_uuid')
      .notNull()
      .references(() => l2Networks.uuid, { onDelete: 'cascade' }),
    ...dates(),
  },
  (t) => [primaryKey({ columns: [t.providerUuid, t.l2NetworkUuid] })],
);

export const networkServiceL3Refs = pgTable(
  'network_service_l3_refs',
  {
    l3NetworkUuid: text('l3_network_uuid')
      .notNull()
      .references(() => l3Networks.uuid, { onDelete: 'cascade' }),
    networkServiceProviderUuid: text('provider_uuid')
      .notNull()
      .references(() => networkServiceProviders.uuid, { onDelete: 'cascade' }),
    networkServiceType: text('service_type').notNull(),
    ...dates(),
  },
  // One provider per service type per L3 (zstack-api.md §5.1 rule 3), enforced by the database too.
  (t) => [primaryKey({ columns: [t.l3NetworkUuid, t.networkServiceType] })],
);

// VMs (user VMs and appliance VMs such as virtual routers share the table), their NICs and volumes.
import { bigint, boolean, index, integer, pgTable, serial, text, uniqueIndex } from 'drizzle-orm/pg-core';
import { dates, ts } from './common.js';

const big = (name: string) => bigint(name, { mode: 'number' });

export const vmInstances = pgTable(
  'vm_instances',
  {
    uuid: text('uuid').primaryKey(),
    internalId: serial('internal_id'),
    name: text('name').notNull(),
    description: text('description'),
    zoneUuid: text('zone_uuid'),
    clusterUuid: text('cluster_uuid'),
    hostUuid: text('host_uuid'),
    lastHostUuid: text('last_host_uuid'),
    imageUuid: text('image_uuid'),
    instanceOfferingUuid: text('instance_offering_uuid'),
    rootVolumeUuid: text('root_volume_uuid'),
    platform: text('platform'),
    architecture: text('architecture'),
    guestOsType: text('guest_os_type'),
    defaultL3NetworkUuid: text('default_l3_network_uuid'),
    /** UserVm | ApplianceVm */
    type: text('type').notNull().default('UserVm'),
    hypervisorType: text('hypervisor_type'),
    memorySize: big('memory_size').notNull(),
    reservedMemorySize: big('reserved_memory_size').notNull().default(0),
    cpuNum: integer('cpu_num').notNull(),
    cpuSpeed: big('cpu_speed').notNull().default(0),
    allocatorStrategy: text('allocator_strategy'),
    state: text('state').notNull(),
    /** Appliance VMs only. */
    applianceVmType: text('appliance_vm_type'),
    managementNetworkUuid: text('management_network_uuid'),
    publicNetworkUuid: text('public_network_uuid'),
    defaultRouteL3NetworkUuid: text('default_route_l3_network_uuid'),
    status: text('status'),
    agentPort: integer('agent_port'),
    haStatus: text('ha_status'),
    ...dates(),
  },
  (t) => [
    // hostUuid lookups use vm_instances_host_created_idx (its leading column): no index of their own to maintain.
    index('vm_instances_state_idx').on(t.state),
    index('vm_instances_type_idx').on(t.type),
    // The query engine's default order (createDate, uuid): pages are read from the index, not sorted.
    index('vm_instances_created_idx').on(t.createDate, t.uuid),
    index('vm_instances_host_created_idx').on(t.hostUuid, t.createDate, t.uuid),
  ],
);

export const vmNics = pgTable(
  'vm_nics',
  {
    uuid: text('uuid').primaryKey(),
    vmInstanceUuid: text('vm_instance_uuid')
      .notNull()
      .references(() => vmInstances.uuid, { onDelete: 'cascade' }),
    l3NetworkUuid: text('l3_network_uuid').notNull(),
    usedIpUuid: text('used_ip_uuid').unique(),
    ip: text('ip'),
    mac: text('mac').notNull().unique(),
    netmask: text('netmask'),
    gateway: text('gateway'),
    metaData: text('meta_data'),
    deviceId: integer('device_id').notNull(),
    internalName: text('internal_name'),
    driverType: text('driver_type'),
    type: text('type').notNull().default('VNIC'),
    state: text('state').notNull().default('enable'),
    hypervisorType: text('hypervisor_type'),
    ...dates(),
  },
  (t) => [index('vm_nics_vm_idx').on(t.vmInstanceUuid), index('vm_nics_l3_idx').on(t.l3NetworkUuid), index('vm_nics_ip_idx').on(t.ip)],
);

export const volumes = pgTable(
  'volumes',
  {
    uuid: text('uuid').primaryKey(),
    name: text('name').notNull(),
    description: text('description'),
    primaryStorageUuid: text('primary_storage_uuid'),
    vmInstanceUuid: text('vm_instance_uuid'),
    diskOfferingUuid: text('disk_offering_uuid'),
    rootImageUuid: text('root_image_uuid'),
    installPath: text('install_path'),
    /** Root | Data */
    type: text('type').notNull(),
    format: text('format').notNull().default('qcow2'),
    size: big('size').notNull(),
    actualSize: big('actual_size').notNull().default(0),
    deviceId: integer('device_id'),
    state: text('state').notNull().default('Enabled'),
    status: text('status').notNull(),
    isShareable: boolean('is_shareable').notNull().default(false),
    lastVmInstanceUuid: text('last_vm_instance_uuid'),
    lastDetachDate: ts('last_detach_date'),
    lastAttachDate: ts('last_attach_date'),
    ...dates(),
  },
  (t) => [
    // vmInstanceUuid lookups use volumes_vm_device_idx (its leading column).
    index('volumes_ps_idx').on(t.primaryStorageUuid),
    uniqueIndex('volumes_vm_device_idx').on(t.vmInstanceUuid, t.deviceId),
    index('volumes_created_idx').on(t.createDate, t.uuid),
  ],
);

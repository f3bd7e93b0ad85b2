// Clusters, hosts (capacity lives on the host row: reservations are single conditional UPDATEs, so capacity can
// never go negative or be double-booked), the agent deploy logs, offerings.
import { sql } from 'drizzle-orm';
import { bigint, bigserial, boolean, index, integer, pgTable, text, uniqueIndex } from 'drizzle-orm/pg-core';
import { dates, ts } from './common.js';
import { zones } from './zone.js';

const big = (name: string) => bigint(name, { mode: 'number' });

export const clusters = pgTable('clusters', {
  uuid: text('uuid').primaryKey(),
  zoneUuid: text('zone_uuid')
    .notNull()
    .references(() => zones.uuid),
  name: text('name').notNull(),
  description: text('description'),
  state: text('state').notNull().default('Enabled'),
  hypervisorType: text('hypervisor_type').notNull(),
  type: text('type').notNull().default('zstack'),
  architecture: text('architecture'),
  ...dates(),
});

export const hosts = pgTable(
  'hosts',
  {
    uuid: text('uuid').primaryKey(),
    zoneUuid: text('zone_uuid')
      .notNull()
      .references(() => zones.uuid),
    clusterUuid: text('cluster_uuid')
      .notNull()
      .references(() => clusters.uuid),
    name: text('name').notNull(),
    description: text('description'),
    managementIp: text('management_ip').notNull(),
    hypervisorType: text('hypervisor_type').notNull(),
    state: text('state').notNull().default('Enabled'),
    status: text('status').notNull().default('Connecting'),
    architecture: text('architecture'),
    /** Base URL of the agent serving this host (the simulator's for simulated hosts). */
    agentUrl: text('agent_url'),
    /** KVM hosts: SSH credentials (encrypted at rest), recorded host key, OS facts. */
    username: text('username'),
    sshPort: integer('ssh_port'),
    credential: text('credential'),
    hostKey: text('host_key'),
    osDistribution: text('os_distribution'),
    osRelease: text('os_release'),
    osVersion: text('os_version'),
    cpuNum: integer('cpu_num').notNull().default(0),
    cpuSockets: integer('cpu_sockets').notNull().default(1),
    totalCpuCapacity: big('total_cpu_capacity').notNull().default(0),
    availableCpuCapacity: big('available_cpu_capacity').notNull().default(0),
    totalMemoryCapacity: big('total_memory_capacity').notNull().default(0),
    availableMemoryCapacity: big('available_memory_capacity').notNull().default(0),
    /**
     * VMs holding capacity on the host, including those being placed right now: +1 with every CPU/memory
     * reservation, −1 with every release (host service). Orders LeastVmPreferred without counting VM rows.
     */
    reservedVmCount: integer('reserved_vm_count').notNull().default(0),
    ...dates(),
  },
  (t) => [
    index('hosts_cluster_idx').on(t.clusterUuid),
    index('hosts_mgmt_ip_idx').on(t.managementIp),
    index('hosts_reserved_vm_count_idx').on(t.reservedVmCount),
  ],
);

/**
 * What the SSH deployer did, one row per task line (`start`, then `done|skip|fail`), for KVM hosts and SFTP backup
 * storage. No foreign key: the logs of a failed AddKVMHost outlive the host row it rolled back, so the failure
 * can still be read; deleting the host or backup storage deletes its logs.
 */
export const hostDeployLogs = pgTable(
  'host_deploy_logs',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    /** The host (HostVO) or backup storage (BackupStorageVO) the agent was deployed for. */
    resourceUuid: text('resource_uuid').notNull(),
    resourceType: text('resource_type').notNull(),
    /** One deploy run (AddKVMHost, ReconnectHost, AddSftpBackupStorage): its lines share this uuid. */
    deployUuid: text('deploy_uuid').notNull(),
    agentKind: text('agent_kind').notNull(),
    /** The address deployed to (managementIp or backup storage hostname). */
    host: text('host').notNull(),
    task: text('task').notNull(),
    status: text('status').notNull(),
    level: text('level').notNull(),
    details: text('details').notNull(),
    durationMs: integer('duration_ms').notNull(),
    /** When the line was logged on the deployer's clock (deploy start + the durations before it). */
    createDate: ts('create_date').notNull().defaultNow(),
  },
  (t) => [index('host_deploy_logs_resource_idx').on(t.resourceUuid, t.id), index('host_deploy_logs_deploy_idx').on(t.deployUuid)],
);

export const instanceOfferings = pgTable(
  'instance_offerings',
  {
    uuid: text('uuid').primaryKey(),
    name: text('name').notNull(),
    description: text('description'),
    cpuNum: integer('cpu_num').notNull(),
    cpuSpeed: integer('cpu_speed').notNull().default(0),
    memorySize: big('memory_size').notNull(),
    reservedMemorySize: big('reserved_memory_size').notNull().default(0),
    /** UserVm | VirtualRouter */
    type: text('type').notNull().default('UserVm'),
    allocatorStrategy: text('allocator_strategy'),
    sortKey: integer('sort_key').notNull().default(0),
    state: text('state').notNull().default('Enabled'),
    /** Virtual router offerings only. */
    zoneUuid: text('zone_uuid'),
    managementNetworkUuid: text('management_network_uuid'),
    publicNetworkUuid: text('public_network_uuid'),
    imageUuid: text('image_uuid'),
    isDefault: boolean('is_default'),
    ...dates(),
  },
  (t) => [
    // One default virtual router offering per zone, as a constraint (concurrent creations cannot leave two).
    uniqueIndex('instance_offerings_default_vr_idx')
      .on(t.zoneUuid)
      .where(sql`${t.isDefault} AND ${t.type} = 'VirtualRouter'`),
  ],
);

export const diskOfferings = pgTable('disk_offerings', {
  uuid: text('uuid').primaryKey(),
  name: text('name').notNull(),
  description: text('description'),
  diskSize: big('disk_size').notNull(),
  sortKey: integer('sort_key').notNull().default(0),
  state: text('state').notNull().default('Enabled'),
  type: text('type').notNull().default('zstack'),
  allocatorStrategy: text('allocator_strategy'),
  ...dates(),
});

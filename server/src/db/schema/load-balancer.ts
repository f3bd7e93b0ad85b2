// Load balancers (upstream LoadBalancerVO, LoadBalancerListenerVO, LoadBalancerListenerVmNicRefVO and the virtual
// router's VirtualRouterLoadBalancerRefVO as two columns). A load balancer stands on one VIP; its listeners and
// their backend NIC refs go with it, and a ref goes with its VM NIC (ON DELETE CASCADE). Deletions that must reach
// the router go through the cascade (load-balancer/): these constraints only keep rows consistent otherwise.
import { bigserial, index, integer, pgTable, text, uniqueIndex } from 'drizzle-orm/pg-core';
import { dates } from './common.js';
import { vips } from './vip-eip-pf.js';
import { vmInstances, vmNics } from './vm.js';

export const loadBalancers = pgTable(
  'load_balancers',
  {
    uuid: text('uuid').primaryKey(),
    name: text('name').notNull(),
    description: text('description'),
    /** Enabled | Disabled (1.1 has no API changing it). */
    state: text('state').notNull().default('Enabled'),
    vipUuid: text('vip_uuid')
      .notNull()
      .references(() => vips.uuid, { onDelete: 'cascade' }),
    /** The provider applying it (VirtualRouter), set when its first backend NIC is added. */
    providerType: text('provider_type'),
    /** The virtual router it is applied on (upstream VirtualRouterLoadBalancerRefVO). */
    virtualRouterVmUuid: text('virtual_router_vm_uuid').references(() => vmInstances.uuid, { onDelete: 'set null' }),
    ...dates(),
  },
  // A VIP serves one service: one load balancer per VIP.
  (t) => [uniqueIndex('load_balancers_vip_idx').on(t.vipUuid), index('load_balancers_vr_idx').on(t.virtualRouterVmUuid)],
);

export const loadBalancerListeners = pgTable(
  'load_balancer_listeners',
  {
    uuid: text('uuid').primaryKey(),
    loadBalancerUuid: text('load_balancer_uuid')
      .notNull()
      .references(() => loadBalancers.uuid, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    description: text('description'),
    instancePort: integer('instance_port').notNull(),
    loadBalancerPort: integer('load_balancer_port').notNull(),
    /** tcp | http */
    protocol: text('protocol').notNull(),
    ...dates(),
  },
  // Upstream's interceptor: one listener per load balancer port and per instance port of a load balancer.
  (t) => [
    uniqueIndex('load_balancer_listeners_lb_port_idx').on(t.loadBalancerUuid, t.loadBalancerPort),
    uniqueIndex('load_balancer_listeners_instance_port_idx').on(t.loadBalancerUuid, t.instancePort),
  ],
);

export const loadBalancerListenerVmNicRefs = pgTable(
  'load_balancer_listener_vm_nic_refs',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    listenerUuid: text('listener_uuid')
      .notNull()
      .references(() => loadBalancerListeners.uuid, { onDelete: 'cascade' }),
    vmNicUuid: text('vm_nic_uuid')
      .notNull()
      .references(() => vmNics.uuid, { onDelete: 'cascade' }),
    /** Pending (being applied) | Active | Inactive (its VM is stopped). */
    status: text('status').notNull().default('Pending'),
    ...dates(),
  },
  (t) => [uniqueIndex('load_balancer_nic_refs_listener_nic_idx').on(t.listenerUuid, t.vmNicUuid), index('load_balancer_nic_refs_nic_idx').on(t.vmNicUuid)],
);

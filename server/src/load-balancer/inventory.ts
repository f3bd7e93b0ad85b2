// Row → inventory of load balancers, listeners and backend NIC refs (shared by replies and queries), and their query
// descriptors.
import { asc, inArray } from 'drizzle-orm';
import type { Tx } from '../db/index.js';
import { schemaExpands, schemaLinks } from '../core/inventory-schema.js';
import { loadBalancerListeners, loadBalancerListenerVmNicRefs, loadBalancers } from '../db/schema/index.js';
import { formatDate } from '../core/dates.js';
import { fieldsFromTable, type InventoryDescriptor } from '../core/query.js';

export type LoadBalancerRow = typeof loadBalancers.$inferSelect;
export type ListenerRow = typeof loadBalancerListeners.$inferSelect;
export type NicRefRow = typeof loadBalancerListenerVmNicRefs.$inferSelect;

const dates = (r: { createDate: Date; lastOpDate: Date }) => ({ createDate: formatDate(r.createDate)!, lastOpDate: formatDate(r.lastOpDate)! });

export const nicRefInventory = (r: NicRefRow) => ({
  id: r.id,
  listenerUuid: r.listenerUuid,
  vmNicUuid: r.vmNicUuid,
  status: r.status as 'Pending' | 'Active' | 'Inactive',
  ...dates(r),
});

export async function listenerInventories(rows: ListenerRow[], db: Tx) {
  if (!rows.length) return [];
  const refs = await db
    .select()
    .from(loadBalancerListenerVmNicRefs)
    .where(
      inArray(
        loadBalancerListenerVmNicRefs.listenerUuid,
        rows.map((r) => r.uuid),
      ),
    )
    .orderBy(asc(loadBalancerListenerVmNicRefs.id));
  return rows.map((r) => ({
    uuid: r.uuid,
    name: r.name,
    ...(r.description !== null ? { description: r.description } : {}),
    loadBalancerUuid: r.loadBalancerUuid,
    instancePort: r.instancePort,
    loadBalancerPort: r.loadBalancerPort,
    protocol: r.protocol as 'tcp' | 'http',
    vmNicRefs: refs.filter((x) => x.listenerUuid === r.uuid).map(nicRefInventory),
    ...dates(r),
  }));
}

export type ListenerInventory = Awaited<ReturnType<typeof listenerInventories>>[number];

export async function loadBalancerInventories(rows: LoadBalancerRow[], db: Tx) {
  if (!rows.length) return [];
  const listeners = await db
    .select()
    .from(loadBalancerListeners)
    .where(
      inArray(
        loadBalancerListeners.loadBalancerUuid,
        rows.map((r) => r.uuid),
      ),
    )
    .orderBy(asc(loadBalancerListeners.createDate), asc(loadBalancerListeners.uuid));
  const invs = await listenerInventories(listeners, db);
  return rows.map((r) => ({
    uuid: r.uuid,
    name: r.name,
    ...(r.description !== null ? { description: r.description } : {}),
    state: r.state as 'Enabled' | 'Disabled',
    vipUuid: r.vipUuid,
    listeners: invs.filter((l) => l.loadBalancerUuid === r.uuid),
    ...dates(r),
  }));
}

export type LoadBalancerInventory = Awaited<ReturnType<typeof loadBalancerInventories>>[number];

export const loadBalancerDescriptor: InventoryDescriptor<LoadBalancerRow> = {
  name: 'LoadBalancerInventory',
  table: loadBalancers,
  // Where it is applied is the router's business (upstream keeps it in VirtualRouterLoadBalancerRefVO).
  fields: fieldsFromTable(loadBalancers, { exclude: ['providerType', 'virtualRouterVmUuid'] }),
  expand: {
    // One-to-many: the API's name, not the key's.
    listeners: { inventory: 'LoadBalancerListenerInventory', localKey: 'uuid', remoteKey: 'loadBalancerUuid' },
    // vip; virtualRouterVmUuid derives nothing (vm_instances is several inventories' table).
    ...schemaExpands(loadBalancers),
  },
  defaultSort: 'createDate',
  toInventories: loadBalancerInventories,
};

const listenerLinks = schemaLinks(loadBalancerListeners, loadBalancerListenerVmNicRefs);

export const listenerDescriptor: InventoryDescriptor<ListenerRow> = {
  name: 'LoadBalancerListenerInventory',
  table: loadBalancerListeners,
  fields: fieldsFromTable(loadBalancerListeners),
  expand: {
    ...schemaExpands(loadBalancerListeners),
    ...listenerLinks.expand,
    // The same link by the inventory's own field name (not derived: one link, one derived name).
    vmNicRefs: { inventory: 'LoadBalancerListenerVmNicRefInventory', localKey: 'uuid', remoteKey: 'listenerUuid' },
  },
  aliases: listenerLinks.aliases,
  defaultSort: 'createDate',
  toInventories: listenerInventories,
};

/** Not queried by an API of its own: the join behind `QueryLoadBalancerListener q=vmNic.ip=...`. */
export const nicRefDescriptor: InventoryDescriptor<NicRefRow> = {
  name: 'LoadBalancerListenerVmNicRefInventory',
  ownerKey: 'listenerUuid',
  table: loadBalancerListenerVmNicRefs,
  fields: fieldsFromTable(loadBalancerListenerVmNicRefs),
  expand: schemaExpands(loadBalancerListenerVmNicRefs),
  toInventories: async (rows) => rows.map(nicRefInventory),
};

export const loadBalancerDescriptors = [loadBalancerDescriptor, listenerDescriptor, nicRefDescriptor];

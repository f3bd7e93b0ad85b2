// GetCpuMemoryCapacity: sums the capacity of the usable hosts (Enabled and Connected, as upstream counts) in the
// given hosts, clusters or zones (the most specific list wins), broken down per resource of that kind.
import { and, eq, inArray, type SQL } from 'drizzle-orm';
import type { Message } from '../core/handlers.js';
import type { Db } from '../db/index.js';
import { hosts } from '../db/schema/index.js';

interface Totals {
  totalCpu: number;
  availableCpu: number;
  totalMemory: number;
  availableMemory: number;
  managedCpuNum: number;
}

const zero = (): Totals => ({ totalCpu: 0, availableCpu: 0, totalMemory: 0, availableMemory: 0, managedCpuNum: 0 });

export async function cpuMemoryCapacity(db: Db, msg: Message<'GetCpuMemoryCapacity'>) {
  const conditions: SQL[] = [eq(hosts.state, 'Enabled'), eq(hosts.status, 'Connected')];
  if (msg.hypervisorType) conditions.push(eq(hosts.hypervisorType, msg.hypervisorType));
  let groupBy: 'uuid' | 'clusterUuid' | 'zoneUuid' = 'zoneUuid';
  let resourceType = 'ZoneVO';
  let resources: string[] | undefined;
  if (msg.hostUuids?.length) [groupBy, resourceType, resources] = ['uuid', 'HostVO', msg.hostUuids];
  else if (msg.clusterUuids?.length) [groupBy, resourceType, resources] = ['clusterUuid', 'ClusterVO', msg.clusterUuids];
  else if (msg.zoneUuids?.length) resources = msg.zoneUuids;
  if (resources) conditions.push(inArray(hosts[groupBy], resources));

  const rows = await db
    .select()
    .from(hosts)
    .where(and(...conditions));
  const total = zero();
  const per = new Map<string, Totals>((resources ?? []).map((uuid) => [uuid, zero()]));
  for (const h of rows) {
    const key = h[groupBy];
    const bucket = per.get(key) ?? per.set(key, zero()).get(key)!;
    for (const t of [total, bucket]) {
      t.totalCpu += h.totalCpuCapacity;
      t.availableCpu += Math.max(0, h.availableCpuCapacity);
      t.totalMemory += h.totalMemoryCapacity;
      t.availableMemory += Math.max(0, h.availableMemoryCapacity);
      t.managedCpuNum += h.cpuNum;
    }
  }
  return {
    ...total,
    capacityData: [...per.entries()].map(([resourceUuid, t]) => ({ resourceUuid, ...t })),
    resourceType,
  };
}

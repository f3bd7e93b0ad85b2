// Host allocation (zstack-internals.md §5.1): narrow the hosts to those that can run the VM, order them by the
// strategy, then reserve capacity on the first that still has it (a conditional UPDATE in the host service, so
// concurrent allocations never overbook). When nothing is left, the error says why each host was dropped.
import { and, asc, eq, gte, inArray, sql, type SQL } from 'drizzle-orm';
import type { DomainContext } from '../../core/domain.js';
import type { Tx } from '../../db/index.js';
import { immediate, type Bind } from '../../db/perf/template.js';
import { err } from '../../core/errors.js';
import { reservation } from '../../host/index.js';
import type { NicRow, VmRow, VolumeRow } from '../inventory.js';
import {
  backupStorageZoneRefs,
  clusters,
  hosts,
  imageBackupStorageRefs,
  l2ClusterRefs,
  l3Networks,
  primaryStorage,
  primaryStorageClusterRefs,
  zones,
} from '../../db/schema/index.js';

export type HostRow = typeof hosts.$inferSelect;

export const HOST_ALLOCATOR_STRATEGIES = ['DefaultHostAllocatorStrategy', 'LeastVmPreferredHostAllocatorStrategy'] as const;
export const DEFAULT_ALLOCATOR_STRATEGY = 'LeastVmPreferredHostAllocatorStrategy';

export interface HostRequirement {
  /** For messages. */
  vmUuid: string;
  cpuNum: number;
  memorySize: number;
  l3NetworkUuids: string[];
  /** The image the root volume is (or will be) made from: its backup storage must serve the host's zone. */
  imageUuid?: string;
  zoneUuid?: string;
  clusterUuid?: string;
  hostUuid?: string;
  /** Primary storage holding the VM's existing volumes: the host's cluster must have them attached. */
  primaryStorageUuids: string[];
  /** Bytes of volumes still to be created: some primary storage of the host's cluster must have them free. */
  newVolumeBytes: number;
  avoidHostUuids?: string[];
  /** Tried first when it qualifies (a stopped VM goes back where it was). */
  preferredHostUuid?: string;
  strategy?: string | null;
}

/**
 * Picks a host and reserves the VM's CPU and memory on it; HOST_ALLOCATION.1001 when none can take it. With `tx`,
 * the reservation is part of the caller's transaction (the host row stays locked until it ends).
 */
export async function allocateHost(app: DomainContext, req: HostRequirement, tx: Tx = app.db): Promise<HostRow> {
  // Fast path: one statement applies every filter below in SQL, takes the first host in strategy order that no
  // other transaction is reserving on right now (SKIP LOCKED: concurrent creations spread over hosts instead of
  // queueing on one row) and reserves on it. When none qualifies, the full pass below decides and explains why.
  const [fast] = await reserveHostQuery(tx, req);
  if (fast) return fast;
  const { candidates, dropped } = await candidatesFor(app, req, tx);
  const ordered = order(candidates, req);
  for (const host of ordered) {
    if (await app.use('hosts').reserveCapacity(tx, host.uuid, req.cpuNum, req.memorySize)) return host;
    dropped.push(`host[uuid:${host.uuid}] ran out of capacity while reserving`);
  }
  throw noHost(req, dropped);
}

/**
 * The same filters as candidatesFor + order, as one UPDATE … WHERE uuid IN (SELECT … LIMIT 1 FOR UPDATE SKIP
 * LOCKED) … RETURNING: host/cluster/zone state, host Connected, scope, avoided hosts, L2 attachment of every
 * requested L3, usable primary storage (the VM's existing ones, and room for new volumes), the image's zones and
 * free CPU/memory; ordered preferred host first, then fewest VMs (LeastVmPreferred: the host's maintained count of
 * reservations, so VMs still being placed count too), or random (Default). The UPDATE checks the capacity again on the locked row, so it never overbooks.
 */
export function reserveHostQuery(tx: Tx, req: HostRequirement, bind: Bind = immediate) {
  return bindHostReservation(req, bind)(tx);
}

/**
 * reserveHostQuery in two steps (db/perf/template.ts `Deferred`): every value is bound now, the statement is built
 * by the function returned, only when a template has no text for this shape yet.
 */
export function bindHostReservation(req: HostRequirement, bind: Bind) {
  const cpuNum = bind('cpuNum', req.cpuNum);
  const memorySize = bind('memorySize', req.memorySize);
  const l3NetworkUuids = req.l3NetworkUuids.length ? bind.array('l3NetworkUuids', req.l3NetworkUuids) : undefined;
  const primaryStorageUuids = [...new Set(req.primaryStorageUuids)].map((uuid, i) => bind(`primaryStorageUuid.${i}`, uuid));
  const newVolumeBytes = req.newVolumeBytes > 0 ? bind('newVolumeBytes', req.newVolumeBytes) : undefined;
  const imageUuid = req.imageUuid ? bind('imageUuid', req.imageUuid) : undefined;
  const zoneUuid = req.zoneUuid ? bind('zoneUuid', req.zoneUuid) : undefined;
  const clusterUuid = req.clusterUuid ? bind('clusterUuid', req.clusterUuid) : undefined;
  const hostUuid = req.hostUuid ? bind('hostUuid', req.hostUuid) : undefined;
  const avoidHostUuids = req.avoidHostUuids?.length ? bind.array('avoidHostUuids', req.avoidHostUuids) : undefined;
  const preferredHostUuid = req.preferredHostUuid ? bind('preferredHostUuid', req.preferredHostUuid) : undefined;
  const leastVm = bind.shape(req.strategy ?? DEFAULT_ALLOCATOR_STRATEGY) === 'LeastVmPreferredHostAllocatorStrategy';
  return (tx: Tx) => {
    // What depends on the cluster (and its zone) only is decided once per cluster, in a sub-select: the hosts are
    // then filtered on their own columns and walked in strategy order, never evaluating a sub-plan per host.
    const clusterWhere: SQL[] = [eq(clusters.state, 'Enabled'), eq(zones.state, 'Enabled')];
    if (l3NetworkUuids) {
      clusterWhere.push(sql`NOT EXISTS (SELECT 1 FROM ${l3Networks} WHERE ${l3Networks.uuid} = ANY(${l3NetworkUuids}::text[]) AND NOT EXISTS (
      SELECT 1 FROM ${l2ClusterRefs} WHERE ${l2ClusterRefs.l2NetworkUuid} = ${l3Networks.l2NetworkUuid} AND ${l2ClusterRefs.clusterUuid} = ${clusters.uuid}))`);
    }
    const usablePs = (extra: SQL) => sql`EXISTS (SELECT 1 FROM ${primaryStorageClusterRefs}
    INNER JOIN ${primaryStorage} ON ${primaryStorage.uuid} = ${primaryStorageClusterRefs.primaryStorageUuid}
    WHERE ${primaryStorageClusterRefs.clusterUuid} = ${clusters.uuid} AND ${primaryStorage.state} = 'Enabled' AND ${primaryStorage.status} = 'Connected' AND ${extra})`;
    for (const uuid of primaryStorageUuids) clusterWhere.push(usablePs(sql`${primaryStorage.uuid} = ${uuid}`));
    clusterWhere.push(usablePs(newVolumeBytes !== undefined ? sql`${primaryStorage.availableCapacity} >= ${newVolumeBytes}` : sql`TRUE`));
    if (imageUuid) {
      clusterWhere.push(sql`EXISTS (SELECT 1 FROM ${imageBackupStorageRefs}
      INNER JOIN ${backupStorageZoneRefs} ON ${backupStorageZoneRefs.backupStorageUuid} = ${imageBackupStorageRefs.backupStorageUuid}
      WHERE ${imageBackupStorageRefs.imageUuid} = ${imageUuid} AND ${backupStorageZoneRefs.zoneUuid} = ${clusters.zoneUuid})`);
    }
    const usableClusters = tx
      .select({ uuid: clusters.uuid })
      .from(clusters)
      .innerJoin(zones, eq(zones.uuid, clusters.zoneUuid))
      .where(and(...clusterWhere));
    const where: SQL[] = [
      eq(hosts.state, 'Enabled'),
      eq(hosts.status, 'Connected'),
      gte(hosts.availableCpuCapacity, cpuNum),
      gte(hosts.availableMemoryCapacity, memorySize),
      inArray(hosts.clusterUuid, usableClusters),
    ];
    if (zoneUuid) where.push(eq(hosts.zoneUuid, zoneUuid));
    if (clusterUuid) where.push(eq(hosts.clusterUuid, clusterUuid));
    if (hostUuid) where.push(eq(hosts.uuid, hostUuid));
    if (avoidHostUuids) where.push(sql`NOT (${hosts.uuid} = ANY(${avoidHostUuids}::text[]))`);
    const orderBy: SQL[] = [];
    if (preferredHostUuid) orderBy.push(sql`(${hosts.uuid} = ${preferredHostUuid}) DESC`);
    // LeastVmPreferred: the maintained count (VMs placed or being placed there): hosts are walked in its index order
    // and the first one that qualifies and is not being reserved on by another transaction is taken.
    orderBy.push(leastVm ? asc(hosts.reservedVmCount) : sql`random()`);
    const first = tx
      .select({ uuid: hosts.uuid })
      .from(hosts)
      .where(and(...where))
      .orderBy(...orderBy)
      .limit(1)
      .for('update', { of: hosts, skipLocked: true });
    // `= (sub-select)`, not `IN`: a scalar sub-select runs once as an init plan and the row is then fetched by its key;
    // with `IN` the generic plan (what a prepared statement settles on) hash-joins a scan of every host.
    return tx
      .update(hosts)
      .set(reservation(cpuNum, memorySize))
      .where(and(sql`${hosts.uuid} = ${first}`, gte(hosts.availableCpuCapacity, cpuNum), gte(hosts.availableMemoryCapacity, memorySize)))
      .returning();
  };
}

function noHost(req: HostRequirement, dropped: string[]) {
  const why = dropped.length ? dropped.slice(0, 20).join('; ') + (dropped.length > 20 ? `; and ${dropped.length - 20} more` : '') : 'there is no host at all';
  return err('HOST_ALLOCATION.1001', `no host available for VM[uuid:${req.vmUuid}] (cpuNum ${req.cpuNum}, memory ${req.memorySize} bytes): ${why}`);
}

/** The hosts that qualify, and why each other host was dropped (the slow path; exported for the equivalence test). */
export async function candidatesFor(app: DomainContext, req: HostRequirement, db: Tx = app.db): Promise<{ candidates: HostRow[]; dropped: string[] }> {
  const where: SQL[] = [];
  if (req.zoneUuid) where.push(eq(hosts.zoneUuid, req.zoneUuid));
  if (req.clusterUuid) where.push(eq(hosts.clusterUuid, req.clusterUuid));
  if (req.hostUuid) where.push(eq(hosts.uuid, req.hostUuid));
  const rows = await db
    .select({ host: hosts, clusterState: clusters.state, zoneState: zones.state })
    .from(hosts)
    .innerJoin(clusters, eq(clusters.uuid, hosts.clusterUuid))
    .innerJoin(zones, eq(zones.uuid, hosts.zoneUuid))
    .where(where.length ? and(...where) : undefined);
  const dropped: string[] = [];
  if (rows.length === 0) {
    const scope = req.hostUuid
      ? `host[uuid:${req.hostUuid}]`
      : req.clusterUuid
        ? `cluster[uuid:${req.clusterUuid}]`
        : req.zoneUuid
          ? `zone[uuid:${req.zoneUuid}]`
          : 'the system';
    dropped.push(`${scope} has no host`);
    return { candidates: [], dropped };
  }
  const clusterUuids = [...new Set(rows.map((r) => r.host.clusterUuid))];

  // L2 networks of the requested L3s must be attached to the host's cluster.
  const l3s = req.l3NetworkUuids.length
    ? await db.select({ uuid: l3Networks.uuid, l2: l3Networks.l2NetworkUuid }).from(l3Networks).where(inArray(l3Networks.uuid, req.l3NetworkUuids))
    : [];
  const l2Refs = l3s.length
    ? await db
        .select()
        .from(l2ClusterRefs)
        .where(
          and(
            inArray(l2ClusterRefs.clusterUuid, clusterUuids),
            inArray(
              l2ClusterRefs.l2NetworkUuid,
              l3s.map((l) => l.l2),
            ),
          ),
        )
    : [];
  const l2Attached = new Set(l2Refs.map((r) => `${r.l2NetworkUuid}/${r.clusterUuid}`));

  // Primary storage attached to each cluster (usable: Enabled and Connected).
  const psRows = await db
    .select({ clusterUuid: primaryStorageClusterRefs.clusterUuid, ps: primaryStorage })
    .from(primaryStorageClusterRefs)
    .innerJoin(primaryStorage, eq(primaryStorage.uuid, primaryStorageClusterRefs.primaryStorageUuid))
    .where(inArray(primaryStorageClusterRefs.clusterUuid, clusterUuids));
  const psOf = new Map<string, (typeof psRows)[number]['ps'][]>();
  for (const r of psRows) psOf.set(r.clusterUuid, [...(psOf.get(r.clusterUuid) ?? []), r.ps]);

  // Zones where the image can be fetched from (its backup storage is attached there).
  let imageZones: Set<string> | undefined;
  if (req.imageUuid) {
    const refs = await db
      .select({ zoneUuid: backupStorageZoneRefs.zoneUuid })
      .from(imageBackupStorageRefs)
      .innerJoin(backupStorageZoneRefs, eq(backupStorageZoneRefs.backupStorageUuid, imageBackupStorageRefs.backupStorageUuid))
      .where(eq(imageBackupStorageRefs.imageUuid, req.imageUuid));
    imageZones = new Set(refs.map((r) => r.zoneUuid));
  }

  const avoid = new Set(req.avoidHostUuids ?? []);
  const candidates: HostRow[] = [];
  for (const { host, clusterState, zoneState } of rows) {
    const why = dropReason(host, clusterState, zoneState);
    if (why) {
      dropped.push(`host[uuid:${host.uuid}] ${why}`);
      continue;
    }
    if (avoid.has(host.uuid)) {
      dropped.push(`host[uuid:${host.uuid}] is excluded (the VM is already there)`);
      continue;
    }
    const missingL2 = l3s.find((l3) => !l2Attached.has(`${l3.l2}/${host.clusterUuid}`));
    if (missingL2) {
      dropped.push(`host[uuid:${host.uuid}]: L2 network[uuid:${missingL2.l2}] of L3 network[uuid:${missingL2.uuid}] is not attached to its cluster`);
      continue;
    }
    const usable = (psOf.get(host.clusterUuid) ?? []).filter((ps) => ps.state === 'Enabled' && ps.status === 'Connected');
    const missingPs = req.primaryStorageUuids.find((uuid) => !usable.some((ps) => ps.uuid === uuid));
    if (missingPs) {
      dropped.push(`host[uuid:${host.uuid}]: primary storage[uuid:${missingPs}] holding the VM's volumes is not usable from its cluster`);
      continue;
    }
    if (usable.length === 0) {
      dropped.push(`host[uuid:${host.uuid}]: no Enabled and Connected primary storage is attached to its cluster`);
      continue;
    }
    if (req.newVolumeBytes > 0 && !usable.some((ps) => ps.availableCapacity >= req.newVolumeBytes)) {
      dropped.push(`host[uuid:${host.uuid}]: no primary storage of its cluster has ${req.newVolumeBytes} bytes free`);
      continue;
    }
    if (imageZones && !imageZones.has(host.zoneUuid)) {
      dropped.push(`host[uuid:${host.uuid}]: no backup storage holding image[uuid:${req.imageUuid}] is attached to its zone`);
      continue;
    }
    if (host.availableCpuCapacity < req.cpuNum || host.availableMemoryCapacity < req.memorySize) {
      dropped.push(
        `host[uuid:${host.uuid}] has not enough capacity (cpu ${host.availableCpuCapacity} available, ${req.cpuNum} needed; ` +
          `memory ${host.availableMemoryCapacity} available, ${req.memorySize} needed)`,
      );
      continue;
    }
    candidates.push(host);
  }
  return { candidates, dropped };
}

function dropReason(host: HostRow, clusterState: string, zoneState: string): string | undefined {
  if (host.state !== 'Enabled') return `is in state ${host.state}`;
  if (host.status !== 'Connected') return `is ${host.status}`;
  if (clusterState !== 'Enabled') return `is in a ${clusterState} cluster[uuid:${host.clusterUuid}]`;
  if (zoneState !== 'Enabled') return `is in a ${zoneState} zone[uuid:${host.zoneUuid}]`;
  return undefined;
}

/** Strategy order: LeastVmPreferred = fewest VMs first; Default = random. A preferred host goes first. */
function order(candidates: HostRow[], req: HostRequirement): HostRow[] {
  let ordered: HostRow[];
  if ((req.strategy ?? DEFAULT_ALLOCATOR_STRATEGY) === 'LeastVmPreferredHostAllocatorStrategy' && candidates.length > 1) {
    // Shuffle first so hosts with equal counts share the load under concurrency.
    ordered = shuffle(candidates).sort((a, b) => a.reservedVmCount - b.reservedVmCount);
  } else {
    ordered = shuffle(candidates);
  }
  if (req.preferredHostUuid) {
    const i = ordered.findIndex((h) => h.uuid === req.preferredHostUuid);
    if (i > 0) ordered.unshift(...ordered.splice(i, 1));
  }
  return ordered;
}

function shuffle<T>(items: T[]): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** What MigrateVm's allocator asks of a destination (also GetVmMigrationCandidateHosts' dry run). */
export function migrationRequirement(
  vm: Pick<VmRow, 'uuid' | 'cpuNum' | 'memorySize'>,
  src: Pick<HostRow, 'uuid' | 'clusterUuid'>,
  nics: NicRow[],
  vols: VolumeRow[],
  destHostUuid?: string,
): HostRequirement {
  return {
    vmUuid: vm.uuid,
    cpuNum: vm.cpuNum,
    memorySize: vm.memorySize,
    l3NetworkUuids: [...new Set(nics.map((n) => n.l3NetworkUuid))],
    // MigrateVm allocator: the same cluster unless a destination is named; it must reach the VM's storage.
    clusterUuid: destHostUuid ? undefined : src.clusterUuid,
    hostUuid: destHostUuid,
    primaryStorageUuids: [...new Set(vols.filter((v) => v.primaryStorageUuid).map((v) => v.primaryStorageUuid!))],
    newVolumeBytes: 0,
    avoidHostUuids: [src.uuid],
    strategy: 'DefaultHostAllocatorStrategy',
  };
}

// The invariant checker: what must hold in the database (and between the database and the hosts' agents) whenever no
// operation is half-way through. Shared by the crash and race tests and runnable by an operator against any database
// (`npm run check:invariants`, server/scripts/check-invariants.ts). Every check is one query; the result lists each
// violation in words, plus figures (stuck VMs, leaked capacity, VMs running unknown to the database).
import { sql } from 'drizzle-orm';
import { rows, type Tx } from '../db/index.js';

/** States an operation passes through (kept in step with vm/reconcile.ts). */
const TRANSITIONAL = ['Starting', 'Stopping', 'Rebooting', 'Migrating', 'Destroying', 'Expunging', 'Pausing', 'Resuming', 'VolumeMigrating'];

export interface HostVmReport {
  hostUuid: string;
  /** VMs alive on the host (the agent's /vm/vmsync): uuid → Running | Paused. */
  states: Record<string, string>;
}

export interface InvariantReport {
  ok: boolean;
  violations: string[];
  figures: {
    vms: number;
    /** VMs in a transitional state (or Created while naming a host). */
    transitionalVms: number;
    /** vCPUs / bytes of memory counted as used on hosts beyond what the VMs naming them hold (negative: overbooked). */
    leakedCpu: number;
    leakedMemory: number;
    /** Bytes of primary storage counted as used beyond the volumes and snapshots naming it. */
    leakedStorage: number;
    /** VMs the agents run that the database does not place there. */
    unknownRunning: number;
    /** VMs the database says run on a host whose agent does not run them. */
    missingOnHost: number;
  };
}

const sqlList = (values: string[]) =>
  sql.join(
    values.map((v) => sql`${v}`),
    sql`, `,
  );

/**
 * Checks the database (and, given `agents`, what the Connected hosts' agents report). `agents` returns the VM
 * reports of the hosts it could ask; hosts it leaves out are not compared.
 */
export async function checkInvariants(
  db: Tx,
  opts: { agents?: (hostUuids: string[]) => Promise<HostVmReport[]>; limit?: number } = {},
): Promise<InvariantReport> {
  const v: string[] = [];
  const limit = opts.limit ?? 20;
  const add = (title: string, found: Array<Record<string, unknown>>, describe: (r: Record<string, unknown>) => string) => {
    for (const r of found.slice(0, limit)) v.push(`${title}: ${describe(r)}`);
    if (found.length > limit) v.push(`${title}: and ${found.length - limit} more`);
  };

  // Capacity: a host's used CPU/memory (total − available) and VM count are what the VMs naming it hold.
  const hostCap = await rows(
    db,
    sql`SELECT h.uuid, h.available_cpu_capacity AS avail_cpu, GREATEST(0, h.total_cpu_capacity - COALESCE(u.cpu, 0)) AS want_cpu,
               h.available_memory_capacity AS avail_mem, GREATEST(0, h.total_memory_capacity - COALESCE(u.mem, 0)) AS want_mem,
               h.reserved_vm_count AS count, COALESCE(u.n, 0) AS want_count
          FROM hosts h LEFT JOIN (SELECT host_uuid, SUM(cpu_num)::bigint AS cpu, SUM(memory_size)::bigint AS mem, COUNT(*)::int AS n
                                    FROM vm_instances WHERE host_uuid IS NOT NULL GROUP BY host_uuid) u ON u.host_uuid = h.uuid
         WHERE h.available_cpu_capacity <> GREATEST(0, h.total_cpu_capacity - COALESCE(u.cpu, 0))
            OR h.available_memory_capacity <> GREATEST(0, h.total_memory_capacity - COALESCE(u.mem, 0))
            OR h.reserved_vm_count <> COALESCE(u.n, 0)`,
  );
  let leakedCpu = 0;
  let leakedMemory = 0;
  for (const r of hostCap) {
    leakedCpu += Number(r.want_cpu) - Number(r.avail_cpu);
    leakedMemory += Number(r.want_mem) - Number(r.avail_mem);
  }
  add(
    'host capacity differs from the VMs holding it',
    hostCap,
    (r) =>
      `host[uuid:${r.uuid}] cpu available ${r.avail_cpu} (expected ${r.want_cpu}), memory available ${r.avail_mem} (expected ${r.want_mem}), VMs ${r.count} (expected ${r.want_count})`,
  );

  const psCap = await rows(
    db,
    sql`SELECT p.uuid, p.available_capacity AS avail, GREATEST(0, p.total_capacity - COALESCE(u.size, 0)) AS want
          FROM primary_storage p LEFT JOIN (SELECT primary_storage_uuid, SUM(size)::bigint AS size FROM (
                                               SELECT primary_storage_uuid, size FROM volumes WHERE primary_storage_uuid IS NOT NULL
                                               UNION ALL SELECT primary_storage_uuid, size FROM volume_snapshots) held
                                             GROUP BY primary_storage_uuid) u ON u.primary_storage_uuid = p.uuid
         WHERE p.available_capacity <> GREATEST(0, p.total_capacity - COALESCE(u.size, 0))`,
  );
  let leakedStorage = 0;
  for (const r of psCap) leakedStorage += Number(r.want) - Number(r.avail);
  add(
    'primary storage capacity differs from the volumes and snapshots on it',
    psCap,
    (r) => `primary storage[uuid:${r.uuid}] available ${r.avail} (expected ${r.want})`,
  );

  // Addresses, NICs, MACs.
  add(
    'NIC without its address',
    await rows(
      db,
      sql`SELECT n.uuid, n.used_ip_uuid, n.ip FROM vm_nics n LEFT JOIN used_ips u ON u.uuid = n.used_ip_uuid
           WHERE n.used_ip_uuid IS NOT NULL AND (u.uuid IS NULL OR u.vm_nic_uuid IS DISTINCT FROM n.uuid OR u.ip <> n.ip OR u.l3_network_uuid <> n.l3_network_uuid)`,
    ),
    (r) => `NIC[uuid:${r.uuid}] names address ${r.ip} (used ip ${r.used_ip_uuid}) that is not reserved for it`,
  );
  add(
    'address reserved for a NIC that does not hold it',
    await rows(
      db,
      sql`SELECT u.uuid, u.ip, u.vm_nic_uuid FROM used_ips u WHERE u.vm_nic_uuid IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM vm_nics n WHERE n.uuid = u.vm_nic_uuid AND n.used_ip_uuid = u.uuid)`,
    ),
    (r) => `address ${r.ip}[uuid:${r.uuid}] for NIC[uuid:${r.vm_nic_uuid}]`,
  );
  add(
    'NIC of a non-destroyed VM without an address',
    await rows(
      db,
      sql`SELECT n.uuid, v.uuid AS vm FROM vm_nics n JOIN vm_instances v ON v.uuid = n.vm_instance_uuid
           JOIN ip_ranges r ON r.l3_network_uuid = n.l3_network_uuid
           WHERE n.used_ip_uuid IS NULL AND v.state NOT IN ('Destroyed', 'Expunging') GROUP BY n.uuid, v.uuid`,
    ),
    (r) => `NIC[uuid:${r.uuid}] of VM[uuid:${r.vm}]`,
  );
  add('MAC used twice', await rows(db, sql`SELECT mac, COUNT(*)::int AS n FROM vm_nics GROUP BY mac HAVING COUNT(*) > 1`), (r) => `${r.mac} (${r.n} NICs)`);

  // Dangling references.
  const dangling: Array<[string, ReturnType<typeof sql>]> = [
    [
      'VM on a host that does not exist',
      sql`SELECT v.uuid, v.host_uuid AS ref FROM vm_instances v WHERE v.host_uuid IS NOT NULL AND NOT EXISTS (SELECT 1 FROM hosts h WHERE h.uuid = v.host_uuid)`,
    ],
    [
      'VM in a cluster that does not exist',
      sql`SELECT v.uuid, v.cluster_uuid AS ref FROM vm_instances v WHERE v.cluster_uuid IS NOT NULL AND NOT EXISTS (SELECT 1 FROM clusters c WHERE c.uuid = v.cluster_uuid)`,
    ],
    [
      'VM in a zone that does not exist',
      sql`SELECT v.uuid, v.zone_uuid AS ref FROM vm_instances v WHERE v.zone_uuid IS NOT NULL AND NOT EXISTS (SELECT 1 FROM zones z WHERE z.uuid = v.zone_uuid)`,
    ],
    [
      'NIC on an L3 network that does not exist',
      sql`SELECT n.uuid, n.l3_network_uuid AS ref FROM vm_nics n WHERE NOT EXISTS (SELECT 1 FROM l3_networks l WHERE l.uuid = n.l3_network_uuid)`,
    ],
    [
      'volume of a VM that does not exist',
      sql`SELECT o.uuid, o.vm_instance_uuid AS ref FROM volumes o WHERE o.vm_instance_uuid IS NOT NULL AND NOT EXISTS (SELECT 1 FROM vm_instances v WHERE v.uuid = o.vm_instance_uuid)`,
    ],
    [
      'volume on primary storage that does not exist',
      sql`SELECT o.uuid, o.primary_storage_uuid AS ref FROM volumes o WHERE o.primary_storage_uuid IS NOT NULL AND NOT EXISTS (SELECT 1 FROM primary_storage p WHERE p.uuid = o.primary_storage_uuid)`,
    ],
    [
      'VM whose root volume does not exist',
      sql`SELECT v.uuid, v.root_volume_uuid AS ref FROM vm_instances v WHERE v.root_volume_uuid IS NOT NULL AND NOT EXISTS (SELECT 1 FROM volumes o WHERE o.uuid = v.root_volume_uuid)`,
    ],
  ];
  for (const [title, q] of dangling) add(title, await rows(db, q), (r) => `${r.uuid} → ${r.ref}`);

  // States: nothing half-way; a VM names a host exactly when it holds one.
  const transitional = await rows(
    db,
    sql`SELECT uuid, state, host_uuid FROM vm_instances WHERE state IN (${sqlList(TRANSITIONAL)}) OR (state = 'Created' AND host_uuid IS NOT NULL)`,
  );
  add('VM in a transitional state', transitional, (r) => `VM[uuid:${r.uuid}] is ${r.state} (host ${r.host_uuid ?? 'none'})`);
  add(
    'VM state and host disagree',
    await rows(
      db,
      sql`SELECT uuid, state, host_uuid FROM vm_instances
           WHERE (state IN ('Running', 'Paused', 'Unknown') AND host_uuid IS NULL) OR (state IN ('Stopped', 'Destroyed') AND host_uuid IS NOT NULL)`,
    ),
    (r) => `VM[uuid:${r.uuid}] is ${r.state} with host ${r.host_uuid ?? 'none'}`,
  );

  // The database against the agents.
  let unknownRunning = 0;
  let missingOnHost = 0;
  if (opts.agents) {
    const connected = await rows<{ uuid: string }>(db, sql`SELECT uuid FROM hosts WHERE status = 'Connected'`);
    const reports = await opts.agents(connected.map((h) => h.uuid));
    const placed = await rows<{ uuid: string; host_uuid: string; state: string }>(
      db,
      sql`SELECT uuid, host_uuid, state FROM vm_instances WHERE host_uuid IS NOT NULL AND state IN ('Running', 'Paused')`,
    );
    const where = new Map(placed.map((p) => [p.uuid, p]));
    const unknown: Array<Record<string, unknown>> = [];
    const missing: Array<Record<string, unknown>> = [];
    for (const r of reports) {
      for (const [uuid, state] of Object.entries(r.states)) {
        if (!/^[0-9a-f]{32}$/.test(uuid)) continue; // not a VM of ours (a real host's other domains)
        const p = where.get(uuid);
        if (!p || p.host_uuid !== r.hostUuid || p.state !== state)
          unknown.push({ uuid, host: r.hostUuid, state, db: p ? `${p.state} on ${p.host_uuid}` : 'not running' });
      }
      for (const p of placed) if (p.host_uuid === r.hostUuid && !r.states[p.uuid]) missing.push({ uuid: p.uuid, host: r.hostUuid, state: p.state });
    }
    unknownRunning = unknown.length;
    missingOnHost = missing.length;
    add('VM runs on a host the database does not place it on', unknown, (r) => `VM[uuid:${r.uuid}] ${r.state} on host[uuid:${r.host}] (database: ${r.db})`);
    add('VM the database says runs on a host that does not run it', missing, (r) => `VM[uuid:${r.uuid}] ${r.state} on host[uuid:${r.host}]`);
  }

  const [{ n: vms }] = await rows<{ n: number }>(db, sql`SELECT COUNT(*)::int AS n FROM vm_instances`);
  return {
    ok: v.length === 0,
    violations: v,
    figures: { vms: Number(vms), transitionalVms: transitional.length, leakedCpu, leakedMemory, leakedStorage, unknownRunning, missingOnHost },
  };
}

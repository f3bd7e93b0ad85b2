// Reconciliation with the hosts' truth (upstream's VmTracer + HostCapacityUpdater, zstack-internals.md): what the
// database says about VMs is compared with what the hosts' agents run (`/vm/vmsync`: the VMs alive on a host) and
// every difference is resolved by one rule (README, "Reconciliation"); capacity is recomputed from the rows that hold
// it instead of trusting counters; addresses without their NIC are freed.
//
// Runs: for a host when it connects or reconnects (after-connect hook); for every Connected host every
// `vm/reconcile.interval` seconds (one `/vm/vmsync` per host, `vm/reconcile.parallelismDegree` hosts at a time), with
// a database pass for VMs no host can answer for; and once at start when no other management node is alive (then the
// primary storage counters are recomputed too: nothing can be half-way through a reservation).
//
// A VM is only ever touched under its lock taken with try-lock (never waiting): an operation working on it holds that
// lock, so reconciliation never races a live operation; the lock of a process that died died with its connection. A
// row changed after the host was asked (`lastOpDate`) is left for the next round.
import { and, eq, inArray, isNotNull, isNull, or, sql } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import { toApiError } from '../core/errors.js';
import { rows, type Tx } from '../db/index.js';
import { hosts, l3Networks, primaryStorage, usedIps, vmInstances, vmNics, volumes, volumeSnapshots } from '../db/schema/index.js';
import { destroyOnHostLater } from './gc.js';
import type { VmRow } from './inventory.js';
import { deleteNic } from './nics.js';
import { vmLockKey } from './ops.js';
import type { VmService } from './service.js';
import { installPathOf } from './start-flow.js';
import type { HostVmReport } from '../core/invariants.js';

/** States an operation passes through; a VM left in one by a crash is settled by reconciliation. */
export const TRANSITIONAL_STATES = ['Starting', 'Stopping', 'Rebooting', 'Migrating', 'Destroying', 'Expunging', 'Pausing', 'Resuming', 'VolumeMigrating'];
/** Settled to what the host says when its host answers (a disconnected host's VMs become Unknown). */
const ASK_HOST_STATES = [...TRANSITIONAL_STATES, 'Unknown', 'Running', 'Paused'];

/** The names this management plane gives VMs on hosts: their 32-hex uuids. */
export const isVmUuid = (name: string) => /^[0-9a-f]{32}$/.test(name);

type HostTruth = { hostUuid: string; state: string } | null;

export interface ReconcileCounts {
  adopted: number;
  settled: number;
  rolledBack: number;
  stopped: number;
  destroyedOnHost: number;
  ipsFreed: number;
  nicsDetached: number;
}

const zero = (): ReconcileCounts => ({ adopted: 0, settled: 0, rolledBack: 0, stopped: 0, destroyedOnHost: 0, ipsFreed: 0, nicsDetached: 0 });

export class Reconciler {
  /** Totals since the start (logged, and read by tests). */
  readonly counts = zero();

  constructor(
    private app: DomainContext,
    private vms: VmService,
  ) {}

  /**
   * One host: asks its agent which VMs run there and settles every difference with the database; then recomputes
   * the host's capacity. A host that is not Connected, or does not answer, is left for its reconnection.
   */
  async reconcileHost(hostUuid: string): Promise<void> {
    const host = await this.app.use('hosts').get(hostUuid);
    if (!host || host.status !== 'Connected') return;
    const since = Date.now();
    let states: Record<string, string>;
    try {
      const reply = await this.app.use('hosts').query(
        host,
        '/vm/vmsync',
        {},
        {
          timeoutMs: this.app.globalConfig.getMs('host', 'ping.timeout'),
        },
      );
      states = reply.states ?? {};
    } catch (e) {
      console.warn(`[reconcile] host[uuid:${hostUuid}]: /vm/vmsync failed: ${toApiError(e).message}`);
      return;
    }
    const reported = Object.keys(states);
    const known = await this.app.db
      .select({ uuid: vmInstances.uuid, state: vmInstances.state, hostUuid: vmInstances.hostUuid })
      .from(vmInstances)
      .where(reported.length ? or(eq(vmInstances.hostUuid, hostUuid), inArray(vmInstances.uuid, reported)) : eq(vmInstances.hostUuid, hostUuid));
    const byUuid = new Map(known.map((v) => [v.uuid, v]));
    const later: Array<() => Promise<void>> = [];
    for (const uuid of reported) {
      const row = byUuid.get(uuid);
      if (!row) {
        // Ours by name (a VM uuid) but unknown to the database (a creation rolled back, a row lost): destroyed
        // through the GC. Domains named otherwise on a real host are not ours to touch.
        if (isVmUuid(uuid)) await this.destroyUnknown(uuid, hostUuid, since);
        continue;
      }
      const truth = { hostUuid, state: states[uuid] === 'Paused' ? 'Paused' : 'Running' };
      if (row.hostUuid === hostUuid && row.state === truth.state) continue;
      await this.settle(uuid, truth, since, later);
    }
    for (const row of known) {
      if (row.hostUuid !== hostUuid || states[row.uuid] || !ASK_HOST_STATES.includes(row.state)) continue;
      await this.settle(row.uuid, null, since, later);
    }
    for (const fn of later) await fn().catch((e) => console.warn('[reconcile]', toApiError(e).message));
    await this.recomputeHost(hostUuid);
  }

  /**
   * VMs no host can answer for: transitional with no host recorded, on a deleted host (settled as not running), on
   * a host that is not Connected (Unknown until it reconnects; destroys go on through the GC); NICs on deleted L3
   * networks are detached; addresses without their NIC are freed.
   */
  async reconcileDatabase(): Promise<void> {
    const since = Date.now();
    const stuck = await this.app.db
      .select({ uuid: vmInstances.uuid, state: vmInstances.state, hostUuid: vmInstances.hostUuid, hostStatus: hosts.status, hostRow: hosts.uuid })
      .from(vmInstances)
      .leftJoin(hosts, eq(hosts.uuid, vmInstances.hostUuid))
      .where(
        or(
          inArray(vmInstances.state, TRANSITIONAL_STATES),
          // A creation cut short (CreateStopped) still names the host it reserved on.
          and(eq(vmInstances.state, 'Created'), isNotNull(vmInstances.hostUuid)),
          // Its host was deleted.
          and(isNotNull(vmInstances.hostUuid), isNull(hosts.uuid)),
        ),
      );
    const later: Array<() => Promise<void>> = [];
    for (const v of stuck) {
      if (v.hostUuid && v.hostRow && v.hostStatus === 'Connected') continue; // its host's own round decides
      if (v.hostUuid && v.hostRow) {
        await this.settleUnreachable(v.uuid, since, later);
        continue;
      }
      await this.settle(v.uuid, null, since, later, true);
    }
    for (const fn of later) await fn().catch((e) => console.warn('[reconcile]', toApiError(e).message));
    await this.detachNicsOnDeletedL3();
    await this.freeOrphanIps();
  }

  /** Everything: every Connected host (a few at a time), then the database pass. */
  async reconcileAll(): Promise<void> {
    const connected = await this.app.db.select({ uuid: hosts.uuid }).from(hosts).where(eq(hosts.status, 'Connected'));
    const uuids = connected.map((h) => h.uuid);
    let next = 0;
    const worker = async () => {
      while (next < uuids.length) await this.reconcileHost(uuids[next++]).catch((e) => console.warn('[reconcile]', toApiError(e).message));
    };
    const width = Math.max(1, Math.min(this.app.globalConfig.getNumber('vm', 'reconcile.parallelismDegree'), uuids.length));
    await Promise.all(Array.from({ length: width }, worker));
    await this.reconcileDatabase();
  }

  /**
   * At start, when no other management node is alive and before this one serves (nothing can be half-way through a
   * reservation): every host's and every primary storage's counters from the rows that hold them, and the addresses
   * without their NIC. Database only (the hosts are asked in the first round right after).
   */
  async recomputeAtBoot(): Promise<void> {
    await this.app.db.execute(sql`UPDATE ${hosts} h SET
        available_cpu_capacity = GREATEST(0, h.total_cpu_capacity - COALESCE(u.cpu, 0)),
        available_memory_capacity = GREATEST(0, h.total_memory_capacity - COALESCE(u.mem, 0)),
        reserved_vm_count = COALESCE(u.n, 0)
      FROM ${hosts} h2 LEFT JOIN (SELECT host_uuid, SUM(cpu_num)::bigint AS cpu, SUM(memory_size)::bigint AS mem, COUNT(*)::int AS n
                                   FROM ${vmInstances} WHERE host_uuid IS NOT NULL GROUP BY host_uuid) u ON u.host_uuid = h2.uuid
      WHERE h.uuid = h2.uuid`);
    await this.recomputeAllPrimaryStorage();
    await this.freeOrphanIps();
  }

  /**
   * The host's available CPU/memory = total − what the VMs naming it hold (every VM row with this host_uuid, in any
   * state: the reservation and the row commit together), and its VM count. In one transaction with the host row
   * locked first (a reservation committing meanwhile is waited for and counted; a new one skips the row). Not while
   * some VM is Migrating: a migration's destination reservation is on no VM row until it ends. False when skipped.
   */
  async recomputeHost(hostUuid: string): Promise<boolean> {
    return this.app.db.transaction(async (tx) => {
      const [h] = await tx.select({ uuid: hosts.uuid }).from(hosts).where(eq(hosts.uuid, hostUuid)).for('update');
      if (!h) return false;
      const migrating = await rows(tx, sql`SELECT 1 FROM ${vmInstances} WHERE ${vmInstances.state} = 'Migrating' LIMIT 1`);
      if (migrating.length) return false;
      await tx.execute(sql`UPDATE ${hosts} SET
          available_cpu_capacity = GREATEST(0, total_cpu_capacity - u.cpu),
          available_memory_capacity = GREATEST(0, total_memory_capacity - u.mem),
          reserved_vm_count = u.n
        FROM (SELECT COALESCE(SUM(cpu_num), 0)::bigint AS cpu, COALESCE(SUM(memory_size), 0)::bigint AS mem, COUNT(*)::int AS n
                FROM ${vmInstances} WHERE host_uuid = ${hostUuid}) u
        WHERE ${hosts.uuid} = ${hostUuid}`);
      return true;
    });
  }

  /**
   * Primary storage: available = total − the sizes of the volumes and snapshots naming it. Only when nothing can be half-way through
   * a reservation (at start with no other management node; the operator's check): a data volume's reservation and
   * its row are not one statement.
   */
  async recomputeAllPrimaryStorage(): Promise<void> {
    await this.app.db.execute(sql`UPDATE ${primaryStorage} p SET available_capacity = GREATEST(0, p.total_capacity - COALESCE(
        (SELECT SUM(size) FROM ${volumes} v WHERE v.primary_storage_uuid = p.uuid), 0) - COALESCE(
        (SELECT SUM(size) FROM ${volumeSnapshots} s WHERE s.primary_storage_uuid = p.uuid), 0))`);
  }

  /**
   * Settles one VM under its lock (skipped when an operation holds it or the row changed since `since`). `truth`:
   * where the host side runs it, or null when the host asked (or none, with `noHost`) does not run it.
   */
  private async settle(uuid: string, truth: HostTruth, since: number, later: Array<() => Promise<void>>, noHost = false): Promise<void> {
    await this.app.locks.tryWithLock(vmLockKey(uuid), async () => {
      const vm = await this.vms.get(uuid);
      if (!vm || vm.lastOpDate.getTime() >= since) return;
      if (truth) return this.settleFound(vm, truth, since, later);
      return this.settleNotRunning(vm, later, noHost);
    });
  }

  /** The VM runs on `truth.hostUuid`. */
  private async settleFound(vm: VmRow, truth: { hostUuid: string; state: string }, since: number, later: Array<() => Promise<void>>): Promise<void> {
    const onOtherHost = vm.hostUuid && vm.hostUuid !== truth.hostUuid;
    if (vm.state === 'Destroyed' || vm.state === 'Expunging' || (vm.state === 'Created' && !vm.hostUuid)) {
      // Not meant to run anywhere: destroyed on the host through the GC.
      return this.destroyUnknown(vm.uuid, truth.hostUuid, since, vm.name);
    }
    if (onOtherHost && (vm.state === 'Running' || vm.state === 'Paused')) {
      // A copy left behind (a migration cut short after the VM moved): the database's host keeps it.
      return this.destroyUnknown(vm.uuid, truth.hostUuid, since, vm.name);
    }
    const host = await this.app.use('hosts').get(truth.hostUuid);
    if (!host) return;
    const adopting = vm.state === 'Starting' || vm.state === 'Created';
    await this.app.db.transaction(async (tx) => {
      await this.moveCapacity(tx, vm, vm.hostUuid, host.uuid);
      if (adopting) await this.markVolumesReady(tx, vm);
      await this.vms.setState(
        vm,
        truth.state,
        { hostUuid: host.uuid, lastHostUuid: host.uuid, clusterUuid: host.clusterUuid, zoneUuid: host.zoneUuid, hypervisorType: host.hypervisorType },
        tx,
      );
    });
    if (adopting) this.counts.adopted++;
    else this.counts.settled++;
    console.warn(`[reconcile] VM[uuid:${vm.uuid}] was ${vm.state}, runs on host[uuid:${host.uuid}]: now ${truth.state}`);
    if (vm.state === 'Destroying') later.push(() => this.vms.destroy(vm.uuid));
  }

  /** The VM runs nowhere (its host said so, or it has none). */
  private async settleNotRunning(vm: VmRow, later: Array<() => Promise<void>>, noHost: boolean): Promise<void> {
    if (vm.state === 'Crashed' || vm.state === 'Stopped' || vm.state === 'Destroyed') return;
    if (vm.state === 'Expunging') {
      await this.vms.setState(vm, 'Destroyed', { hostUuid: null });
      later.push(() => this.vms.expunge(vm.uuid));
      this.counts.settled++;
      return;
    }
    const vols = await this.vms.volumesOf(vm.uuid);
    const root = vols.find((v) => v.type === 'Root');
    const neverRan = (vm.state === 'Starting' || vm.state === 'Created' || vm.state === 'Unknown') && (!root || root.status === 'NotInstantiated');
    if (neverRan) {
      await this.rollbackCreation(vm);
      return;
    }
    const hostGone = noHost && vm.hostUuid !== null;
    await this.app.db.transaction(async (tx) => {
      if (vm.hostUuid && !hostGone) await this.app.use('hosts').releaseCapacity(tx, vm.hostUuid, vm.cpuNum, vm.memorySize);
      await this.vms.setState(vm, 'Stopped', { hostUuid: null, lastHostUuid: hostGone ? vm.lastHostUuid : (vm.hostUuid ?? vm.lastHostUuid) }, tx);
    });
    this.counts.stopped++;
    console.warn(`[reconcile] VM[uuid:${vm.uuid}] was ${vm.state} but runs nowhere: now Stopped`);
    if (vm.state === 'Destroying') later.push(() => this.vms.destroy(vm.uuid));
  }

  /** Its host is not Connected: Unknown (keeps host and capacity) until the host answers; destroys go on. */
  private async settleUnreachable(uuid: string, since: number, later: Array<() => Promise<void>>): Promise<void> {
    await this.app.locks.tryWithLock(vmLockKey(uuid), async () => {
      const vm = await this.vms.get(uuid);
      if (!vm || vm.lastOpDate.getTime() >= since || (!TRANSITIONAL_STATES.includes(vm.state) && vm.state !== 'Created')) return;
      if (vm.state === 'Destroying' || vm.state === 'Expunging') {
        await this.vms.setState(vm, 'Unknown');
        later.push(() => (vm.state === 'Destroying' ? this.vms.destroy(vm.uuid) : this.vms.destroy(vm.uuid).then(() => this.vms.expunge(vm.uuid))));
      } else {
        await this.vms.setState(vm, 'Unknown');
      }
      this.counts.settled++;
    });
  }

  /** A creation cut short: everything it reserved goes back (host, storage, addresses) and its rows go. */
  private async rollbackCreation(vm: VmRow): Promise<void> {
    const vols = await this.vms.volumesOf(vm.uuid);
    const nics = await this.vms.nicsOf(vm.uuid);
    await this.app.db.transaction(async (tx) => {
      if (vm.hostUuid) await this.app.use('hosts').releaseCapacity(tx, vm.hostUuid, vm.cpuNum, vm.memorySize);
      for (const v of vols) {
        if (v.primaryStorageUuid && v.type === 'Root') await this.app.use('primaryStorage').release(tx, v.primaryStorageUuid, v.size);
      }
      for (const n of nics) await deleteNic(this.app, n, tx);
      await tx.delete(volumes).where(and(eq(volumes.vmInstanceUuid, vm.uuid), or(eq(volumes.type, 'Root'), eq(volumes.status, 'NotInstantiated'))));
      await tx.update(volumes).set({ vmInstanceUuid: null, deviceId: null, lastVmInstanceUuid: vm.uuid }).where(eq(volumes.vmInstanceUuid, vm.uuid));
      await tx.delete(vmInstances).where(eq(vmInstances.uuid, vm.uuid));
    });
    this.vms.emitState(vm.uuid, vm.state, 'Destroyed', null);
    this.app.events.emit('vm.deleted', { vmUuid: vm.uuid });
    this.counts.rolledBack++;
    console.warn(`[reconcile] VM[uuid:${vm.uuid}] was ${vm.state}, its creation never completed and it runs nowhere: rolled back`);
  }

  /** A VM running on a host that the database does not place there: destroyed on that host through the GC. */
  private async destroyUnknown(uuid: string, hostUuid: string, since: number, name = uuid): Promise<void> {
    if (!(await destroyOnHostLater(this.app, { uuid, name }, hostUuid, since))) return;
    this.counts.destroyedOnHost++;
    console.warn(`[reconcile] VM[uuid:${uuid}] runs on host[uuid:${hostUuid}] but the database does not place it there: destroyed through the GC`);
  }

  /** The capacity a VM holds moves from one host to another (either may be null), in the caller's transaction. */
  private async moveCapacity(tx: Tx, vm: VmRow, from: string | null, to: string | null): Promise<void> {
    if (from === to) return;
    if (from) await this.app.use('hosts').releaseCapacity(tx, from, vm.cpuNum, vm.memorySize);
    if (to) {
      // Unconditionally: the VM runs there whatever the counters say (a later recomputation makes them exact).
      await tx
        .update(hosts)
        .set({
          availableCpuCapacity: sql`GREATEST(0, ${hosts.availableCpuCapacity} - ${vm.cpuNum}::bigint)`,
          availableMemoryCapacity: sql`GREATEST(0, ${hosts.availableMemoryCapacity} - ${vm.memorySize}::bigint)`,
          reservedVmCount: sql`${hosts.reservedVmCount} + 1`,
        })
        .where(eq(hosts.uuid, to));
    }
  }

  /** An adopted creation's volumes exist on the host (they are created before the VM starts): Ready. */
  private async markVolumesReady(tx: Tx, vm: VmRow): Promise<void> {
    const pending = await tx
      .select({ uuid: volumes.uuid, type: volumes.type, size: volumes.size, ps: primaryStorage })
      .from(volumes)
      .innerJoin(primaryStorage, eq(primaryStorage.uuid, volumes.primaryStorageUuid))
      .where(and(eq(volumes.vmInstanceUuid, vm.uuid), eq(volumes.status, 'NotInstantiated')));
    for (const v of pending) {
      await tx
        .update(volumes)
        .set({
          status: 'Ready',
          actualSize: v.size,
          installPath: await installPathOf(this.app, v.ps, v.type === 'Root' ? 'rootVolumes' : 'dataVolumes', v.uuid),
          lastOpDate: new Date(),
        })
        .where(eq(volumes.uuid, v.uuid));
    }
  }

  /** NICs left on an L3 network that was deleted (a creation racing the deletion): detached, addresses freed. */
  private async detachNicsOnDeletedL3(): Promise<void> {
    const dangling = await this.app.db
      .select({ uuid: vmNics.uuid })
      .from(vmNics)
      .leftJoin(l3Networks, eq(l3Networks.uuid, vmNics.l3NetworkUuid))
      .where(isNull(l3Networks.uuid));
    for (const n of dangling) {
      await this.vms
        .detachNic(n.uuid, { cascade: true, touchHost: true })
        .then(() => this.counts.nicsDetached++)
        .catch((e) => console.warn(`[reconcile] detaching NIC[uuid:${n.uuid}] of a deleted L3 network failed:`, toApiError(e).message));
    }
  }

  /** Addresses reserved for a NIC that does not exist, or that holds another address. */
  async freeOrphanIps(): Promise<number> {
    const gone = await rows(
      this.app.db,
      sql`DELETE FROM ${usedIps} u WHERE u.vm_nic_uuid IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM ${vmNics} n WHERE n.uuid = u.vm_nic_uuid AND n.used_ip_uuid = u.uuid) RETURNING u.uuid`,
    );
    this.counts.ipsFreed += gone.length;
    if (gone.length) console.warn(`[reconcile] ${gone.length} address(es) reserved for NICs that do not hold them: freed`);
    return gone.length;
  }
}

/** What the Connected hosts' agents run (`/vm/vmsync`), for the invariant checker; hosts that do not answer are left out. */
export async function agentVmReports(app: DomainContext, hostUuids: string[]): Promise<HostVmReport[]> {
  const out: HostVmReport[] = [];
  await Promise.all(
    hostUuids.map(async (hostUuid) => {
      const host = await app.use('hosts').get(hostUuid);
      const reply = host
        ? await app
            .use('hosts')
            .query(host, '/vm/vmsync', {}, { timeoutMs: app.globalConfig.getMs('host', 'ping.timeout') })
            .catch(() => undefined)
        : undefined;
      if (reply) out.push({ hostUuid, states: reply.states ?? {} });
    }),
  );
  return out;
}

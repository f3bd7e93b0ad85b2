// The VM module's garbage collectors (release notes §4, zstack-internals.md §2.2–2.3): a VM destroyed while its
// host is unreachable is Destroyed in the database at once (capacity and IP returned); the host-side destroy is
// a persisted job, run when the host reconnects (event) or on its timer, cancelled when the host is deleted or
// the VM was recovered in the meantime. When a host comes back with many pending destroys, they run as one batch:
// one read of the host and the VMs, one `/vm/batchdestroy` per host (at most DESTROY_BATCH VMs a command).
import { and, eq, gte, inArray, or } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import { isUnreachable } from '../agent-client/index.js';
import type { GcBatchItem, GcResult } from '../core/gc.js';
import { err } from '../core/errors.js';
import { gcJobs, hosts, vmInstances } from '../db/schema/index.js';
import { hostCall } from './hypervisor.js';
import type { VmRow } from './inventory.js';

export const DESTROY_VM_ON_HOST = 'DestroyVmOnHost';

interface DestroyVmContext {
  vmUuid: string;
  vmName: string;
  hostUuid: string;
}

export function registerVmGarbageCollectors(app: DomainContext): void {
  registerVolumeBitsCollector(app);
  registerStopVmCollector(app);
  app.globalConfig.define({
    category: 'gc',
    name: 'vm.destroy.interval',
    type: 'seconds',
    defaultValue: '300',
    min: 1,
    description: 'Seconds between retries of a pending destroy of a VM on its host (the host reconnecting also triggers it)',
  });
  app.gc.register({
    name: DESTROY_VM_ON_HOST,
    intervalMs: () => app.globalConfig.getMs('gc', 'vm.destroy.interval'),
    async run(ctx: DestroyVmContext, job) {
      const [result] = await destroyBatch(app, [{ context: ctx, job, signal: new AbortController().signal }]);
      if (typeof result === 'object') throw result.error;
      return result;
    },
    runBatch: (items: Array<GcBatchItem<DestroyVmContext>>) => destroyBatch(app, items),
  });
}

/** VMs per `/vm/batchdestroy` command, and hosts called at once by one batch (timer batches span many hosts). */
const DESTROY_BATCH = 1000;
const HOSTS_AT_ONCE = 8;

/**
 * The destroys of a batch of jobs: cancelled when the host is gone or the VM was recovered (read in one query
 * each), put back when the host is not Connected, else destroyed on the host with one command per host; a VM the
 * agent could not destroy fails alone (SYS.1006 with the agent's reason), an unreachable host fails its VMs (HOST.1010,
 * and the host is marked Disconnected).
 */
async function destroyBatch(app: DomainContext, items: Array<GcBatchItem<DestroyVmContext>>): Promise<GcResult[]> {
  const hostUuids = [...new Set(items.map((i) => i.context.hostUuid))];
  const [hostRows, vmRows] = await Promise.all([
    app.db.select({ uuid: hosts.uuid, status: hosts.status }).from(hosts).where(inArray(hosts.uuid, hostUuids)),
    app.db
      .select({ uuid: vmInstances.uuid, state: vmInstances.state, hostUuid: vmInstances.hostUuid })
      .from(vmInstances)
      .where(
        inArray(
          vmInstances.uuid,
          items.map((i) => i.context.vmUuid),
        ),
      ),
  ]);
  const hostStatus = new Map(hostRows.map((h) => [h.uuid, h.status]));
  const vmRow = new Map(vmRows.map((v) => [v.uuid, v]));
  const results: GcResult[] = new Array(items.length);
  const toDestroy = new Map<string, number[]>(); // host uuid → indexes of the items to destroy there
  items.forEach((item, i) => {
    const { hostUuid, vmUuid } = item.context;
    const status = hostStatus.get(hostUuid);
    const vm = vmRow.get(vmUuid);
    if (status === undefined)
      results[i] = 'cancel'; // the host is gone, and the VM with it
    // Recovered since: the user's VM again (reconciliation records it Running if it still runs there) — unless the
    // database places it on another host or on none while it was never started (reconciliation found it misplaced).
    else if (vm !== undefined && vm.state !== 'Destroyed' && !((vm.hostUuid !== null && vm.hostUuid !== hostUuid) || vm.state === 'Created'))
      results[i] = 'cancel';
    else if (status !== 'Connected' || item.signal.aborted) results[i] = 'retry';
    else (toDestroy.get(hostUuid) ?? toDestroy.set(hostUuid, []).get(hostUuid)!).push(i);
  });
  const work = [...toDestroy].flatMap(([hostUuid, indexes]) =>
    Array.from({ length: Math.ceil(indexes.length / DESTROY_BATCH) }, (_, k) => ({
      hostUuid,
      indexes: indexes.slice(k * DESTROY_BATCH, (k + 1) * DESTROY_BATCH),
    })),
  );
  let next = 0;
  const worker = async () => {
    while (next < work.length) {
      const { hostUuid, indexes } = work[next++];
      const uuids = indexes.map((i) => items[i].context.vmUuid);
      try {
        const reply = await hostCall(app, hostUuid, '/vm/batchdestroy', { uuids });
        const byVm = new Map(reply.results.map((r) => [r.uuid, r]));
        indexes.forEach((i, k) => {
          const r = byVm.get(uuids[k]);
          results[i] = r?.success
            ? 'done'
            : { error: err('SYS.1006', `agent /vm/batchdestroy failed for VM[uuid:${uuids[k]}]: ${r?.error ?? 'no result for the VM'}`) };
        });
      } catch (error) {
        for (const i of indexes) results[i] = { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(HOSTS_AT_ONCE, work.length) }, worker));
  return results;
}

/**
 * Persists the host-side destroy of a VM whose host could not be reached (or that runs where it should not:
 * reconciliation, `runSoon`, at most one pending job per VM and host).
 */
export async function destroyOnHostLater(app: DomainContext, vm: Pick<VmRow, 'uuid' | 'name'>, hostUuid: string, seenAt?: number): Promise<boolean> {
  const context: DestroyVmContext = { vmUuid: vm.uuid, vmName: vm.name, hostUuid };
  const name = `gc-vm-${vm.uuid}-on-host-${hostUuid}`;
  if (seenAt !== undefined) {
    // Reconciliation saw it running at `seenAt`: not when a job for it is pending or has run since.
    const [pending] = await app.db
      .select({ uuid: gcJobs.uuid })
      .from(gcJobs)
      .where(and(eq(gcJobs.name, name), or(inArray(gcJobs.status, ['Idle', 'Processing']), gte(gcJobs.lastOpDate, new Date(seenAt)))))
      .limit(1);
    if (pending) return false;
  }
  await app.gc.submit({ name, runner: DESTROY_VM_ON_HOST, context, resourceUuid: hostUuid, runSoon: seenAt !== undefined });
  return true;
}

export const DELETE_VOLUME_BITS = 'DeleteVolumeBits';

interface VolumeBitsContext {
  hostUuid: string;
  volumeUuid: string;
  installPath: string;
  primaryStorageUuid: string | null;
}

export function registerVolumeBitsCollector(app: DomainContext): void {
  app.gc.register({
    name: DELETE_VOLUME_BITS,
    intervalMs: () => app.globalConfig.getMs('gc', 'vm.destroy.interval'),
    async run(ctx: VolumeBitsContext) {
      const host = await app.use('hosts').get(ctx.hostUuid);
      if (!host) return 'cancel'; // the host and its local files are gone
      if (host.status !== 'Connected') return 'retry';
      await app.use('primaryStorage').deleteVolume(ctx.hostUuid, {
        installPath: ctx.installPath,
        primaryStorageUuid: ctx.primaryStorageUuid ?? undefined,
      });
      return 'done';
    },
  });
}

/**
 * Deletes a volume's file through its host. When the host cannot be reached the deletion becomes a GC job (run
 * when the host reconnects), so no file is ever silently left behind.
 */
export async function deleteVolumeBits(
  app: DomainContext,
  hostUuid: string,
  v: { uuid: string; installPath: string | null; primaryStorageUuid: string | null },
): Promise<void> {
  if (!v.installPath) return;
  const context: VolumeBitsContext = { hostUuid, volumeUuid: v.uuid, installPath: v.installPath, primaryStorageUuid: v.primaryStorageUuid };
  const later = () => app.gc.submit({ name: `gc-volume-bits-${v.uuid}-on-host-${hostUuid}`, runner: DELETE_VOLUME_BITS, context, resourceUuid: hostUuid });
  const host = await app.use('hosts').get(hostUuid);
  if (!host) return;
  if (host.status !== 'Connected') return void (await later());
  try {
    await app.use('primaryStorage').deleteVolume(hostUuid, { installPath: v.installPath, primaryStorageUuid: v.primaryStorageUuid ?? undefined });
  } catch (e) {
    if (!isUnreachable(e)) throw e;
    await later();
  }
}

export const STOP_VM_ON_HOST = 'StopVmOnHost';

function registerStopVmCollector(app: DomainContext): void {
  app.gc.register({
    name: STOP_VM_ON_HOST,
    intervalMs: () => app.globalConfig.getMs('gc', 'vm.destroy.interval'),
    async run(ctx: DestroyVmContext) {
      const host = await app.use('hosts').get(ctx.hostUuid);
      if (!host) return 'cancel';
      const vm = await app.use('vms').get(ctx.vmUuid);
      // Started again on that same host since: it is meant to run there now.
      if (vm && vm.hostUuid === ctx.hostUuid && vm.state === 'Running') return 'cancel';
      if (host.status !== 'Connected') return 'retry';
      await hostCall(app, ctx.hostUuid, '/vm/stop', { uuid: ctx.vmUuid, timeout: 0 });
      return 'done';
    },
  });
}

/** Persists the host-side stop of a VM cold-stopped while its host could not be reached. */
export async function stopOnHostLater(app: DomainContext, vm: VmRow, hostUuid: string): Promise<void> {
  const context: DestroyVmContext = { vmUuid: vm.uuid, vmName: vm.name, hostUuid };
  await app.gc.submit({ name: `gc-stop-vm-${vm.uuid}-on-host-${hostUuid}`, runner: STOP_VM_ON_HOST, context, resourceUuid: hostUuid });
}

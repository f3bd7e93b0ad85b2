// The VM module's garbage collectors (release notes §4, zstack-internals.md §2.2–2.3): a VM destroyed while its
// host is unreachable is Destroyed in the database at once (capacity and IP returned); the host-side destroy is
// a persisted job, run when the host reconnects (event) or on its timer, cancelled when the host is deleted or
// the VM was recovered in the meantime.
import type { App } from '../app.js';
import { isUnreachable } from '../agent-client/index.js';
import { hostCall } from './hypervisor.js';
import type { VmRow } from './inventory.js';

export const DESTROY_VM_ON_HOST = 'DestroyVmOnHost';

interface DestroyVmContext {
  vmUuid: string;
  vmName: string;
  hostUuid: string;
}

export function registerVmGarbageCollectors(app: App): void {
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
    async run(ctx: DestroyVmContext) {
      const host = await app.services.hosts.get(ctx.hostUuid);
      if (!host) return 'cancel'; // the host is gone, and the VM with it
      const vm = await app.services.vms.get(ctx.vmUuid);
      if (vm && vm.state !== 'Destroyed') return 'cancel'; // recovered since: it is the user's VM again
      if (host.status !== 'Connected') return 'retry';
      await hostCall(app, ctx.hostUuid, '/vm/destroy', { uuid: ctx.vmUuid });
      return 'done';
    },
  });
}

/** Persists the host-side destroy of a VM whose host could not be reached. */
export async function destroyOnHostLater(app: App, vm: VmRow, hostUuid: string): Promise<void> {
  const context: DestroyVmContext = { vmUuid: vm.uuid, vmName: vm.name, hostUuid };
  await app.gc.submit({ name: `gc-vm-${vm.uuid}-on-host-${hostUuid}`, runner: DESTROY_VM_ON_HOST, context, resourceUuid: hostUuid });
}

export const DELETE_VOLUME_BITS = 'DeleteVolumeBits';

interface VolumeBitsContext {
  hostUuid: string;
  volumeUuid: string;
  installPath: string;
  primaryStorageUuid: string | null;
}

export function registerVolumeBitsCollector(app: App): void {
  app.gc.register({
    name: DELETE_VOLUME_BITS,
    intervalMs: () => app.globalConfig.getMs('gc', 'vm.destroy.interval'),
    async run(ctx: VolumeBitsContext) {
      const host = await app.services.hosts.get(ctx.hostUuid);
      if (!host) return 'cancel'; // the host and its local files are gone
      if (host.status !== 'Connected') return 'retry';
      await hostCall(app, ctx.hostUuid, '/primarystorage/volume/delete', { installPath: ctx.installPath, primaryStorageUuid: ctx.primaryStorageUuid });
      return 'done';
    },
  });
}

/**
 * Deletes a volume's file through its host. When the host cannot be reached the deletion becomes a GC job (run
 * when the host reconnects), so no file is ever silently left behind.
 */
export async function deleteVolumeBits(
  app: App,
  hostUuid: string,
  v: { uuid: string; installPath: string | null; primaryStorageUuid: string | null },
): Promise<void> {
  if (!v.installPath) return;
  const context: VolumeBitsContext = { hostUuid, volumeUuid: v.uuid, installPath: v.installPath, primaryStorageUuid: v.primaryStorageUuid };
  const later = () =>
    app.gc.submit({ name: `gc-volume-bits-${v.uuid}-on-host-${hostUuid}`, runner: DELETE_VOLUME_BITS, context, resourceUuid: hostUuid });
  const host = await app.services.hosts.get(hostUuid);
  if (!host) return;
  if (host.status !== 'Connected') return void (await later());
  try {
    await hostCall(app, hostUuid, '/primarystorage/volume/delete', { installPath: v.installPath, primaryStorageUuid: v.primaryStorageUuid });
  } catch (e) {
    if (!isUnreachable(e)) throw e;
    await later();
  }
}

export const STOP_VM_ON_HOST = 'StopVmOnHost';

function registerStopVmCollector(app: App): void {
  app.gc.register({
    name: STOP_VM_ON_HOST,
    intervalMs: () => app.globalConfig.getMs('gc', 'vm.destroy.interval'),
    async run(ctx: DestroyVmContext) {
      const host = await app.services.hosts.get(ctx.hostUuid);
      if (!host) return 'cancel';
      const vm = await app.services.vms.get(ctx.vmUuid);
      // Started again on that same host since: it is meant to run there now.
      if (vm && vm.hostUuid === ctx.hostUuid && vm.state === 'Running') return 'cancel';
      if (host.status !== 'Connected') return 'retry';
      await hostCall(app, ctx.hostUuid, '/vm/stop', { uuid: ctx.vmUuid, timeout: 0 });
      return 'done';
    },
  });
}

/** Persists the host-side stop of a VM cold-stopped while its host could not be reached. */
export async function stopOnHostLater(app: App, vm: VmRow, hostUuid: string): Promise<void> {
  const context: DestroyVmContext = { vmUuid: vm.uuid, vmName: vm.name, hostUuid };
  await app.gc.submit({ name: `gc-stop-vm-${vm.uuid}-on-host-${hostUuid}`, runner: STOP_VM_ON_HOST, context, resourceUuid: hostUuid });
}

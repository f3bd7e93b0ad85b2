// The VM module's garbage collectors (release notes §4, zstack-internals.md §2.2–2.3): a VM destroyed while its
// host is unreachable is Destroyed in the database at once (capacity and IP returned); the host-side destroy is
// a persisted job, run when the host reconnects (event) or on its timer, cancelled when the host is deleted or
// the VM was recovered in the meantime.
import type { App } from '../app.js';
import { hostCall } from './hypervisor.js';
import type { VmRow } from './inventory.js';

export const DESTROY_VM_ON_HOST = 'DestroyVmOnHost';

interface DestroyVmContext {
  vmUuid: string;
  vmName: string;
  hostUuid: string;
}

export function registerVmGarbageCollectors(app: App): void {
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

// VMs and volumes: inventories, APIs, settings, the cascade nodes, the periodic expunge and the services other
// domains use (`app.use('vms')`, `app.use('volumes')`).
import { defineDomain, type DomainContext } from '../core/domain.js';
import { toApiError } from '../core/errors.js';
import { registerVmCascade } from './cascade.js';
import { registerVmTags } from './tags.js';
import { registerComputeOps } from './compute-ops.js';
import { vmHandlers } from './handlers.js';
import { volumeLifecycleHandlers } from './volume-handlers.js';
import { nicDescriptor, vmDescriptor, volumeDescriptor } from './inventory.js';
import { VmService } from './service.js';
import { VolumeService } from './volumes.js';
import { registerVmGarbageCollectors } from './gc.js';
import { registerPlacementFences } from './allocation/fences.js';
import { applyFlatDhcpOnHost } from './hypervisor.js';
import { aloneAtBoot } from '../core/alone.js';
import { Reconciler } from './reconcile.js';

declare module '../services.js' {
  interface Services {
    vms: VmService;
    volumes: VolumeService;
  }
}

// The vm domain's public face: what other domains may use besides `ctx.use('vms')` / `ctx.use('volumes')`.
export { createVm, type VmCreateSpec } from './create.js';
export { hostCall } from './hypervisor.js';
export { nicInventory, vmDescriptor, volumeInventory, type NicRow, type VmRow, type VolumeRow } from './inventory.js';
export { deleteVolumeBits } from './gc.js';
export { installPathOf as volumeInstallPathOf } from './start-flow.js';
export { volumeLockKey } from './volumes.js';
export { type VmService } from './service.js';
export { vmLockKey, type VmNetworkServiceExtension } from './ops.js';
export { notInStateErr, requireState } from './states.js';
export { taggedHostname } from './tags.js';

export const vmModule = defineDomain({ name: 'vm', needs: ['hosts', 'networks', 'primaryStorage'], provides: ['vms', 'volumes'], register });

/** Registers the vm domain: inventories, handlers, cascade nodes, settings and its service. */
function register(app: DomainContext): void {
  const gc = app.globalConfig;
  const policies = ['Direct', 'Delay', 'Never'];
  gc.define({
    category: 'vm',
    name: 'deletionPolicy',
    type: 'string',
    defaultValue: 'Delay',
    validValues: policies,
    description:
      'What DestroyVmInstance does: Direct removes the VM, Delay keeps it Destroyed (recoverable) until expungePeriod, Never keeps it until ExpungeVmInstance',
  });
  gc.define({
    category: 'vm',
    name: 'expungePeriod',
    type: 'seconds',
    defaultValue: '604800',
    min: 1,
    description: 'Seconds a Destroyed VM is kept before it is expunged (Delay policy)',
  });
  gc.define({
    category: 'vm',
    name: 'expungeInterval',
    type: 'seconds',
    defaultValue: '3600',
    min: 1,
    description: 'Seconds between runs of the VM expunge task',
  });
  gc.define({
    category: 'volume',
    name: 'deletionPolicy',
    type: 'string',
    defaultValue: 'Delay',
    validValues: policies,
    description: 'What DeleteDataVolume does: Direct removes the volume, Delay keeps it Deleted until expungePeriod, Never keeps it',
  });
  gc.define({
    category: 'volume',
    name: 'expungePeriod',
    type: 'seconds',
    defaultValue: '259200',
    min: 1,
    description: 'Seconds a Deleted volume is kept before it is expunged (Delay policy)',
  });
  gc.define({
    category: 'volume',
    name: 'expungeInterval',
    type: 'seconds',
    defaultValue: '3600',
    min: 1,
    description: 'Seconds between runs of the volume expunge task',
  });

  gc.define({
    category: 'vm',
    name: 'reconcile.interval',
    type: 'seconds',
    defaultValue: '60',
    min: 1,
    max: 86400,
    description: 'Seconds between reconciliations of the database with what every Connected host runs (/vm/vmsync per host; also on every host connect)',
  });
  gc.define({
    category: 'vm',
    name: 'reconcile.parallelismDegree',
    type: 'int',
    defaultValue: '16',
    min: 1,
    max: 1000,
    description: 'Hosts asked for their VMs at the same time by one reconciliation round',
  });

  registerVmGarbageCollectors(app);
  const vms = new VmService(app);
  const volumes = new VolumeService(app, vms);
  app.provide('vms', vms);
  app.provide('volumes', volumes);
  app.addInventory(vmDescriptor);
  app.addInventory(nicDescriptor);
  app.addInventory(volumeDescriptor);
  app.addHandlers(vmHandlers(app, vms, volumes));
  app.addHandlers(volumeLifecycleHandlers(app, vms, volumes));
  registerVmCascade(app, vms);
  registerVmTags(app, vms);
  registerComputeOps(app, vms);
  registerPlacementFences(app);

  // Maintenance (ChangeHostState maintain): running VMs move to another host; those that cannot are stopped
  // (upstream's default host.maintenance.policy StopVmOnMigrationFailure).
  app.use('hosts').beforeMaintenance(async (host) => {
    for (const vm of await vms.runningOn(host.uuid)) {
      await vms.migrate(vm.uuid).catch(async (e) => {
        console.warn(`[vm] maintenance of host[uuid:${host.uuid}]: migrating VM[uuid:${vm.uuid}] failed (${toApiError(e).message}); stopping it`);
        await vms.stop(vm.uuid, 'cold');
      });
    }
  });

  // Primary storage enters maintenance: every VM with a volume on it stops (upstream PrimaryStorageBase, 2.0).
  app.use('primaryStorage').beforeMaintenance((psUuid) => vms.stopUsingPrimaryStorage(psUuid));
  // Primary storage leaves a cluster: the VMs running there with a volume on it stop (upstream PrimaryStorageBase).
  app.use('primaryStorage').beforeDetach((psUuid, clusterUuid) => vms.stopUsingPrimaryStorage(psUuid, clusterUuid));

  // An L2 network leaves a cluster: VMs there using it cannot run (upstream VmCascadeExtension stops them).
  app.use('networks').onL2DetachFromCluster((l2Uuid, clusterUuid) => vms.stopUsingL2InCluster(l2Uuid, clusterUuid));

  // Reconciliation with the hosts' truth (vm/reconcile.ts): at start when alone (counters from rows), for a host
  // when it connects, and for every Connected host each vm/reconcile.interval (the first round right after start).
  const reconciler = new Reconciler(app, vms);
  app.onBoot(async () => {
    if (await aloneAtBoot(app)) await reconciler.recomputeAtBoot();
  });
  app.use('hosts').afterConnect((host) => reconciler.reconcileHost(host.uuid));
  app.use('hosts').afterConnect((host) => applyFlatDhcpOnHost(app, host));
  let lastRound = 0;
  app.every(
    'vm-reconcile',
    () => Math.min(1000, gc.getMs('vm', 'reconcile.interval')),
    async () => {
      if (Date.now() - lastRound < gc.getMs('vm', 'reconcile.interval')) return;
      lastRound = Date.now();
      await reconciler.reconcileAll();
    },
  );

  app.every(
    'vm-expunge',
    () => gc.getMs('vm', 'expungeInterval'),
    () => vms.expungeExpired(),
  );
  app.every(
    'volume-expunge',
    () => gc.getMs('volume', 'expungeInterval'),
    () => volumes.expungeExpired(),
  );
}

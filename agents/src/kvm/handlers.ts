// kvm host agent: HTTP operations → backend methods.
import type { AgentPart, Ctx } from '../lib/handler.js';
import type { KvmBackend } from './backend.js';
import { snapshotOpsFor } from './snapshots.js';

export function kvmPart(backend: KvmBackend): AgentPart {
  const snapshots = snapshotOpsFor(backend);
  return {
    handlers: {
      KvmHostConnect: (ctx) => backend.connect(ctx),
      KvmHostPing: (ctx) => backend.ping(ctx),
      KvmHostEcho: async () => ({}),
      KvmHostCapacity: (ctx) => backend.capacity(ctx),
      KvmHostFact: (ctx) => backend.fact(ctx),
      KvmVmStart: (ctx) => backend.startVm(ctx),
      KvmVmStop: (ctx) => backend.stopVm(ctx),
      KvmVmReboot: (ctx) => backend.rebootVm(ctx),
      KvmVmDestroy: (ctx) => backend.destroyVm(ctx),
      KvmVmBatchDestroy: (ctx) => batchDestroy(backend, ctx),
      KvmVmSync: (ctx) => backend.vmSync(ctx),
      KvmVmCheckState: (ctx) => backend.checkState(ctx),
      KvmVmAttachDataVolume: (ctx) => backend.attachDataVolume(ctx),
      KvmVmDetachDataVolume: (ctx) => backend.detachDataVolume(ctx),
      KvmVmAttachNic: (ctx) => backend.attachNic(ctx),
      KvmVmDetachNic: (ctx) => backend.detachNic(ctx),
      KvmVmAttachIso: (ctx) => backend.attachIso(ctx),
      KvmVmDetachIso: (ctx) => backend.detachIso(ctx),
      KvmHostShell: (ctx) => backend.runShell(ctx),
      KvmVmGetVncPort: (ctx) => backend.getVncPort(ctx),
      KvmFlatDhcpApply: (ctx) => backend.applyFlatDhcp(ctx),
      KvmVmMigrate: (ctx) => backend.migrateVm(ctx),
      KvmSecurityGroupApplyRules: (ctx) => backend.applySecurityGroupRules(ctx),
      KvmSecurityGroupRefreshRulesOnHost: (ctx) => backend.refreshSecurityGroupRules(ctx),
      KvmPrimaryStorageVolumeCreate: (ctx) => backend.createVolume(ctx),
      KvmPrimaryStorageVolumeDelete: (ctx) => backend.deleteVolume(ctx),
      KvmPrimaryStorageCapacity: (ctx) => backend.storageCapacity(ctx),
      KvmLocalStorageVolumeCopy: (ctx) => backend.copyLocalVolume(ctx),
      KvmLocalStorageCheckBits: (ctx) => backend.checkLocalBits(ctx),
      KvmVolumeTakeSnapshot: (ctx) => snapshots.takeSnapshot(ctx),
      KvmVolumeMergeSnapshot: (ctx) => snapshots.mergeSnapshot(ctx),
      KvmVolumeRevertFromSnapshot: (ctx) => snapshots.revert(ctx),
      KvmVolumeFlatten: (ctx) => snapshots.flatten(ctx),
      KvmNfsPrimaryStorageMount: (ctx) => backend.nfsMount(ctx),
      KvmNfsPrimaryStorageUnmount: (ctx) => backend.nfsUnmount(ctx),
      KvmNfsPrimaryStorageGetCapacity: (ctx) => backend.nfsCapacity(ctx),
    },
    close: () => backend.close(),
  };
}

/**
 * /vm/batchdestroy: each VM as by /vm/destroy, one after the other (for libvirt: one virsh at a time), one result per
 * VM; the command's deadline stops the rest (the caller then retries them all: destroying an absent VM succeeds).
 */
async function batchDestroy(backend: KvmBackend, ctx: Ctx<'KvmVmBatchDestroy'>) {
  const results: Array<{ uuid: string; success: boolean; error?: string }> = [];
  for (const uuid of ctx.body.uuids) {
    ctx.signal.throwIfAborted();
    try {
      await backend.destroyVm({ ...ctx, operationId: 'KvmVmDestroy', path: '/vm/destroy', body: { uuid } });
      results.push({ uuid, success: true });
    } catch (e) {
      if (ctx.signal.aborted) throw e;
      results.push({ uuid, success: false, error: e instanceof Error ? e.message : String(e) });
    }
  }
  return { results };
}

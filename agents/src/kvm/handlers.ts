// kvm host agent: HTTP operations → backend methods.
import type { AgentPart } from '../lib/handler.js'
import type { KvmBackend } from './backend.js'

export function kvmPart(backend: KvmBackend): AgentPart {
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
      KvmVmSync: (ctx) => backend.vmSync(ctx),
      KvmVmCheckState: (ctx) => backend.checkState(ctx),
      KvmVmAttachDataVolume: (ctx) => backend.attachDataVolume(ctx),
      KvmVmDetachDataVolume: (ctx) => backend.detachDataVolume(ctx),
      KvmVmAttachNic: (ctx) => backend.attachNic(ctx),
      KvmVmDetachNic: (ctx) => backend.detachNic(ctx),
      KvmVmGetVncPort: (ctx) => backend.getVncPort(ctx),
      KvmVmMigrate: (ctx) => backend.migrateVm(ctx),
      KvmPrimaryStorageVolumeCreate: (ctx) => backend.createVolume(ctx),
      KvmPrimaryStorageVolumeDelete: (ctx) => backend.deleteVolume(ctx),
      KvmPrimaryStorageCapacity: (ctx) => backend.storageCapacity(ctx),
    },
    close: () => backend.close(),
  }
}

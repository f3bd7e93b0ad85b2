// VM and volume APIs. `check` answers bad requests before the 202 (404 for unknown resources, 409 for a VM in the
// wrong state); `run` does the work under the VM's lock, where the state is checked again.
import { eq } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import { argErr, notFound } from '../core/errors.js';
import { defineHandlers } from '../core/handlers.js';
import { vmNics } from '../db/schema/index.js';
import { createVmRows, specFromMessage, type VmCreateSpec } from './create.js';
import { vmInventoryFromRows, volumeInventory } from './inventory.js';
import type { VmService } from './service.js';
import { requireState, type VmOperation } from './states.js';
import type { VolumeService } from './volumes.js';

export function vmHandlers(app: DomainContext, vms: VmService, vols: VolumeService) {
  /** Existence (404) and state (409) before the job starts. */
  const checkVm =
    (op: VmOperation, field = 'uuid') =>
    async (msg: Record<string, any>) => {
      const vm = await vms.require(msg[field], field);
      requireState(vm.state, op);
    };
  const reply = async (uuid: string) => ({ inventory: (await vms.inventory(uuid)) as any });

  return defineHandlers({
    CreateVmInstance: {
      check: (msg) => specFromMessage(app, msg),
      async run(msg, _call, checked?: VmCreateSpec) {
        // The spec the check produced (upstream's interceptor runs once); computed here only when run without check.
        const spec = checked ?? (await specFromMessage(app, msg));
        // The reply from the rows the flow ends with (what it wrote, as it wrote them: no read back).
        const created = await createVmRows(app, vms, spec);
        return { inventory: vmInventoryFromRows(created.vm, created.nics, created.volumes) as any };
      },
    },
    StartVmInstance: {
      check: checkVm('StartVmInstance'),
      async run(msg) {
        await vms.start(msg.uuid, { clusterUuid: msg.clusterUuid, hostUuid: msg.hostUuid });
        return reply(msg.uuid);
      },
    },
    StopVmInstance: {
      check: checkVm('StopVmInstance'),
      async run(msg) {
        await vms.stop(msg.uuid, msg.type ?? 'grace');
        return reply(msg.uuid);
      },
    },
    RebootVmInstance: {
      check: checkVm('RebootVmInstance'),
      async run(msg) {
        await vms.reboot(msg.uuid);
        return reply(msg.uuid);
      },
    },
    DestroyVmInstance: {
      async check(msg) {
        const vm = await vms.get(msg.uuid);
        if (vm && vm.state !== 'Created' && vm.state !== 'Destroyed') requireState(vm.state, 'DestroyVmInstance');
      },
      async run(msg) {
        await vms.destroy(msg.uuid);
        return {};
      },
    },
    RecoverVmInstance: {
      check: checkVm('RecoverVmInstance'),
      async run(msg) {
        await vms.recover(msg.uuid);
        return reply(msg.uuid);
      },
    },
    ExpungeVmInstance: {
      check: checkVm('ExpungeVmInstance'),
      async run(msg) {
        await vms.expunge(msg.uuid);
        return {};
      },
    },
    MigrateVm: {
      async check(msg) {
        const vm = await vms.require(msg.vmInstanceUuid, 'vmInstanceUuid');
        requireState(vm.state, 'MigrateVm');
        if (msg.hostUuid) {
          if (msg.hostUuid === vm.hostUuid) throw argErr(`VM[uuid:${vm.uuid}] is already on host[uuid:${msg.hostUuid}]`);
          await app
            .use('hosts')
            .require(msg.hostUuid)
            .catch(() => {
              throw notFound('HostVO', msg.hostUuid!, 'hostUuid');
            });
        }
      },
      async run(msg) {
        await vms.migrate(msg.vmInstanceUuid, msg.hostUuid);
        return reply(msg.vmInstanceUuid);
      },
    },
    AttachL3NetworkToVm: {
      check: checkVm('AttachL3NetworkToVm', 'vmInstanceUuid'),
      async run(msg) {
        await vms.attachL3(msg.vmInstanceUuid, msg.l3NetworkUuid, msg.staticIp);
        return reply(msg.vmInstanceUuid);
      },
    },
    DetachL3NetworkFromVm: {
      async check(msg) {
        const [nic] = await app.db.select().from(vmNics).where(eq(vmNics.uuid, msg.vmNicUuid));
        if (!nic) throw notFound('VmNicVO', msg.vmNicUuid, 'vmNicUuid');
        requireState((await vms.require(nic.vmInstanceUuid)).state, 'DetachL3NetworkFromVm');
      },
      async run(msg) {
        return reply(await vms.detachNic(msg.vmNicUuid));
      },
    },
    CreateDataVolume: {
      check: async (msg) => void (await vols.checkCreate(msg)),
      async run(msg) {
        return { inventory: volumeInventory(await vols.create(msg)) as any };
      },
    },
    AttachDataVolumeToVm: {
      async check(msg) {
        vols.checkAttachable(await vols.require(msg.volumeUuid, 'volumeUuid'));
        requireState((await vms.require(msg.vmInstanceUuid, 'vmInstanceUuid')).state, 'AttachDataVolumeToVm');
      },
      async run(msg) {
        await vols.attach(msg.volumeUuid, msg.vmInstanceUuid);
        return { inventory: volumeInventory(await vols.require(msg.volumeUuid)) as any };
      },
    },
    DetachDataVolumeFromVm: {
      check: async (msg) => void (await vols.require(msg.uuid)),
      async run(msg) {
        await vols.detach(msg.uuid, msg.vmUuid);
        return { inventory: volumeInventory(await vols.require(msg.uuid)) as any };
      },
    },
    DeleteDataVolume: {
      async run(msg) {
        await vols.delete(msg.uuid);
        return {};
      },
    },
  });
}

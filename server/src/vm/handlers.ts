// VM and volume APIs. `check` answers bad requests before the 202 (404 for unknown resources, 409 for a VM in the
// wrong state); `run` does the work under the VM's lock, where the state is checked again.
import { eq, sql } from 'drizzle-orm';
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
    GetVmAttachableL3Network: {
      async run(msg, call) {
        const vm = await vms.require(msg.vmInstanceUuid, 'vmInstanceUuid');
        if (!vm.clusterUuid) return { inventories: [] };
        // Enabled L3s on an L2 attached to the VM's cluster, not on the VM yet (upstream's VmInstanceBase); a Normal
        // account's own or shared ones only.
        const session = call.session;
        const visible =
          session && session.accountType !== 'SystemAdmin'
            ? sql`AND l3.uuid IN (SELECT resource_uuid FROM account_resource_refs WHERE account_uuid = ${session.accountUuid}
                    UNION ALL SELECT resource_uuid FROM shared_resources WHERE receiver_account_uuid = ${session.accountUuid} OR to_public)`
            : sql``;
        const result = (await app.db.execute(sql`
          SELECT l3.uuid FROM l3_networks l3 JOIN l2_network_cluster_refs ref ON ref.l2_network_uuid = l3.l2_network_uuid
           WHERE ref.cluster_uuid = ${vm.clusterUuid} AND l3.state = 'Enabled'
             AND l3.uuid NOT IN (SELECT l3_network_uuid FROM vm_nics WHERE vm_instance_uuid = ${vm.uuid}) ${visible}`)) as unknown as {
          rows: Array<{ uuid: string }>;
        };
        return { inventories: await app.use('networks').l3Inventories(result.rows.map((r) => r.uuid)) };
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

// The volume lifecycle APIs besides create/attach/detach/delete (upstream 1.1 VolumeBase and VolumeManagerImpl):
// recover and expunge what the Delay/Never deletion policy kept, update, enable/disable, the format list and the
// attach candidates both ways.
import { updateHandler } from '../core/crud.js';
import type { DomainContext } from '../core/domain.js';
import { volumes } from '../db/schema/index.js';
import { defineHandlers } from '../core/handlers.js';
import { volumeInventory } from './inventory.js';
import type { VmService } from './service.js';
import { attachableVms, attachableVolumes, checkVmLooksForVolumes, checkVolumeLooksForVm, VOLUME_FORMATS } from './volume-candidates.js';
import type { VolumeService } from './volumes.js';

export function volumeLifecycleHandlers(app: DomainContext, vms: VmService, vols: VolumeService) {
  const reply = (v: Parameters<typeof volumeInventory>[0]) => ({ inventory: volumeInventory(v) as any });
  return defineHandlers({
    RecoverDataVolume: {
      check: async (msg) => void (await vols.requireDeleted(msg.uuid)),
      run: async (msg) => reply(await vols.recover(msg.uuid)),
    },
    ExpungeDataVolume: {
      async run(msg) {
        await vols.expunge(msg.uuid);
        return {};
      },
    },
    UpdateVolume: updateHandler(app, { table: volumes, entity: 'VolumeVO', inventory: volumeInventory, fields: ['name', 'description'] }),
    ChangeVolumeState: {
      check: async (msg) => void (await vols.requireStateChangeable(msg.uuid)),
      run: async (msg) => reply(await vols.changeState(msg.uuid, msg.stateEvent)),
    },
    GetVolumeFormat: {
      run: async () => ({ formats: VOLUME_FORMATS }),
    },
    GetDataVolumeAttachableVm: {
      check: async (msg) => checkVolumeLooksForVm(await vols.require(msg.volumeUuid, 'volumeUuid')),
      run: async (msg, call) => ({ inventories: (await attachableVms(app, await vols.require(msg.volumeUuid, 'volumeUuid'), call)) as any }),
    },
    GetVmAttachableDataVolume: {
      check: async (msg) => checkVmLooksForVolumes(await vms.require(msg.vmInstanceUuid, 'vmInstanceUuid')),
      run: async (msg, call) => ({ inventories: (await attachableVolumes(app, await vms.require(msg.vmInstanceUuid, 'vmInstanceUuid'), call)) as any }),
    },
  });
}

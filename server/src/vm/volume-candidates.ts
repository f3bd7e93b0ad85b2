// Which data volumes a VM can take and which VMs a data volume can go to (upstream 1.1 VolumeBase
// getCandidateVmForAttaching and VmInstanceBase getAttachableVolume, with the VM's cluster bound where 1.1's admin
// query forgot it): Enabled, unattached data volumes, either Ready on a primary storage attached to the VM's cluster
// in a format the VM's hypervisor uses, or NotInstantiated (they land wherever the VM is); VMs Running or Stopped.
// A Normal account sees only what it owns or was shared with it.
import { and, asc, eq, inArray, isNull, or, sql, type SQL } from 'drizzle-orm';
import type { CallContext } from '../core/context.js';
import type { DomainContext } from '../core/domain.js';
import { argErr, err } from '../core/errors.js';
import { primaryStorageClusterRefs, vmInstances, volumes } from '../db/schema/index.js';
import { vmInventories, volumeInventory, type VmRow, type VolumeRow } from './inventory.js';

/** Upstream's VolumeFormat registry as our hosts see it: KVM writes qcow2 and raw; the simulator reads them too. */
export const VOLUME_FORMATS = [
  { format: 'qcow2', masterHypervisorType: 'KVM', supportingHypervisorTypes: ['KVM', 'Simulator'] },
  { format: 'raw', masterHypervisorType: 'KVM', supportingHypervisorTypes: ['KVM', 'Simulator'] },
  { format: 'iso', supportingHypervisorTypes: [] as string[] },
];

const formatsOf = (hypervisorType: string | null) =>
  VOLUME_FORMATS.filter((f) => !hypervisorType || f.supportingHypervisorTypes.includes(hypervisorType)).map((f) => f.format);
const hypervisorsUsing = (format: string) => VOLUME_FORMATS.find((f) => f.format === format)?.supportingHypervisorTypes ?? [];

const ATTACHABLE_VM_STATES = ['Running', 'Stopped'];

/** For a Normal account's session: `uuidColumn` among the resources it owns or that are shared with it. */
function visibleTo(call: CallContext, uuidColumn: SQL | typeof vmInstances.uuid | typeof volumes.uuid): SQL | undefined {
  const session = call.session;
  if (!session || session.accountType === 'SystemAdmin') return undefined;
  const account = session.accountUuid;
  return sql`${uuidColumn} IN (SELECT resource_uuid FROM account_resource_refs WHERE account_uuid = ${account} UNION ALL SELECT resource_uuid FROM shared_resources WHERE receiver_account_uuid = ${account} OR to_public)`;
}

/** GetDataVolumeAttachableVm's checks on the volume (upstream's interceptor). */
export function checkVolumeLooksForVm(v: VolumeRow): void {
  if (v.type !== 'Data') throw argErr(`volume[uuid:${v.uuid}] is Root volume, can not be attach to vm`);
  if (v.vmInstanceUuid) throw argErr(`volume[uuid:${v.uuid}] has attached to vm[uuid:${v.vmInstanceUuid}]`);
  if (v.state !== 'Enabled') throw argErr(`volume[uuid:${v.uuid}] is in state[${v.state}], data volume can only be attached when state is Enabled`);
  if (v.status !== 'Ready' && v.status !== 'NotInstantiated') {
    throw argErr(`volume[uuid:${v.uuid}] is in status[${v.status}], data volume can only be attached when status is Ready or NotInstantiated`);
  }
}

/** GetVmAttachableDataVolume's check on the VM. */
export function checkVmLooksForVolumes(vm: VmRow): void {
  if (!ATTACHABLE_VM_STATES.includes(vm.state)) {
    throw err('SYS.1006', `vm[uuid:${vm.uuid}] can only attach volume when state is Running or Stopped, current state is ${vm.state}`);
  }
}

export async function attachableVms(app: DomainContext, v: VolumeRow, call: CallContext) {
  checkVolumeLooksForVm(v);
  const conditions = [inArray(vmInstances.state, ATTACHABLE_VM_STATES), eq(vmInstances.type, 'UserVm'), visibleTo(call, vmInstances.uuid)];
  if (v.status === 'Ready') {
    const clusters = app.db
      .select({ uuid: primaryStorageClusterRefs.clusterUuid })
      .from(primaryStorageClusterRefs)
      .where(eq(primaryStorageClusterRefs.primaryStorageUuid, v.primaryStorageUuid ?? ''));
    conditions.push(inArray(vmInstances.clusterUuid, clusters));
    conditions.push(or(isNull(vmInstances.hypervisorType), inArray(vmInstances.hypervisorType, hypervisorsUsing(v.format)))!);
  }
  const rows = await app.db
    .select()
    .from(vmInstances)
    .where(and(...conditions))
    .orderBy(asc(vmInstances.createDate), asc(vmInstances.uuid));
  return vmInventories(rows, app.db);
}

export async function attachableVolumes(app: DomainContext, vm: VmRow, call: CallContext) {
  checkVmLooksForVolumes(vm);
  const reachable = vm.clusterUuid
    ? and(
        eq(volumes.status, 'Ready'),
        inArray(volumes.format, formatsOf(vm.hypervisorType)),
        inArray(
          volumes.primaryStorageUuid,
          app.db
            .select({ uuid: primaryStorageClusterRefs.primaryStorageUuid })
            .from(primaryStorageClusterRefs)
            .where(eq(primaryStorageClusterRefs.clusterUuid, vm.clusterUuid)),
        ),
      )
    : undefined;
  const rows = await app.db
    .select()
    .from(volumes)
    .where(
      and(
        eq(volumes.type, 'Data'),
        eq(volumes.state, 'Enabled'),
        isNull(volumes.vmInstanceUuid),
        reachable ? or(reachable, eq(volumes.status, 'NotInstantiated')) : eq(volumes.status, 'NotInstantiated'),
        visibleTo(call, volumes.uuid),
      ),
    )
    .orderBy(asc(volumes.createDate), asc(volumes.uuid));
  return rows.map(volumeInventory);
}

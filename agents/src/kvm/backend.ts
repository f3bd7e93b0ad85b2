// The seam between the kvm agent's HTTP commands and what actually runs VMs: the in-memory simulator or libvirt.
import type { Ctx } from '../lib/handler.js';
import type { HandlerResult } from '../lib/protocol.js';

export interface KvmBackend {
  readonly name: 'simulator' | 'libvirt';
  connect(ctx: Ctx<'KvmHostConnect'>): Promise<HandlerResult<'KvmHostConnect'>>;
  ping(ctx: Ctx<'KvmHostPing'>): Promise<HandlerResult<'KvmHostPing'>>;
  capacity(ctx: Ctx<'KvmHostCapacity'>): Promise<HandlerResult<'KvmHostCapacity'>>;
  fact(ctx: Ctx<'KvmHostFact'>): Promise<HandlerResult<'KvmHostFact'>>;
  startVm(ctx: Ctx<'KvmVmStart'>): Promise<HandlerResult<'KvmVmStart'>>;
  stopVm(ctx: Ctx<'KvmVmStop'>): Promise<HandlerResult<'KvmVmStop'>>;
  rebootVm(ctx: Ctx<'KvmVmReboot'>): Promise<HandlerResult<'KvmVmReboot'>>;
  destroyVm(ctx: Ctx<'KvmVmDestroy'>): Promise<HandlerResult<'KvmVmDestroy'>>;
  vmSync(ctx: Ctx<'KvmVmSync'>): Promise<HandlerResult<'KvmVmSync'>>;
  checkState(ctx: Ctx<'KvmVmCheckState'>): Promise<HandlerResult<'KvmVmCheckState'>>;
  attachDataVolume(ctx: Ctx<'KvmVmAttachDataVolume'>): Promise<HandlerResult<'KvmVmAttachDataVolume'>>;
  detachDataVolume(ctx: Ctx<'KvmVmDetachDataVolume'>): Promise<HandlerResult<'KvmVmDetachDataVolume'>>;
  attachNic(ctx: Ctx<'KvmVmAttachNic'>): Promise<HandlerResult<'KvmVmAttachNic'>>;
  detachNic(ctx: Ctx<'KvmVmDetachNic'>): Promise<HandlerResult<'KvmVmDetachNic'>>;
  applyFlatDhcp(ctx: Ctx<'KvmFlatDhcpApply'>): Promise<HandlerResult<'KvmFlatDhcpApply'>>;
  attachIso(ctx: Ctx<'KvmVmAttachIso'>): Promise<HandlerResult<'KvmVmAttachIso'>>;
  detachIso(ctx: Ctx<'KvmVmDetachIso'>): Promise<HandlerResult<'KvmVmDetachIso'>>;
  /** KvmRunShell: the simulator records it, a real host runs it (runHostShell). */
  runShell(ctx: Ctx<'KvmHostShell'>): Promise<HandlerResult<'KvmHostShell'>>;
  getVncPort(ctx: Ctx<'KvmVmGetVncPort'>): Promise<HandlerResult<'KvmVmGetVncPort'>>;
  migrateVm(ctx: Ctx<'KvmVmMigrate'>): Promise<HandlerResult<'KvmVmMigrate'>>;
  applySecurityGroupRules(ctx: Ctx<'KvmSecurityGroupApplyRules'>): Promise<HandlerResult<'KvmSecurityGroupApplyRules'>>;
  refreshSecurityGroupRules(ctx: Ctx<'KvmSecurityGroupRefreshRulesOnHost'>): Promise<HandlerResult<'KvmSecurityGroupRefreshRulesOnHost'>>;
  createVolume(ctx: Ctx<'KvmPrimaryStorageVolumeCreate'>): Promise<HandlerResult<'KvmPrimaryStorageVolumeCreate'>>;
  deleteVolume(ctx: Ctx<'KvmPrimaryStorageVolumeDelete'>): Promise<HandlerResult<'KvmPrimaryStorageVolumeDelete'>>;
  storageCapacity(ctx: Ctx<'KvmPrimaryStorageCapacity'>): Promise<HandlerResult<'KvmPrimaryStorageCapacity'>>;
  nfsMount(ctx: Ctx<'KvmNfsPrimaryStorageMount'>): Promise<HandlerResult<'KvmNfsPrimaryStorageMount'>>;
  nfsUnmount(ctx: Ctx<'KvmNfsPrimaryStorageUnmount'>): Promise<HandlerResult<'KvmNfsPrimaryStorageUnmount'>>;
  nfsCapacity(ctx: Ctx<'KvmNfsPrimaryStorageGetCapacity'>): Promise<HandlerResult<'KvmNfsPrimaryStorageGetCapacity'>>;
  copyLocalVolume(ctx: Ctx<'KvmLocalStorageVolumeCopy'>): Promise<HandlerResult<'KvmLocalStorageVolumeCopy'>>;
  checkLocalBits(ctx: Ctx<'KvmLocalStorageCheckBits'>): Promise<HandlerResult<'KvmLocalStorageCheckBits'>>;
  close(): Promise<void>;
}

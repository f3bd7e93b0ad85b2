// What the VM's operation files (lifecycle, deletion, attachments, compute-ops, start-flow, reconcile) work on: the
// VM service's reading, state and shared steps as an interface, with the lock key and the start flow's data. A leaf:
// it imports only types, so service.ts can import the operation files and they need nothing back from it.
import type { DomainContext } from '../core/domain.js';
import type { FlowStep } from '../core/flow.js';
import type { Tx } from '../db/index.js';
import type { vmInstances } from '../db/schema/index.js';
import type { HostRow } from './allocation/host-allocator.js';
import type { NicRow, VmInventory, VmRow, VolumeRow } from './inventory.js';

export const vmLockKey = (uuid: string) => `vm:${uuid}`;

/** Network services a provider applies for VM NICs (e.g. the virtual router's DHCP and DNS). */
export interface VmNetworkServiceExtension {
  name: string;
  /** Before the VM starts (or a NIC is plugged): make the services of these NICs ready. Throwing fails the start. */
  apply(vm: VmRow, nics: NicRow[]): Promise<void>;
  /** The NICs go away or the start is rolled back: withdraw their services (best effort). */
  release(vm: VmRow, nics: NicRow[]): Promise<void>;
}

export interface Placement {
  zoneUuid?: string;
  clusterUuid?: string;
  hostUuid?: string;
  primaryStorageUuidForRootVolume?: string;
}

export interface StartData {
  vmUuid: string;
  placement: Placement;
  /** false: allocate and create the volumes but leave the VM Stopped (CreateStopped). */
  startOnHypervisor: boolean;
  /** Loaded by the first step. */
  vm?: VmRow;
  nics?: NicRow[];
  volumes?: VolumeRow[];
  host?: HostRow;
  /** Primary storage reservations made by this run: released on rollback. */
  psReserved: Array<{ psUuid: string; bytes: number }>;
  instantiated: VolumeRow[];
  /** The state before Starting, restored on rollback. */
  previousState?: string;
}

/** The VM service as the operation files see it (implemented by `VmService`, service.ts). */
export interface VmOps {
  readonly app: DomainContext;
  get(uuid: string, tx?: Tx): Promise<VmRow | undefined>;
  require(uuid: string, field?: string): Promise<VmRow>;
  inventory(uuid: string): Promise<VmInventory>;
  nicsOf(vmUuid: string, tx?: Tx): Promise<NicRow[]>;
  volumesOf(vmUuid: string, tx?: Tx): Promise<VolumeRow[]>;
  /** Runs `fn` under the VM's lock with a fresh row (404 when the VM does not exist). */
  withVm<T>(uuid: string, fn: (vm: VmRow) => Promise<T>, field?: string): Promise<T>;
  emitState(vmUuid: string, oldState: string, newState: string, hostUuid?: string | null, primaryStorageUuids?: string[]): void;
  setState(vm: VmRow, state: string, extra?: Partial<typeof vmInstances.$inferInsert>, tx?: Tx): Promise<void>;
  applyNetworkServices(vm: VmRow, nics: NicRow[]): Promise<void>;
  releaseNetworkServices(vm: VmRow, nics: NicRow[]): Promise<void>;
  /** Creates the volume file on the host's primary storage and records it Ready (primary storage already reserved). */
  instantiateVolume(hostUuid: string, v: VolumeRow): Promise<void>;
  /** Undoes instantiateVolume (rollback). */
  uninstantiateVolume(hostUuid: string, v: VolumeRow): Promise<void>;
  /** Deletes a volume's file (best effort) and gives its bytes back. */
  deleteVolumeBits(v: VolumeRow, hostUuid: string | null | undefined, tx?: Tx): Promise<void>;
  /** The start steps with the state bookkeeping around them. */
  startFlowSteps(startOnHypervisor: boolean): FlowStep<StartData>[];
}

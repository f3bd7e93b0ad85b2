// The storage type extension point: a primary or backup storage type (NFS, Ceph, iSCSI…) declares what differs
// from the default — where its volumes are, who creates and deletes them (its agent), what attaching to a cluster
// or a host connecting means, the fields its inventory adds — and primary.ts / backup.ts ask the type of the row.
// A type registers its own add handlers and tables in its own file (nfs.ts, ceph.ts, iscsi.ts).
import type { AgentRequest } from '../agent-client/index.js';
import type { Tx } from '../db/index.js';
import type { HostRow } from '../host/index.js';
import type { backupStorage, primaryStorage } from '../db/schema/index.js';

type PrimaryStorageRow = typeof primaryStorage.$inferSelect;
type BackupStorageRow = typeof backupStorage.$inferSelect;

export type VolumeKind = 'rootVolumes' | 'dataVolumes';
/** The whole storage's size, as a storage agent's reply carries it. */
export interface CapacityReply {
  totalCapacity?: number;
  availableCapacity?: number;
}
export type VolumeCreateCmd = AgentRequest<'/primarystorage/volume/create'>;
export type VolumeDeleteCmd = AgentRequest<'/primarystorage/volume/delete'>;

export interface PrimaryStorageType {
  /** The row's `type`, e.g. `NFS`. */
  readonly name: string;
  /**
   * A volume's bits live on one host's own disk (local storage): a VM with such a volume starts only on the host that
   * holds it (its last host), as upstream's local storage allocator requires.
   */
  readonly hostLocal?: boolean;
  /** The volume's install path; default `<mountPath or url>/<kind>/acct-<account>/vol-<uuid>/<uuid>.qcow2`. */
  volumeInstallPath?(ps: PrimaryStorageRow, kind: VolumeKind, volumeUuid: string, accountUuid: string): Promise<string>;
  /** Creates a volume's bits; default: the host's agent (`/primarystorage/volume/create`). */
  createVolume?(ps: PrimaryStorageRow, host: HostRow, cmd: VolumeCreateCmd): Promise<void>;
  /** Deletes a volume's bits (an absent volume is a success); default: the host's agent. */
  deleteVolume?(ps: PrimaryStorageRow, hostUuid: string, cmd: VolumeDeleteCmd): Promise<void>;
  /** After the cluster ref is written (throwing undoes the attachment). */
  afterAttach?(ps: PrimaryStorageRow, clusterUuid: string): Promise<void>;
  /** After the cluster ref is removed. */
  afterDetach?(ps: PrimaryStorageRow, clusterUuid: string): Promise<void>;
  /** A host of an attached cluster (re)connected. */
  afterHostConnect?(ps: PrimaryStorageRow, host: HostRow): Promise<void>;
  /** ReconnectPrimaryStorage: ask its agents again (throwing = Disconnected). */
  reconnect?(ps: PrimaryStorageRow): Promise<void>;
  /** Before the row is deleted: bits the storage made on its own (pools, mounts). Best effort. */
  beforeDelete?(ps: PrimaryStorageRow): Promise<void>;
}

export type BackupStorageCommand =
  '/backupstorage/connect' | '/backupstorage/ping' | '/backupstorage/download' | '/backupstorage/download/progress' | '/backupstorage/delete';

export interface BackupStorageType {
  readonly name: string;
  /** Image downloads are pretended (`sim://`) for it: served by the simulator agent. */
  readonly simulated?: boolean;
  /** Where images go (`installPathOf` in image/ puts them below it). */
  storagePath?(bs: BackupStorageRow): string;
  /**
   * The generic backup storage commands, carried out through the type's own agent protocol. Replies carry the
   * capacities as the generic ones do.
   */
  call?(bs: BackupStorageRow, path: BackupStorageCommand, body: unknown, opts: { timeoutMs?: number }): Promise<unknown>;
  beforeDelete?(bs: BackupStorageRow): Promise<void>;
}

/** Fields a type adds to the inventories of its rows (pure: used by the query engine too). */
export type InventoryFields<Row> = (rows: Row[], db: Tx) => Promise<Map<string, Record<string, unknown>>>;

const primaryFields = new Map<string, InventoryFields<PrimaryStorageRow>>();
const backupFields = new Map<string, InventoryFields<BackupStorageRow>>();

export function definePrimaryStorageInventoryFields(type: string, fields: InventoryFields<PrimaryStorageRow>): void {
  primaryFields.set(type, fields);
}

export function defineBackupStorageInventoryFields(type: string, fields: InventoryFields<BackupStorageRow>): void {
  backupFields.set(type, fields);
}

/** Each row's inventory with its type's extra fields. */
export async function withTypeFields<Row extends { uuid: string; type: string }, Inv extends object>(
  registry: 'primary' | 'backup',
  rows: Row[],
  invs: Inv[],
  db: Tx,
): Promise<Inv[]> {
  const fields = (registry === 'primary' ? primaryFields : backupFields) as unknown as Map<string, InventoryFields<Row>>;
  const extra = new Map<string, Record<string, unknown>>();
  for (const type of new Set(rows.map((r) => r.type))) {
    const read = fields.get(type);
    if (read)
      for (const [uuid, f] of await read(
        rows.filter((r) => r.type === type),
        db,
      ))
        extra.set(uuid, f);
  }
  if (extra.size === 0) return invs;
  return invs.map((inv, i) => ({ ...inv, ...extra.get(rows[i].uuid) }));
}

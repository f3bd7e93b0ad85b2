// Storage: primary storage (volumes; attached to clusters) and backup storage (images; attached to zones).
import { defineDomain, type DomainContext } from '../core/domain.js';
import { registerBackupStorage, type BackupStorageService } from './backup.js';
import { registerPrimaryStorage, type PrimaryStorageService } from './primary.js';
import { registerPrimaryStorageManagement } from './primary-management.js';
import { registerBackupStorageManagement } from './backup-management.js';
import { registerNfsPrimaryStorage } from './nfs.js';
import { registerCephStorage } from './ceph.js';
import { registerIscsiPrimaryStorage } from './iscsi.js';

declare module '../services.js' {
  interface Services {
    primaryStorage: PrimaryStorageService;
    backupStorage: BackupStorageService;
  }
}

// The storage domain's public face.
export type { BackupStorageReply, BackupStorageRow, BackupStorageService } from './backup.js';
export type { PrimaryStorageRow, PrimaryStorageService } from './primary.js';
export type { BackupStorageType, PrimaryStorageType } from './types.js';

export const storageModule = defineDomain({ name: 'storage', needs: ['hosts', 'agentDeployer'], provides: ['primaryStorage', 'backupStorage'], register });

/** Registers the storage domain: inventories, handlers, cascade nodes, settings and its service. */
function register(app: DomainContext): void {
  const primary = registerPrimaryStorage(app);
  const backup = registerBackupStorage(app);
  registerPrimaryStorageManagement(app, primary);
  registerBackupStorageManagement(app, backup);
  // Storage types beyond the built-in ones (types.ts): each registers its handlers, inventories and behaviour.
  registerNfsPrimaryStorage(app, primary);
  registerCephStorage(app, primary, backup);
  registerIscsiPrimaryStorage(app, primary);
  app.provide('primaryStorage', primary);
  app.provide('backupStorage', backup);
}

// Storage: primary storage (volumes; attached to clusters) and backup storage (images; attached to zones).
import { defineDomain, type DomainContext } from '../core/domain.js';
import { registerBackupStorage, type BackupStorageService } from './backup.js';
import { registerPrimaryStorage, type PrimaryStorageService } from './primary.js';
import { registerPrimaryStorageManagement } from './primary-management.js';
import { registerBackupStorageManagement } from './backup-management.js';

declare module '../services.js' {
  interface Services {
    primaryStorage: PrimaryStorageService;
    backupStorage: BackupStorageService;
  }
}

// The storage domain's public face.
export type { BackupStorageReply, BackupStorageRow, BackupStorageService } from './backup.js';
export type { PrimaryStorageService } from './primary.js';

export const storageModule = defineDomain({ name: 'storage', needs: ['hosts', 'agentDeployer'], provides: ['primaryStorage', 'backupStorage'], register });

/** Registers the storage domain: inventories, handlers, cascade nodes, settings and its service. */
function register(app: DomainContext): void {
  const primary = registerPrimaryStorage(app);
  const backup = registerBackupStorage(app);
  registerPrimaryStorageManagement(app, primary);
  registerBackupStorageManagement(app, backup);
  app.provide('primaryStorage', primary);
  app.provide('backupStorage', backup);
}

// Storage: primary storage (volumes; attached to clusters) and backup storage (images; attached to zones).
import type { App } from '../app.js';
import { registerBackupStorage, type BackupStorageService } from './backup.js';
import { registerPrimaryStorage, type PrimaryStorageService } from './primary.js';

declare module '../services.js' {
  interface Services {
    primaryStorage: PrimaryStorageService;
    backupStorage: BackupStorageService;
  }
}

/** Registers the storage domain: inventories, handlers, cascade nodes, settings and its service. */
export function register(app: App): void {
  app.services.primaryStorage = registerPrimaryStorage(app);
  app.services.backupStorage = registerBackupStorage(app);
}

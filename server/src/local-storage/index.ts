// Local storage's own APIs (org.zstack.storage.primary.local): which host's disk holds each volume, per-host
// capacity, volume migration between hosts. A domain of its own next to storage/: it needs the volumes (vm domain),
// which need primary storage.
import { defineDomain } from '../core/domain.js';
import { registerLocalStorage, type LocalStorageContext } from './service.js';

export const localStorageModule = defineDomain({ name: 'local-storage', needs: ['hosts', 'primaryStorage', 'volumes'], provides: [], register });

function register(app: LocalStorageContext): void {
  registerLocalStorage(app);
}

// The seam between backup storage commands and where images live: a real directory, or the simulator.
import type { Capacity } from '../lib/statfs.js';
import type { DownloadResult, ProgressListener } from './download.js';

export interface DownloadRequest {
  imageUuid: string;
  installPath: string;
  url: URL;
}

export interface BackupStorageBackend {
  readonly name: 'real' | 'simulator';
  connect(target: string, uuid: string, storagePath: string): Promise<void>;
  /** The backup storage uuid of the last connect for this target; undefined before (ping then omits it). */
  connectedAs(target: string): string | undefined;
  download(target: string, req: DownloadRequest, signal: AbortSignal, onProgress: ProgressListener): Promise<DownloadResult>;
  delete(target: string, installPath: string): Promise<void>;
  /** Never throws: every backup storage reply carries capacities. */
  capacity(target: string): Promise<Capacity>;
  close(): Promise<void>;
}

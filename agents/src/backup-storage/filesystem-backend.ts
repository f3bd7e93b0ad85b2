// Backup storage in a real directory (upstream's sftp backup storage without the sftp part). A real agent serves
// one backup storage, so the target uuid is ignored.
import { mkdir, readdir, rm, rmdir, stat } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { AgentError } from '../lib/errors.js';
import { capacityOf, type Capacity } from '../lib/statfs.js';
import type { BackupStorageBackend, DownloadRequest } from './backend.js';
import { downloadToFile, pretendDownload, type ProgressListener } from './download.js';

export interface FilesystemBackendOptions {
  /** When set, storage paths and install paths must lie inside it. */
  storageRoot?: string;
}

interface Connected {
  uuid: string;
  storagePath: string;
}

export class FilesystemBackupStorage implements BackupStorageBackend {
  readonly name = 'real';
  private connected?: Connected;

  constructor(private readonly opts: FilesystemBackendOptions = {}) {}

  async connect(_target: string, uuid: string, storagePath: string): Promise<void> {
    const path = this.checkInside(storagePath, this.opts.storageRoot, 'storagePath');
    const info = await stat(path).catch(() => undefined);
    if (info && !info.isDirectory()) throw new AgentError(`storage path ${path} exists and is not a directory`);
    await mkdir(path, { recursive: true });
    this.connected = { uuid, storagePath: path };
  }

  connectedAs(_target: string): string | undefined {
    return this.connected?.uuid;
  }

  async download(_target: string, req: DownloadRequest, signal: AbortSignal, onProgress: ProgressListener) {
    const dest = this.installPath(req.installPath);
    if (req.url.protocol === 'sim:') return pretendDownload(req.url, { size: 64 * 1024 * 1024, durationMs: 100 }, signal, onProgress);
    return downloadToFile(req.url, dest, signal, onProgress);
  }

  async delete(_target: string, installPath: string): Promise<void> {
    const path = this.installPath(installPath);
    await rm(path, { force: true });
    // Images live in a directory of their own (images/<uuid>/); drop it once empty.
    const dir = dirname(path);
    if (dir !== this.connected?.storagePath && (await readdir(dir).catch(() => ['?'])).length === 0) {
      await rmdir(dir).catch(() => {});
    }
  }

  async capacity(_target: string): Promise<Capacity> {
    const path = this.connected?.storagePath ?? this.opts.storageRoot;
    if (!path) return { totalCapacity: 0, availableCapacity: 0 };
    return capacityOf(path).catch(() => ({ totalCapacity: 0, availableCapacity: 0 }));
  }

  async close(): Promise<void> {}

  /** Install paths must be inside the storage path (or the storage root) so a bad command cannot write elsewhere. */
  private installPath(installPath: string): string {
    return this.checkInside(installPath, this.connected?.storagePath ?? this.opts.storageRoot, 'installPath');
  }

  private checkInside(path: string, root: string | undefined, what: string): string {
    if (!isAbsolute(path)) throw new AgentError(`${what} must be an absolute path: ${path}`);
    const resolved = resolve(path);
    if (root !== undefined) {
      const rel = relative(resolve(root), resolved);
      if (rel.startsWith('..') || isAbsolute(rel)) throw new AgentError(`${what} ${resolved} is outside ${root}`);
    }
    return resolved;
  }
}

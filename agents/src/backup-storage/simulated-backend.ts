// Simulated backup storages, many per process (one per X-Zstack-Target-Uuid). sim:// downloads only take time;
// http(s):// and file:// URLs are downloaded for real into a scratch directory so md5 and size are genuine.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentError, BadRequestError } from '../lib/errors.js';
import type { Schemas } from '../lib/protocol.js';
import type { Capacity } from '../lib/statfs.js';
import type { BackupStorageBackend, DownloadRequest } from './backend.js';
import { downloadToFile, pretendDownload, type ProgressListener } from './download.js';

export type SimulatedFile = Schemas['SimulatedFile'];

export interface SimulatedBackupStorage {
  uuid: string;
  connectedAs?: string;
  storagePath?: string;
  totalCapacity: number;
  downloadSize: number;
  downloadDurationMs: number;
  files: Map<string, SimulatedFile>;
}

const MiB = 1024 ** 2;
const TiB = 1024 ** 4;
export const BACKUP_STORAGE_DEFAULTS = { totalCapacity: 1 * TiB, downloadSize: 64 * MiB, downloadDurationMs: 100 };

export interface SimulatedBackendOptions {
  /** Where real downloads land (`<root>/<bs uuid>/<installPath>`); a temporary directory when unset. */
  storageRoot?: string;
}

export class SimulatedBackupStorages implements BackupStorageBackend {
  readonly name = 'simulator';
  private readonly storages = new Map<string, SimulatedBackupStorage>();
  private scratch?: Promise<string>;
  private ownsScratch = false;

  constructor(private readonly opts: SimulatedBackendOptions = {}) {}

  require(target: string): SimulatedBackupStorage {
    if (target === '') throw new BadRequestError('X-Zstack-Target-Uuid is required: the simulator serves many backup storages');
    let bs = this.storages.get(target);
    if (!bs) {
      bs = { uuid: target, ...BACKUP_STORAGE_DEFAULTS, files: new Map() };
      this.storages.set(target, bs);
    }
    return bs;
  }

  configure(target: string, patch: Partial<Pick<SimulatedBackupStorage, 'totalCapacity' | 'downloadSize' | 'downloadDurationMs'>>): void {
    const bs = this.require(target);
    for (const key of ['totalCapacity', 'downloadSize', 'downloadDurationMs'] as const) {
      if (patch[key] !== undefined) bs[key] = patch[key];
    }
  }

  async connect(target: string, uuid: string, storagePath: string): Promise<void> {
    if (!storagePath.startsWith('/')) throw new AgentError(`storagePath must be an absolute path: ${storagePath}`);
    const bs = this.require(target);
    bs.connectedAs = uuid;
    bs.storagePath = storagePath;
  }

  connectedAs(target: string): string | undefined {
    return this.storages.get(target)?.connectedAs;
  }

  async download(target: string, req: DownloadRequest, signal: AbortSignal, onProgress: ProgressListener) {
    const bs = this.require(target);
    const free = () => bs.totalCapacity - used(bs);
    let result;
    let realPath: string | undefined;
    if (req.url.protocol === 'sim:') {
      const expected = Number(req.url.searchParams.get('size') ?? bs.downloadSize);
      if (expected > free()) throw new AgentError(`not enough space on simulated backup storage ${bs.uuid}: need ${expected}, have ${free()}`);
      result = await pretendDownload(req.url, { size: bs.downloadSize, durationMs: bs.downloadDurationMs }, signal, onProgress);
    } else {
      realPath = join(await this.scratchRoot(), bs.uuid, join('/', req.installPath));
      result = await downloadToFile(req.url, realPath, signal, onProgress);
      if (result.size > free()) {
        await rm(realPath, { force: true });
        throw new AgentError(`not enough space on simulated backup storage ${bs.uuid}: need ${result.size}, have ${free()}`);
      }
    }
    bs.files.set(req.installPath, {
      installPath: req.installPath,
      size: result.size,
      md5Sum: result.md5Sum,
      simulated: realPath === undefined,
      ...(realPath ? { realPath } : {}),
    });
    return result;
  }

  async delete(target: string, installPath: string): Promise<void> {
    const bs = this.require(target);
    const file = bs.files.get(installPath);
    bs.files.delete(installPath);
    if (file?.realPath) await rm(file.realPath, { force: true });
  }

  async capacity(target: string): Promise<Capacity> {
    const bs = this.storages.get(target);
    if (!bs) return { totalCapacity: BACKUP_STORAGE_DEFAULTS.totalCapacity, availableCapacity: BACKUP_STORAGE_DEFAULTS.totalCapacity };
    return { totalCapacity: bs.totalCapacity, availableCapacity: Math.max(0, bs.totalCapacity - used(bs)) };
  }

  get(target: string): SimulatedBackupStorage | undefined {
    return this.storages.get(target);
  }

  async reset(): Promise<void> {
    for (const bs of this.storages.values()) {
      for (const file of bs.files.values()) if (file.realPath) await rm(file.realPath, { force: true });
    }
    this.storages.clear();
  }

  async close(): Promise<void> {
    await this.reset();
    if (this.scratch && this.ownsScratch) await rm(await this.scratch, { recursive: true, force: true });
  }

  private scratchRoot(): Promise<string> {
    if (!this.scratch) {
      this.ownsScratch = !this.opts.storageRoot;
      this.scratch = this.opts.storageRoot ? Promise.resolve(this.opts.storageRoot) : mkdtemp(join(tmpdir(), 'zstack-sim-bs-'));
    }
    return this.scratch;
  }
}

function used(bs: SimulatedBackupStorage): number {
  let sum = 0;
  for (const f of bs.files.values()) sum += f.size;
  return sum;
}

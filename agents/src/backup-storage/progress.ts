// Progress of downloads per backup storage, readable while they run and after they finish.
import { AgentError } from '../lib/errors.js';
import type { DownloadProgress } from '../lib/protocol.js';

export class DownloadTracker {
  private readonly byTarget = new Map<string, Map<string, DownloadProgress>>();

  /** Registers a new download; a second download of the same image while the first runs is refused. */
  begin(target: string, imageUuid: string, installPath: string): DownloadProgress {
    let downloads = this.byTarget.get(target);
    if (!downloads) this.byTarget.set(target, (downloads = new Map()));
    if (downloads.get(imageUuid)?.status === 'downloading') throw new AgentError(`image ${imageUuid} is already being downloaded`);
    const progress: DownloadProgress = { imageUuid, installPath, status: 'downloading', progress: 0, downloadedBytes: 0, done: false };
    downloads.set(imageUuid, progress);
    return progress;
  }

  static update(p: DownloadProgress, downloadedBytes: number, totalBytes: number | undefined): void {
    p.downloadedBytes = downloadedBytes;
    if (totalBytes !== undefined) p.totalBytes = totalBytes;
    p.progress = totalBytes ? Math.min(100, Math.floor((downloadedBytes * 100) / totalBytes)) : 0;
  }

  static succeed(p: DownloadProgress, md5Sum: string, size: number): void {
    Object.assign(p, { status: 'succeeded', done: true, progress: 100, downloadedBytes: size, totalBytes: size, md5Sum });
  }

  static fail(p: DownloadProgress, error: string): void {
    Object.assign(p, { status: 'failed', done: true, downloadError: error });
  }

  get(target: string, imageUuid: string): DownloadProgress | undefined {
    return this.byTarget.get(target)?.get(imageUuid);
  }

  list(target: string): DownloadProgress[] {
    return [...(this.byTarget.get(target)?.values() ?? [])];
  }

  forget(target: string): void {
    this.byTarget.delete(target);
  }

  clear(): void {
    this.byTarget.clear();
  }
}

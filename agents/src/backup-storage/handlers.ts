// Backup storage agent: HTTP operations → backend, download progress, capacities on every reply.
import { withTimeout } from '../lib/abort.js';
import { AgentError, DeadlineExceeded, messageOf } from '../lib/errors.js';
import type { AgentPart } from '../lib/handler.js';
import type { BackupStorageBackend } from './backend.js';
import { parseImageUrl } from './download.js';
import { DownloadTracker } from './progress.js';

export function backupStoragePart(backend: BackupStorageBackend, tracker = new DownloadTracker()): AgentPart {
  // A real agent is one backup storage whatever the header says; the simulator keys everything by target.
  const scope = (target: string) => (backend.name === 'real' ? '' : target);
  return {
    handlers: {
      BackupStorageConnect: async (ctx) => {
        await backend.connect(ctx.target, ctx.body.uuid, ctx.body.storagePath);
        return {};
      },
      BackupStorageEcho: async () => ({}),
      BackupStoragePing: async (ctx) => {
        const uuid = backend.connectedAs(ctx.target);
        return uuid === undefined ? {} : { uuid };
      },
      BackupStorageDownload: async (ctx) => {
        const { imageUuid, installPath, url, timeout } = ctx.body;
        const parsed = parseImageUrl(url);
        const progress = tracker.begin(scope(ctx.target), imageUuid, installPath);
        const bounded = timeout
          ? withTimeout(ctx.signal, timeout, () => new DeadlineExceeded(`download of ${url} exceeded its timeout of ${timeout} ms`))
          : { signal: ctx.signal, dispose() {} };
        try {
          const result = await backend.download(ctx.target, { imageUuid, installPath, url: parsed }, bounded.signal, (done, total) =>
            DownloadTracker.update(progress, done, total),
          );
          DownloadTracker.succeed(progress, result.md5Sum, result.size);
          return { md5Sum: result.md5Sum, size: result.size, installPath };
        } catch (err) {
          const reason = bounded.signal.aborted ? bounded.signal.reason : err;
          DownloadTracker.fail(progress, messageOf(reason));
          throw reason;
        } finally {
          bounded.dispose();
        }
      },
      BackupStorageDownloadProgress: async (ctx) => {
        const progress = tracker.get(scope(ctx.target), ctx.body.imageUuid);
        if (!progress) throw new AgentError(`no download of image ${ctx.body.imageUuid} is known to this backup storage`);
        return { ...progress };
      },
      BackupStorageDelete: async (ctx) => {
        await backend.delete(ctx.target, ctx.body.installPath);
        return {};
      },
    },
    decorators: { backupstorage: async (target) => ({ ...(await backend.capacity(target)) }) },
    close: () => backend.close(),
  };
}

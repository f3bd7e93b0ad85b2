// Copies a file of a host's primary storage to backup storage, as AddImage downloads (image/download.ts): each backup
// storage's agent fetches it with `/backupstorage/download` while `/backupstorage/download/progress` is polled and the
// slowest one's percentage is reported. What the agent fetches: a simulated backup storage pretends
// (`sim://<host><path>?size=<bytes>`); a real one reads `file://<path>`, which needs the backup storage to see the
// primary storage's files (the same machine, or a shared mount) — there is no host-to-backup-storage push yet.
import type { DomainContext } from '../core/domain.js';
import { currentSignal } from '../core/context.js';
import { opErr } from '../core/errors.js';
import type { AgentResponse } from '../agent-client/index.js';
import type { BackupStorageRow } from '../storage/index.js';

export const PROGRESS_POLL_MS = 250;

export interface UploadTarget {
  bs: BackupStorageRow;
  installPath: string;
}

export interface UploadResult extends UploadTarget {
  reply?: AgentResponse<'/backupstorage/download'>;
  error?: unknown;
}

export async function uploadToBackupStorage(
  app: DomainContext<'backupStorage' | 'hosts'>,
  o: { key: string; hostUuid: string; sourcePath: string; size: number; targets: UploadTarget[]; onProgress?: (percent: number) => Promise<void> },
): Promise<UploadResult[]> {
  const backup = app.use('backupStorage');
  const host = await app.use('hosts').require(o.hostUuid);
  const urlFor = (bs: BackupStorageRow) => {
    if (backup.isSimulated(bs)) return `sim://${host.uuid}${o.sourcePath}?size=${o.size}`;
    if (host.hypervisorType === 'Simulator') throw opErr(`a simulated host's files cannot be uploaded to ${bs.type} backup storage[uuid:${bs.uuid}]`);
    return `file://${o.sourcePath}`;
  };
  const percent = new Map(o.targets.map((t) => [t.bs.uuid, 0]));
  const finished = new Set<string>();
  const all = Promise.all(
    o.targets.map(async (t): Promise<UploadResult> => {
      try {
        const reply = await backup.call(t.bs, '/backupstorage/download', { imageUuid: o.key, installPath: t.installPath, url: urlFor(t.bs) });
        return { ...t, reply };
      } catch (error) {
        return { ...t, error };
      } finally {
        finished.add(t.bs.uuid);
        percent.set(t.bs.uuid, 100);
      }
    }),
  );
  let settled = false;
  void all.then(() => (settled = true));
  let reported = -1;
  while (!settled) {
    await Promise.race([all, sleep(PROGRESS_POLL_MS, currentSignal())]);
    if (settled) break;
    await Promise.all(
      o.targets
        .filter((t) => !finished.has(t.bs.uuid))
        .map(async (t) => {
          const p = await backup.call(t.bs, '/backupstorage/download/progress', { imageUuid: o.key }, { timeoutMs: 5_000 }).catch(() => undefined);
          if (p?.progress !== undefined && !finished.has(t.bs.uuid)) percent.set(t.bs.uuid, p.progress);
        }),
    );
    const now = Math.min(...percent.values());
    if (now !== reported && !settled && o.onProgress) {
      reported = now;
      await o.onProgress(now);
    }
  }
  const results = await all;
  // The capacities riding on replies of concurrent transfers can be recorded out of order: one ping per backup
  // storage after the transfer, one at a time, leaves the figure of the storage as it is now.
  for (const t of o.targets) {
    await app.locks.withLock(`backup-storage-capacity:${t.bs.uuid}`, () => backup.call(t.bs, '/backupstorage/ping', {}).catch(() => undefined));
  }
  return results;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

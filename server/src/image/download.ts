// Downloading an image to its backup storage: `/backupstorage/download` on each of them at once, while
// `/backupstorage/download/progress` is polled and the slowest one's percentage is written on the image row (so
// QueryImage shows it). Backup storage that fails loses its ref; the image is Ready when at least one succeeded,
// else Error and the agent's error is thrown.
import { and, eq } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import { currentSignal, reportProgress } from '../core/context.js';
import { err, toApiError } from '../core/errors.js';
import { imageBackupStorageRefs, images } from '../db/schema/index.js';
import type { AgentResponse } from '../agent-client/index.js';
import type { BackupStorageRow } from '../storage/index.js';
import type { ImageRow } from './inventory.js';

/** How often progress is asked for while downloads run. */
export const PROGRESS_POLL_MS = 250;

type Outcome = { bs: BackupStorageRow; reply?: AgentResponse<'/backupstorage/download'>; error?: unknown };

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * What the agent is asked to download. A real agent gets the url as is (http, https, file). The simulator
 * downloads file:// and loopback http(s) for real (genuine size and md5) and pretends for anything else
 * (`sim://…`, keeping `?size=&durationMs=`), so images from the internet work offline.
 */
export function agentUrlFor(url: string, simulated: boolean): string {
  if (!simulated) return url;
  const parsed = new URL(url);
  if (parsed.protocol === 'file:') return url;
  if ((parsed.protocol === 'http:' || parsed.protocol === 'https:') && LOOPBACK.has(parsed.hostname)) return url;
  return `sim://${url.replace(/^[a-z]+:\/\//i, '')}`;
}

export function installPathOf(storagePath: string, image: Pick<ImageRow, 'uuid' | 'mediaType' | 'format'>): string {
  const dir = image.mediaType === 'ISO' ? 'iso' : image.mediaType === 'DataVolumeTemplate' ? 'dataVolumeTemplates' : 'rootVolumeTemplates';
  return `${storagePath === '/' ? '' : storagePath}/${dir}/${image.uuid}/${image.uuid}.${image.format}`;
}

export async function downloadImage(app: DomainContext, image: ImageRow, targets: BackupStorageRow[]): Promise<void> {
  const backup = app.use('backupStorage');
  const percent = new Map<string, number>(targets.map((bs) => [bs.uuid, 0]));
  const finished = new Set<string>();

  const runs = targets.map(async (bs): Promise<Outcome> => {
    const [ref] = await app.db
      .select()
      .from(imageBackupStorageRefs)
      .where(and(eq(imageBackupStorageRefs.imageUuid, image.uuid), eq(imageBackupStorageRefs.backupStorageUuid, bs.uuid)));
    try {
      const reply = await backup.call(bs, '/backupstorage/download', {
        imageUuid: image.uuid,
        installPath: ref.installPath!, // set when the ref was made, before the download
        url: agentUrlFor(image.url, backup.isSimulated(bs)),
        urlScheme: new URL(image.url).protocol.replace(':', ''),
      });
      return { bs, reply };
    } catch (error) {
      return { bs, error };
    } finally {
      finished.add(bs.uuid);
      percent.set(bs.uuid, 100);
    }
  });
  const all = Promise.all(runs);

  let written = '0%';
  let settled = false;
  void all.then(() => (settled = true));
  while (!settled) {
    await Promise.race([all, sleep(PROGRESS_POLL_MS, currentSignal())]);
    if (settled) break;
    await Promise.all(
      targets
        .filter((bs) => !finished.has(bs.uuid))
        .map(async (bs) => {
          // Not known yet (the download has not registered) or a slow answer: keep the last figure.
          const p = await backup.call(bs, '/backupstorage/download/progress', { imageUuid: image.uuid }, { timeoutMs: 5_000 }).catch(() => undefined);
          if (p?.progress !== undefined && !finished.has(bs.uuid)) percent.set(bs.uuid, p.progress);
        }),
    );
    const slowest = Math.min(...percent.values());
    const now = `${slowest}%`;
    if (now !== written && !settled) {
      written = now;
      reportProgress({ percent: Math.max(0, Math.min(100, Math.round(slowest))) });
      await app.db
        .update(images)
        .set({ progress: now })
        .where(and(eq(images.uuid, image.uuid), eq(images.status, 'Downloading')));
    }
  }

  const outcomes = await all;
  const ok = outcomes.filter((o) => o.reply);
  for (const o of outcomes) {
    const where = and(eq(imageBackupStorageRefs.imageUuid, image.uuid), eq(imageBackupStorageRefs.backupStorageUuid, o.bs.uuid));
    if (o.reply) {
      const set: Partial<typeof imageBackupStorageRefs.$inferInsert> = { status: 'Ready', lastOpDate: new Date() };
      if (o.reply.installPath) set.installPath = o.reply.installPath;
      await app.db.update(imageBackupStorageRefs).set(set).where(where);
    } else {
      console.warn(`[image] download of image ${image.uuid} to backup storage ${o.bs.uuid} failed: ${toApiError(o.error).message}`);
      await app.db.delete(imageBackupStorageRefs).where(where);
    }
  }
  if (ok.length === 0) {
    await app.db.update(images).set({ status: 'Error', progress: null, lastOpDate: new Date() }).where(eq(images.uuid, image.uuid));
    const firstError = toApiError(outcomes[0]?.error);
    if (firstError.error.code === 'SYS.1001') throw firstError; // the API ran out of time: say so, not "failed"
    const first = firstError.error;
    throw err('SYS.1006', `failed to download image[uuid:${image.uuid}, name:${image.name}] from ${image.url}: ${first.details ?? first.description}`, first);
  }
  const r = ok[0].reply!;
  await app.db
    .update(images)
    .set({ status: 'Ready', progress: null, size: r.size ?? 0, actualSize: r.size ?? 0, md5Sum: r.md5Sum ?? null, lastOpDate: new Date() })
    .where(eq(images.uuid, image.uuid));
}

/** Waits `ms`, or less when the call is aborted (the listener goes with the timer: polls must not pile them up). */
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

// Primary storage allocation (zstack-internals.md §5.2): among the Enabled, Connected primary storage attached to
// the host's cluster, reserve the bytes on one that still has them (conditional UPDATE in the storage service).
import { eq } from 'drizzle-orm';
import type { App } from '../../app.js';
import { err } from '../../core/errors.js';
import { primaryStorage, primaryStorageClusterRefs } from '../../db/schema/index.js';

export type PrimaryStorageRow = typeof primaryStorage.$inferSelect;

export async function allocatePrimaryStorage(
  app: App,
  req: { clusterUuid: string; bytes: number; required?: string; purpose: string },
): Promise<PrimaryStorageRow> {
  const rows = await app.db
    .select({ ps: primaryStorage })
    .from(primaryStorageClusterRefs)
    .innerJoin(primaryStorage, eq(primaryStorage.uuid, primaryStorageClusterRefs.primaryStorageUuid))
    .where(eq(primaryStorageClusterRefs.clusterUuid, req.clusterUuid));
  const dropped: string[] = [];
  const candidates = rows
    .map((r) => r.ps)
    .filter((ps) => {
      if (req.required && ps.uuid !== req.required) return false;
      if (ps.state !== 'Enabled' || ps.status !== 'Connected') {
        dropped.push(`primary storage[uuid:${ps.uuid}] is ${ps.state}/${ps.status}`);
        return false;
      }
      if (ps.availableCapacity < req.bytes) {
        dropped.push(`primary storage[uuid:${ps.uuid}] has ${ps.availableCapacity} bytes free`);
        return false;
      }
      return true;
    })
    .sort(() => Math.random() - 0.5);
  for (const ps of candidates) {
    if (await app.services.primaryStorage.reserve(app.db, ps.uuid, req.bytes)) return ps;
    dropped.push(`primary storage[uuid:${ps.uuid}] ran out of capacity while reserving`);
  }
  if (req.required && !rows.some((r) => r.ps.uuid === req.required)) {
    dropped.push(`primary storage[uuid:${req.required}] is not attached to cluster[uuid:${req.clusterUuid}]`);
  }
  throw err(
    'PS.1000',
    `no primary storage can hold ${req.bytes} bytes for ${req.purpose} in cluster[uuid:${req.clusterUuid}]` +
      (dropped.length ? `: ${dropped.join('; ')}` : ': none is attached'),
  );
}

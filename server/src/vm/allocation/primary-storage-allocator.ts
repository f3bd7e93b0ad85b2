// Primary storage allocation (zstack-internals.md §5.2): among the Enabled, Connected primary storage attached to
// the host's cluster, reserve the bytes on one that still has them (conditional UPDATE in the storage service).
import { and, eq, gte, sql, type SQL } from 'drizzle-orm';
import type { DomainContext } from '../../core/domain.js';
import { err } from '../../core/errors.js';
import type { Tx } from '../../db/index.js';
import { immediate, type Bind } from '../../db/perf/template.js';
import { primaryStorage, primaryStorageClusterRefs } from '../../db/schema/index.js';

export type PrimaryStorageRow = typeof primaryStorage.$inferSelect;

type PsRequest = { clusterUuid: string | SQL; bytes: number; required?: string };

/**
 * Picks (at random) an Enabled, Connected primary storage of the cluster with the room, and reserves it: one UPDATE …
 * RETURNING (empty when none could take it). `clusterUuid` may be an SQL expression (a CTE's column).
 */
export function reservePrimaryStorageQuery(tx: Tx, req: PsRequest, bind: Bind = immediate, picked?: SQL) {
  return bindPrimaryStorageReservation(req, bind, picked)(tx);
}

/** reservePrimaryStorageQuery in two steps: values bound now, the statement built by the function returned. */
export function bindPrimaryStorageReservation(req: PsRequest, bind: Bind, picked?: SQL) {
  const bytes = bind('bytes', req.bytes);
  const pick = picked ? undefined : bindPrimaryStoragePick(req, bind);
  return (tx: Tx) =>
    tx
      .update(primaryStorage)
      .set({ availableCapacity: sql`${primaryStorage.availableCapacity} - ${bytes}::bigint` })
      // A scalar sub-select (the pick is one row at most), as the host's reservation: run once, then the row looked up
      // by its key wherever the table is large enough for the index to pay, never a join over the whole table.
      .where(and(sql`${primaryStorage.uuid} = ${picked ?? pick!(tx)}`, gte(primaryStorage.availableCapacity, bytes)))
      .returning();
}

/**
 * The pick alone (no lock): a statement can name the storage on the rows it writes (a CTE of this, read by those rows
 * and by the reservation's `picked`) and still take the storage row's lock last. Values bound now, the statement
 * built by the function returned.
 */
export function bindPrimaryStoragePick(req: PsRequest, bind: Bind) {
  const bytes = bind('bytes', req.bytes);
  const clusterUuid = typeof req.clusterUuid === 'string' ? bind('clusterUuid', req.clusterUuid) : req.clusterUuid;
  const required = req.required ? bind('required', req.required) : undefined;
  return (tx: Tx) =>
    tx
      .select({ uuid: primaryStorage.uuid })
      .from(primaryStorageClusterRefs)
      .innerJoin(primaryStorage, eq(primaryStorage.uuid, primaryStorageClusterRefs.primaryStorageUuid))
      .where(
        and(
          eq(primaryStorageClusterRefs.clusterUuid, clusterUuid),
          eq(primaryStorage.state, 'Enabled'),
          eq(primaryStorage.status, 'Connected'),
          gte(primaryStorage.availableCapacity, bytes),
          required ? eq(primaryStorage.uuid, required) : undefined,
        ),
      )
      .orderBy(sql`random()`)
      .limit(1);
}

export async function allocatePrimaryStorage(
  app: DomainContext,
  req: { clusterUuid: string; bytes: number; required?: string; purpose: string },
  tx: Tx = app.db,
): Promise<PrimaryStorageRow> {
  // Fast path: pick (at random) and reserve in one statement; the UPDATE checks the room again on the locked row.
  const [fast] = await reservePrimaryStorageQuery(tx, req);
  if (fast) return fast;
  // None had room (or a race took it): look at every one, try again, and say why each was dropped.
  const rows = await tx
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
    if (await app.use('primaryStorage').reserve(tx, ps.uuid, req.bytes)) return ps;
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

// Deletions exclude concurrent placements (issue 16): deleting a host, cluster, zone or primary storage first makes
// it Disabled — the allocation takes only Enabled ones, checked again on the row it locks — in an UPDATE that waits
// for the reservations holding the row right now, so the deletion's plan sees every VM placed there and cascades it.
// An L3 network's row is locked FOR UPDATE first, which waits for the address reservations referencing it (their
// foreign key check holds it) before it is Disabled. A failed deletion puts the old states back.
import { sql, type SQL } from 'drizzle-orm';
import type { DomainContext } from '../../core/domain.js';
import { rows } from '../../db/index.js';

const TABLES: Record<string, string> = { host: 'hosts', cluster: 'clusters', zone: 'zones', primaryStorage: 'primary_storage', l3: 'l3_networks' };

export function registerPlacementFences(app: DomainContext): void {
  for (const [kind, table] of Object.entries(TABLES)) {
    app.cascade.fence(kind, async (uuids) => {
      const t = sql.identifier(table);
      const list: SQL = sql`${sql.param(uuids)}::text[]`;
      const old = await app.db.transaction(async (tx) => {
        const before = await rows<{ uuid: string; state: string }>(tx, sql`SELECT uuid, state FROM ${t} WHERE uuid = ANY(${list}) ORDER BY uuid FOR UPDATE`);
        await tx.execute(sql`UPDATE ${t} SET state = 'Disabled' WHERE uuid = ANY(${list})`);
        return before;
      });
      return async () => {
        for (const r of old) await app.db.execute(sql`UPDATE ${t} SET state = ${r.state} WHERE uuid = ${r.uuid}`);
      };
    });
  }
}

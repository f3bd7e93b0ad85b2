// The shared create path's uniqueness check: a creating call (`x-zstack.create`) may choose the new resource's uuid
// (`resourceUuid`); one naming a resource of the kind it creates that already exists is refused before any work
// (upstream's "resourceUuid[...] is already used", SYS.1007), by core/permissions.ts' wrapper of every creating
// handler. The table is the one of the inventory the operation replies with (its query descriptor).
import { eq, getTableColumns } from 'drizzle-orm';
import type { PgColumn, PgTable } from 'drizzle-orm/pg-core';
import type { Db } from '../db/index.js';
import { argErr } from './errors.js';

/** The table holding the resources an inventory describes (undefined: nothing to check). */
export type TableOfInventory = (inventoryName: string) => PgTable | undefined;

export const resourceUuidUsed = (uuid: string) => argErr(`resourceUuid[${uuid}] is already used`);

/** Refuses `uuid` when `table` already has a row with it. */
export async function requireUnusedUuid(db: Db, table: PgTable, uuid: string | undefined): Promise<void> {
  if (!uuid) return;
  const column = (getTableColumns(table) as Record<string, PgColumn>).uuid;
  if (!column) return;
  const [used] = await db
    .select({ uuid: column })
    .from(table as any)
    .where(eq(column, uuid))
    .limit(1);
  if (used) throw resourceUuidUsed(uuid);
}

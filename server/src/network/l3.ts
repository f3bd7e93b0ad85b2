// L3 networks: create/update (the system ↔ category rule), DNS servers, delete (cascade: IP ranges, used IPs,
// NICs detached by the VM module's node, which runs first).
import { and, eq, inArray, max } from 'drizzle-orm';
import { changeStateHandler, deleteHandler } from '../core/crud.js';
import type { DomainContext } from '../core/domain.js';
import type { Tx } from '../db/index.js';
import { ipRanges, l3Dns, l3Networks, usedIps } from '../db/schema/index.js';
import { argErr, notFound, opErr } from '../core/errors.js';
import { defineHandlers } from '../core/handlers.js';
import { newUuid } from '../core/ids.js';
import type { L3Row } from './inventory.js';
import { loadL2 } from './l2.js';

type Category = 'Public' | 'Private' | 'System';

export async function loadL3(db: Tx, uuid: string, field = 'uuid'): Promise<L3Row> {
  const [row] = await db.select().from(l3Networks).where(eq(l3Networks.uuid, uuid));
  if (!row) throw notFound('L3NetworkVO', uuid, field);
  return row;
}

/** system=true ↔ System; system=false ↔ Public | Private (L3NetworkCategory.checkSystemAndCategory). */
function checkSystemAndCategory(system: boolean, category: Category): void {
  if ((category === 'System') !== system) {
    throw argErr(
      'not valid combination of system and category,only [{system:true, category:System}, {system:false, category:Private}, {system:false, category:Public}] are valid',
    );
  }
}

export function l3Handlers(app: DomainContext) {
  const { db } = app;
  const inventory = async (uuid: string) => ({ inventory: await app.use('networks').l3Inventory(uuid) });

  /** A system network defaults to category System; everything else to Private. */
  const createCategory = (msg: { system?: boolean; category?: Category }): Category => msg.category ?? (msg.system ? 'System' : 'Private');

  return defineHandlers({
    CreateL3Network: {
      async check(msg) {
        await loadL2(db, msg.l2NetworkUuid, 'l2NetworkUuid');
        checkSystemAndCategory(msg.system ?? false, createCategory(msg));
      },
      async run(msg) {
        const l2 = await loadL2(db, msg.l2NetworkUuid, 'l2NetworkUuid');
        const [row] = await db
          .insert(l3Networks)
          .values({
            uuid: msg.resourceUuid ?? newUuid(),
            name: msg.name,
            description: msg.description ?? null,
            type: msg.type ?? 'L3BasicNetwork',
            zoneUuid: l2.zoneUuid,
            l2NetworkUuid: l2.uuid,
            dnsDomain: msg.dnsDomain ?? null,
            system: msg.system ?? false,
            category: createCategory(msg),
          })
          .returning();
        return inventory(row.uuid);
      },
    },
    UpdateL3Network: {
      async check(msg) {
        const l3 = await loadL3(db, msg.uuid);
        if (msg.system !== undefined && msg.category === undefined && msg.system !== l3.system) {
          throw argErr('you must update system and category both');
        }
        if (msg.category !== undefined) checkSystemAndCategory(msg.system ?? l3.system, msg.category);
      },
      async run(msg) {
        const set: Partial<typeof l3Networks.$inferInsert> = { lastOpDate: new Date() };
        if (msg.name !== undefined) set.name = msg.name;
        if (msg.description !== undefined) set.description = msg.description;
        if (msg.dnsDomain !== undefined) set.dnsDomain = msg.dnsDomain;
        if (msg.category !== undefined) set.category = msg.category;
        if (msg.system !== undefined) set.system = msg.system;
        const [row] = await db.update(l3Networks).set(set).where(eq(l3Networks.uuid, msg.uuid)).returning();
        if (!row) throw notFound('L3NetworkVO', msg.uuid);
        return inventory(row.uuid);
      },
    },
    ChangeL3NetworkState: changeStateHandler(app, {
      table: l3Networks,
      entity: 'L3NetworkVO',
      inventory: (row) => app.use('networks').l3Inventory(row.uuid),
      check: false,
    }),
    DeleteL3Network: deleteHandler(app, { node: 'l3' }),
    AddDnsToL3Network: {
      async check(msg) {
        await loadL3(db, msg.l3NetworkUuid, 'l3NetworkUuid');
        const [dup] = await db
          .select()
          .from(l3Dns)
          .where(and(eq(l3Dns.l3NetworkUuid, msg.l3NetworkUuid), eq(l3Dns.dns, msg.dns)));
        if (dup) throw opErr(`there has been a DNS[${msg.dns}] on L3 network[uuid:${msg.l3NetworkUuid}]`);
      },
      async run(msg) {
        await app.locks.withLock(`l3-dns:${msg.l3NetworkUuid}`, () =>
          db.transaction(async (tx) => {
            const [{ last }] = await tx
              .select({ last: max(l3Dns.position) })
              .from(l3Dns)
              .where(eq(l3Dns.l3NetworkUuid, msg.l3NetworkUuid));
            const added = await tx
              .insert(l3Dns)
              .values({ l3NetworkUuid: msg.l3NetworkUuid, dns: msg.dns, position: (last ?? -1) + 1 })
              .onConflictDoNothing()
              .returning();
            if (!added.length) throw opErr(`there has been a DNS[${msg.dns}] on L3 network[uuid:${msg.l3NetworkUuid}]`);
          }),
        );
        return inventory(msg.l3NetworkUuid);
      },
    },
    RemoveDnsFromL3Network: {
      check: async (msg) => void (await loadL3(db, msg.l3NetworkUuid, 'l3NetworkUuid')),
      async run(msg) {
        // Removing a DNS the network does not have succeeds and changes nothing.
        await db.delete(l3Dns).where(and(eq(l3Dns.l3NetworkUuid, msg.l3NetworkUuid), eq(l3Dns.dns, msg.dns)));
        return inventory(msg.l3NetworkUuid);
      },
    },
  });
}

/** Cascade: L3 networks live on an L2 network; their IP ranges (and VM NICs) are gone by the time this runs. */
export function registerL3Cascade(app: DomainContext): void {
  const { db } = app;
  app.cascade.register({
    kind: 'l3',
    parents: {
      l2: async (l2Uuids) => (await db.select({ uuid: l3Networks.uuid }).from(l3Networks).where(inArray(l3Networks.l2NetworkUuid, l2Uuids))).map((r) => r.uuid),
    },
    async delete(uuids) {
      await db.transaction(async (tx) => {
        // Ranges or addresses added after the cascade was planned go too; DNS and service refs cascade.
        await tx.delete(usedIps).where(inArray(usedIps.l3NetworkUuid, uuids));
        await tx.delete(ipRanges).where(inArray(ipRanges.l3NetworkUuid, uuids));
        await tx.delete(l3Networks).where(inArray(l3Networks.uuid, uuids));
      });
    },
  });
}

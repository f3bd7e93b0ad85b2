// L2 networks: create (with every built-in provider attached, as upstream), attach/detach to clusters, delete
// (cascade), and the provider ↔ L2 attachment (decision 6).
import { and, eq, inArray } from 'drizzle-orm';
import { deleteHandler, updateHandler } from '../core/crud.js';
import type { DomainContext } from '../core/domain.js';
import type { Tx } from '../db/index.js';
import {
  clusters,
  l2ClusterRefs,
  l2Networks,
  l3Networks,
  networkServiceL3Refs,
  networkServiceProviderL2Refs,
  networkServiceProviders,
  zones,
} from '../db/schema/index.js';
import { argErr, notFound, opErr } from '../core/errors.js';
import { defineHandlers } from '../core/handlers.js';
import { newUuid } from '../core/ids.js';
import { l2Inventories, providerInventories, type L2Row } from './inventory.js';

export async function loadL2(db: Tx, uuid: string, field = 'uuid'): Promise<L2Row> {
  const [row] = await db.select().from(l2Networks).where(eq(l2Networks.uuid, uuid));
  if (!row) throw notFound('L2NetworkVO', uuid, field);
  return row;
}

async function loadProvider(db: Tx, uuid: string) {
  const [row] = await db.select().from(networkServiceProviders).where(eq(networkServiceProviders.uuid, uuid));
  if (!row) throw notFound('NetworkServiceProviderVO', uuid, 'networkServiceProviderUuid');
  return row;
}

export async function l2Inventory(db: Tx, uuid: string) {
  return (await l2Inventories([await loadL2(db, uuid)], db))[0];
}

async function providerInventory(db: Tx, uuid: string) {
  return (await providerInventories([await loadProvider(db, uuid)], db))[0];
}

export function l2Handlers(app: DomainContext) {
  const { db } = app;

  async function checkCreate(msg: { zoneUuid: string }) {
    const [zone] = await db.select({ uuid: zones.uuid }).from(zones).where(eq(zones.uuid, msg.zoneUuid));
    if (!zone) throw notFound('ZoneVO', msg.zoneUuid, 'zoneUuid');
  }

  async function create(values: typeof l2Networks.$inferInsert) {
    const uuid = await db.transaction(async (tx) => {
      const [row] = await tx.insert(l2Networks).values(values).returning();
      // Every built-in provider serves every new L2 network (upstream attaches them on L2 creation).
      const providers = await tx.select({ uuid: networkServiceProviders.uuid }).from(networkServiceProviders);
      if (providers.length) {
        await tx.insert(networkServiceProviderL2Refs).values(providers.map((p) => ({ providerUuid: p.uuid, l2NetworkUuid: row.uuid })));
      }
      return row.uuid;
    });
    return { inventory: await l2Inventory(db, uuid) };
  }

  /** Upstream's rules (zstack-api.md §5.3): one attachment per cluster; no two L2s on the same wire. */
  async function checkAttach(l2: L2Row, clusterUuid: string) {
    const [cluster] = await db.select().from(clusters).where(eq(clusters.uuid, clusterUuid));
    if (!cluster) throw notFound('ClusterVO', clusterUuid, 'clusterUuid');
    if (cluster.zoneUuid !== l2.zoneUuid) {
      throw argErr(`cluster[uuid:${clusterUuid}] is in zone[uuid:${cluster.zoneUuid}], but l2Network[uuid:${l2.uuid}] is in zone[uuid:${l2.zoneUuid}]`);
    }
    const attached = await db
      .select({ l2: l2Networks })
      .from(l2ClusterRefs)
      .innerJoin(l2Networks, eq(l2Networks.uuid, l2ClusterRefs.l2NetworkUuid))
      .where(and(eq(l2ClusterRefs.clusterUuid, clusterUuid), eq(l2Networks.physicalInterface, l2.physicalInterface)));
    for (const { l2: other } of attached) {
      if (other.uuid === l2.uuid) throw opErr(`l2Network[uuid:${l2.uuid}] has attached to cluster[uuid:${clusterUuid}], can't attach again`);
      if (other.vSwitchType !== l2.vSwitchType) {
        throw argErr(
          `could not attach l2 network, because there is another network [uuid:${other.uuid}] on physical interface [${l2.physicalInterface}] with different vswitch type`,
        );
      }
      if (other.type === 'L2NoVlanNetwork' && l2.type === 'L2NoVlanNetwork') {
        throw argErr(
          `There has been a l2Network[uuid:${other.uuid}, name:${other.name}] attached to cluster[uuid:${clusterUuid}] that has physical interface[${l2.physicalInterface}]. Failed to attach l2Network[uuid:${l2.uuid}]`,
        );
      }
      if (other.type === 'L2VlanNetwork' && l2.type === 'L2VlanNetwork' && other.vlan === l2.vlan) {
        throw argErr(
          `There has been a l2Network[uuid:${other.uuid}, name:${other.name}] attached to cluster[uuid:${clusterUuid}] with vlan[${l2.vlan}] and physical interface[${l2.physicalInterface}]. Failed to attach l2Network[uuid:${l2.uuid}]`,
        );
      }
    }
  }

  const isAttached = async (l2Uuid: string, clusterUuid: string) =>
    (
      await db
        .select()
        .from(l2ClusterRefs)
        .where(and(eq(l2ClusterRefs.l2NetworkUuid, l2Uuid), eq(l2ClusterRefs.clusterUuid, clusterUuid)))
    ).length > 0;

  return defineHandlers({
    CreateL2NoVlanNetwork: {
      check: checkCreate,
      run: (msg) =>
        create({
          uuid: msg.resourceUuid ?? newUuid(),
          name: msg.name,
          description: msg.description ?? null,
          zoneUuid: msg.zoneUuid,
          physicalInterface: msg.physicalInterface,
          type: 'L2NoVlanNetwork',
          vSwitchType: msg.vSwitchType ?? 'LinuxBridge',
        }),
    },
    CreateL2VlanNetwork: {
      check: checkCreate,
      run: (msg) =>
        create({
          uuid: msg.resourceUuid ?? newUuid(),
          name: msg.name,
          description: msg.description ?? null,
          zoneUuid: msg.zoneUuid,
          physicalInterface: msg.physicalInterface,
          type: 'L2VlanNetwork',
          vlan: msg.vlan,
          virtualNetworkId: msg.vlan,
          vSwitchType: msg.vSwitchType ?? 'LinuxBridge',
        }),
    },
    UpdateL2Network: updateHandler(app, {
      table: l2Networks,
      entity: 'L2NetworkVO',
      inventory: async (row) => (await l2Inventories([row], db))[0],
      fields: ['name', 'description'],
      check: false,
    }),
    AttachL2NetworkToCluster: {
      check: async (msg) => checkAttach(await loadL2(db, msg.l2NetworkUuid, 'l2NetworkUuid'), msg.clusterUuid),
      async run(msg) {
        // One cluster's attachments at a time, so two racing attaches cannot both pass the same-wire rules.
        await app.locks.withLock(`cluster-l2:${msg.clusterUuid}`, async () => {
          await checkAttach(await loadL2(db, msg.l2NetworkUuid, 'l2NetworkUuid'), msg.clusterUuid);
          await db.insert(l2ClusterRefs).values({ l2NetworkUuid: msg.l2NetworkUuid, clusterUuid: msg.clusterUuid });
        });
        return { inventory: await l2Inventory(db, msg.l2NetworkUuid) };
      },
    },
    DetachL2NetworkFromCluster: {
      async check(msg) {
        await loadL2(db, msg.l2NetworkUuid, 'l2NetworkUuid');
        if (!(await isAttached(msg.l2NetworkUuid, msg.clusterUuid))) {
          throw opErr(`l2Network[uuid:${msg.l2NetworkUuid}] has not attached to cluster[uuid:${msg.clusterUuid}]`);
        }
      },
      async run(msg) {
        await app.locks.withLock(`cluster-l2:${msg.clusterUuid}`, async () => {
          await app.use('networks').runL2DetachHooks(msg.l2NetworkUuid, msg.clusterUuid);
          await db.delete(l2ClusterRefs).where(and(eq(l2ClusterRefs.l2NetworkUuid, msg.l2NetworkUuid), eq(l2ClusterRefs.clusterUuid, msg.clusterUuid)));
        });
        return { inventory: await l2Inventory(db, msg.l2NetworkUuid) };
      },
    },
    DeleteL2Network: deleteHandler(app, { node: 'l2' }),
    AttachNetworkServiceProviderToL2Network: {
      async check(msg) {
        await loadL2(db, msg.l2NetworkUuid, 'l2NetworkUuid');
        await loadProvider(db, msg.networkServiceProviderUuid);
      },
      async run(msg) {
        // Attaching an attached provider changes nothing and succeeds (the §9 upgrade steps do exactly that).
        await db
          .insert(networkServiceProviderL2Refs)
          .values({ providerUuid: msg.networkServiceProviderUuid, l2NetworkUuid: msg.l2NetworkUuid })
          .onConflictDoNothing();
        return { inventory: await providerInventory(db, msg.networkServiceProviderUuid) };
      },
    },
    DetachNetworkServiceProviderFromL2Network: {
      async check(msg) {
        await loadL2(db, msg.l2NetworkUuid, 'l2NetworkUuid');
        await loadProvider(db, msg.networkServiceProviderUuid);
      },
      async run(msg) {
        // A provider still running services for L3 networks of this L2 network cannot leave it.
        const inUse = await db
          .select({ l3: networkServiceL3Refs.l3NetworkUuid, type: networkServiceL3Refs.networkServiceType })
          .from(networkServiceL3Refs)
          .innerJoin(l3Networks, eq(l3Networks.uuid, networkServiceL3Refs.l3NetworkUuid))
          .where(and(eq(l3Networks.l2NetworkUuid, msg.l2NetworkUuid), eq(networkServiceL3Refs.networkServiceProviderUuid, msg.networkServiceProviderUuid)));
        if (inUse.length) {
          const uses = inUse.map((u) => `${u.type}@${u.l3}`).join(', ');
          throw opErr(
            `network service provider[uuid:${msg.networkServiceProviderUuid}] still provides services[${uses}] to L3 networks of l2Network[uuid:${msg.l2NetworkUuid}]; detach them with DetachNetworkServiceFromL3Network first`,
          );
        }
        await db
          .delete(networkServiceProviderL2Refs)
          .where(
            and(
              eq(networkServiceProviderL2Refs.providerUuid, msg.networkServiceProviderUuid),
              eq(networkServiceProviderL2Refs.l2NetworkUuid, msg.l2NetworkUuid),
            ),
          );
        return { inventory: await providerInventory(db, msg.networkServiceProviderUuid) };
      },
    },
  });
}

/** Cascade: L2 networks live in a zone; their L3 networks are deleted first (children before parents). */
export function registerL2Cascade(app: DomainContext): void {
  const { db } = app;
  app.cascade.register({
    kind: 'l2',
    parents: {
      zone: async (zoneUuids) =>
        (await db.select({ uuid: l2Networks.uuid }).from(l2Networks).where(inArray(l2Networks.zoneUuid, zoneUuids))).map((r) => r.uuid),
    },
    async delete(uuids) {
      // Cluster and provider attachments go with the row (ON DELETE CASCADE).
      await db.delete(l2Networks).where(inArray(l2Networks.uuid, uuids));
    },
  });
}

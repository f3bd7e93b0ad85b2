// Network services on L3 networks: which provider runs which service type (zstack-api.md §5.1). Attach checks
// everything first and writes all refs in one transaction (nothing half-attached); the providers' backends apply
// the services when VMs start on the network (the Flat DHCP / virtual router modules read `providersOf`).
import { and, eq, inArray, or } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import type { Tx } from '../db/index.js';
import { networkServiceL3Refs, networkServiceProviderL2Refs, networkServiceProviders, networkServiceTypes, usedIps } from '../db/schema/index.js';
import { argErr, opErr } from '../core/errors.js';
import { defineHandlers } from '../core/handlers.js';
import { freeIpCount } from './allocator.js';
import type { L3Row, ProviderRow } from './inventory.js';
import { loadL3 } from './l3.js';

interface Requested {
  provider: ProviderRow;
  types: string[];
}

/** Map keys are provider uuids or provider types (`Flat`); both name the same provider row. */
async function providersByKey(db: Tx, keys: string[]): Promise<Map<string, ProviderRow>> {
  if (keys.length === 0) return new Map();
  const rows = await db
    .select()
    .from(networkServiceProviders)
    .where(or(inArray(networkServiceProviders.uuid, keys), inArray(networkServiceProviders.type, keys)));
  const out = new Map<string, ProviderRow>();
  for (const key of keys) {
    const p = rows.find((r) => r.uuid === key) ?? rows.find((r) => r.type === key);
    if (p) out.set(key, p);
  }
  return out;
}

/** Validates an attach request against the L3 network as it is now; returns the refs to write, in request order. */
async function validateAttach(db: Tx, l3: L3Row, networkServices: Record<string, string[]>): Promise<Requested[]> {
  const keys = Object.keys(networkServices ?? {});
  if (keys.length === 0) throw argErr('networkServices cannot be empty');
  const found = await providersByKey(db, keys);
  const requested = new Map<string, Requested>();
  for (const key of keys) {
    const types = networkServices[key] ?? [];
    const provider = found.get(key);
    if (types.length === 0) throw argErr(`network service for provider[uuid:${provider?.uuid ?? key}] must be specified`);
    const offered = provider
      ? (await db.select().from(networkServiceTypes).where(eq(networkServiceTypes.providerUuid, provider.uuid))).map((t) => t.serviceType)
      : [];
    if (!provider || offered.length === 0) throw argErr(`cannot find network service provider[uuid:${key}] or it provides no services`);
    const notOffered = types.filter((t) => !offered.includes(t));
    if (notOffered.length) throw argErr(`network service provider[uuid:${provider.uuid}] doesn't provide services[${notOffered.join(', ')}]`);
    const entry = requested.get(provider.uuid) ?? { provider, types: [] };
    for (const t of types) if (!entry.types.includes(t)) entry.types.push(t);
    requested.set(provider.uuid, entry);
  }

  const allTypes = [...requested.values()].flatMap((r) => r.types);
  const twice = allTypes.find((t, i) => allTypes.indexOf(t) !== i);
  if (twice) throw argErr(`network service[${twice}] is requested from more than one provider; an L3 network has one provider per service type`);

  const existing = await db.select().from(networkServiceL3Refs).where(eq(networkServiceL3Refs.l3NetworkUuid, l3.uuid));
  for (const t of allTypes) {
    if (existing.some((e) => e.networkServiceType === t)) throw opErr(`there has been a network service[${t}] attached to L3 network[uuid:${l3.uuid}]`);
  }

  // Decision 6: a provider serves only the L2 networks it is attached to.
  const onL2 = await db
    .select({ providerUuid: networkServiceProviderL2Refs.providerUuid })
    .from(networkServiceProviderL2Refs)
    .where(eq(networkServiceProviderL2Refs.l2NetworkUuid, l3.l2NetworkUuid));
  for (const { provider } of requested.values()) {
    if (!onL2.some((r) => r.providerUuid === provider.uuid)) {
      throw argErr(
        `network service provider[uuid:${provider.uuid}, type:${provider.type}] is not attached to L2 network[uuid:${l3.l2NetworkUuid}] of L3 network[uuid:${l3.uuid}]; attach it with AttachNetworkServiceProviderToL2Network first`,
      );
    }
  }

  // The virtual router needs SNAT for EIP and port forwarding (VirtualRouterManagerImpl).
  const vr = [...requested.values()].find((r) => r.provider.type === 'VirtualRouter');
  if (vr) {
    const hasSnat = vr.types.includes('SNAT') || existing.some((e) => e.networkServiceType === 'SNAT' && e.networkServiceProviderUuid === vr.provider.uuid);
    const needsSnat = vr.types.filter((t) => t === 'Eip' || t === 'PortForwarding');
    if (needsSnat.length && !hasSnat) {
      throw argErr(
        `the virtual router provider needs SNAT on L3 network[uuid:${l3.uuid}] to provide ${needsSnat.join(', ')}; attach SNAT first or in the same call`,
      );
    }
  }

  // A DHCP server needs an address of its own on a network whose VMs already hold addresses.
  if (allTypes.includes('DHCP')) {
    const vmIps = await db
      .select({ uuid: usedIps.uuid })
      .from(usedIps)
      .where(and(eq(usedIps.l3NetworkUuid, l3.uuid), eq(usedIps.usedFor, 'UserVm')))
      .limit(1);
    if (vmIps.length && (await freeIpCount(db, l3.uuid)) === 0) {
      throw opErr(`there are not enough IPs for allocation when attaching the DHCP service to L3 network[uuid:${l3.uuid}]; add an IP range first`);
    }
  }
  return [...requested.values()];
}

export function networkServiceHandlers(app: DomainContext) {
  const { db } = app;
  const inventory = async (uuid: string) => ({ inventory: await app.use('networks').l3Inventory(uuid) });

  return defineHandlers({
    // As 1.1 (NetworkServiceManagerImpl): service type → the uuids of the providers offering it.
    GetNetworkServiceTypes: {
      async run() {
        const serviceAndProviderTypes: Record<string, string[]> = {};
        const rows = await db.select().from(networkServiceTypes).orderBy(networkServiceTypes.serviceType, networkServiceTypes.providerUuid);
        for (const r of rows) (serviceAndProviderTypes[r.serviceType] ??= []).push(r.providerUuid);
        return { serviceAndProviderTypes };
      },
    },
    AttachNetworkServiceToL3Network: {
      async check(msg) {
        await validateAttach(db, await loadL3(db, msg.l3NetworkUuid, 'l3NetworkUuid'), msg.networkServices);
      },
      async run(msg) {
        await app.locks.withLock(`l3-services:${msg.l3NetworkUuid}`, () =>
          db.transaction(async (tx) => {
            const requested = await validateAttach(tx, await loadL3(tx, msg.l3NetworkUuid, 'l3NetworkUuid'), msg.networkServices);
            // Increasing createDates keep the refs in attach order (that is how inventories list them).
            const now = Date.now();
            const refs = requested.flatMap((r) => r.types.map((t) => ({ providerUuid: r.provider.uuid, type: t })));
            await tx.insert(networkServiceL3Refs).values(
              refs.map((r, i) => ({
                l3NetworkUuid: msg.l3NetworkUuid,
                networkServiceProviderUuid: r.providerUuid,
                networkServiceType: r.type,
                createDate: new Date(now + i),
                lastOpDate: new Date(now + i),
              })),
            );
          }),
        );
        return inventory(msg.l3NetworkUuid);
      },
    },
    DetachNetworkServiceFromL3Network: {
      check: async (msg) => void (await loadL3(db, msg.l3NetworkUuid, 'l3NetworkUuid')),
      async run(msg) {
        // Idempotent, as upstream: services (or providers) that are not attached are simply skipped.
        const map = (msg.networkServices ?? {}) as Record<string, string[]>;
        const found = await providersByKey(db, Object.keys(map));
        await app.locks.withLock(`l3-services:${msg.l3NetworkUuid}`, () =>
          db.transaction(async (tx) => {
            for (const [key, types] of Object.entries(map)) {
              const provider = found.get(key);
              if (!provider || types.length === 0) continue;
              await tx
                .delete(networkServiceL3Refs)
                .where(
                  and(
                    eq(networkServiceL3Refs.l3NetworkUuid, msg.l3NetworkUuid),
                    eq(networkServiceL3Refs.networkServiceProviderUuid, provider.uuid),
                    inArray(networkServiceL3Refs.networkServiceType, [types].flat()),
                  ),
                );
            }
            if (msg.service) {
              await tx
                .delete(networkServiceL3Refs)
                .where(and(eq(networkServiceL3Refs.l3NetworkUuid, msg.l3NetworkUuid), eq(networkServiceL3Refs.networkServiceType, msg.service)));
            }
          }),
        );
        return inventory(msg.l3NetworkUuid);
      },
    },
  });
}

// IP ranges of L3 networks: upstream's validation (zstack-api.md §5.2, L3NetworkApiInterceptor, same wording),
// the by-CIDR split rule, deletion through the cascade (used IPs of a range go with it).
import { and, asc, eq, inArray, sql, type SQL } from 'drizzle-orm';
import { updateHandler } from '../core/crud.js';
import type { DomainContext } from '../core/domain.js';
import type { Tx } from '../db/index.js';
import { ipRanges, l3Networks, usedIps, zones } from '../db/schema/index.js';
import { argErr, notFound } from '../core/errors.js';
import { freeIps, isIpFree } from './allocator.js';
import { defineHandlers, type Message } from '../core/handlers.js';
import { newUuid } from '../core/ids.js';
import { inSubnet, ipToLong, isIpv4, longToIp, overlaps, parseCidr, prefixOf, subnetOf } from './ip.js';
import { ipRangeInventory, type L3Row } from './inventory.js';
import { loadL3 } from './l3.js';

export interface RangeCandidate {
  name: string;
  description?: string;
  startIp: string;
  endIp: string;
  netmask: string;
  gateway: string;
  ipRangeType: 'Normal' | 'AddressPool';
}

const RESERVED: Array<[string, string, string]> = [
  ['224.0.0.0', '239.255.255.255', 'contains D class addresses which are for multicast'],
  ['240.0.0.0', '255.255.255.255', 'contains E class addresses which are reserved'],
  ['169.254.1.0', '169.254.254.255', 'contains link local addresses which are reserved'],
];

/** Checks one new range against the rules and the ranges already on the L2 network; throws SYS.1007. */
export async function validateRange(db: Tx, l3: L3Row, r: RangeCandidate): Promise<void> {
  if (r.ipRangeType === 'AddressPool' && l3.category !== 'Public') {
    throw argErr(`l3 network [uuid ${l3.uuid}: name ${l3.name}] is not a public network, address pool range can not be added`);
  }
  if (!isIpv4(r.startIp)) throw argErr(`start ip[${r.startIp}] is not a IPv4 address`);
  if (!isIpv4(r.endIp)) throw argErr(`end ip[${r.endIp}] is not a IPv4 address`);
  if (!isIpv4(r.gateway)) throw argErr(`gateway[${r.gateway}] is not a IPv4 address`);
  const prefix = prefixOf(r.netmask);
  if (prefix === undefined || prefix === 0) {
    throw argErr(`netmask[${r.netmask}] is not a netmask, and the IP range netmask cannot be 0.0.0.0`);
  }
  const start = ipToLong(r.startIp);
  const end = ipToLong(r.endIp);
  for (const [lo, hi, what] of RESERVED) {
    if (overlaps(ipToLong(lo), ipToLong(hi), Math.min(start, end), Math.max(start, end))) {
      throw argErr(`the IP range[${r.startIp} ~ ${r.endIp}] ${what}`);
    }
  }
  const subnet = subnetOf(r.startIp, prefix);
  const gw = ipToLong(r.gateway);
  if (!inSubnet(gw, subnet)) throw argErr(`the gateway[${r.gateway}] is not in the subnet ${r.startIp}/${r.netmask}`);
  if (start === subnet.network || end === subnet.broadcast) {
    throw argErr('ip allocation can not contain network address or broadcast address');
  }
  if (start > end) throw argErr(`start ip[${r.startIp}] is behind end ip[${r.endIp}]`);

  const onL2 = await db
    .select({ range: ipRanges })
    .from(ipRanges)
    .innerJoin(l3Networks, eq(l3Networks.uuid, ipRanges.l3NetworkUuid))
    .where(eq(l3Networks.l2NetworkUuid, l3.l2NetworkUuid));
  for (const { range: other } of onL2) {
    if (overlaps(start, end, other.startInt, other.endInt)) {
      throw argErr(`overlap with ip range[uuid:${other.uuid}, start ip:${other.startIp}, end ip: ${other.endIp}]`);
    }
    if (other.l3NetworkUuid !== l3.uuid || r.ipRangeType !== 'Normal' || other.ipRangeType !== 'Normal') continue;
    if (other.networkCidr !== subnet.cidr) {
      throw argErr(
        `multiple CIDR on the same L3 network is not allowed. There has been a IP range[uuid:${other.uuid}, CIDR:${other.networkCidr}], the new IP range[CIDR:${subnet.cidr}] is not in the CIDR with the existing one`,
      );
    }
  }
  if (r.ipRangeType === 'Normal') {
    if (!inSubnet(end, subnet)) throw argErr(`the endip[${r.endIp}] is not in the subnet ${r.startIp}/${r.netmask}`);
    if (start <= gw && gw <= end) throw argErr(`gateway[${r.gateway}] can not be part of range[${r.startIp}, ${r.endIp}]`);
    for (const { range: other } of onL2) {
      if (other.l3NetworkUuid === l3.uuid && other.ipRangeType === 'Normal' && other.gateway !== r.gateway) {
        throw argErr(`new add ip range gateway ${r.gateway} is different from old gateway ${other.gateway}`);
      }
    }
  }
}

/** The ranges AddIpRangeByNetworkCidr adds (IpRangeInventory.fromMessage upstream). */
export function rangesFromCidr(msg: {
  name: string;
  description?: string;
  networkCidr: string;
  gateway?: string;
  ipRangeType?: 'Normal' | 'AddressPool';
}): RangeCandidate[] {
  const subnet = parseCidr(msg.networkCidr);
  if (!subnet) throw argErr(`${msg.networkCidr} is not a valid network cidr`);
  if (subnet.prefix > 30) throw argErr(`${msg.networkCidr} is not an allowed network cidr, because it doesn't have usable ip range`);
  const first = subnet.network + 1;
  const last = subnet.broadcast - 1;
  if (msg.gateway !== undefined) {
    const g = isIpv4(msg.gateway) ? ipToLong(msg.gateway) : NaN;
    if (!(g >= first && g <= last)) throw argErr(`the gateway[${msg.gateway}] is not in the subnet ${subnet.cidr}`);
  }
  const base = { name: msg.name, description: msg.description, netmask: subnet.netmask, ipRangeType: msg.ipRangeType ?? 'Normal' } as const;
  const range = (lo: number, hi: number, gw: number): RangeCandidate => ({ ...base, startIp: longToIp(lo), endIp: longToIp(hi), gateway: longToIp(gw) });
  if (base.ipRangeType === 'AddressPool') return [range(first, last, first)];
  const gw = msg.gateway !== undefined ? ipToLong(msg.gateway) : first;
  if (gw === first) return [range(first + 1, last, gw)];
  if (gw === last) return [range(first, last - 1, gw)];
  return [range(first, gw - 1, gw), range(gw + 1, last, gw)];
}

export function ipRangeHandlers(app: DomainContext) {
  const { db } = app;

  /** Validates and inserts the ranges, one L2 network's ranges at a time so overlaps cannot slip in by racing. */
  async function addRanges(l3Uuid: string, candidates: RangeCandidate[], resourceUuid?: string) {
    const l3 = await loadL3(db, l3Uuid, 'l3NetworkUuid');
    return app.locks.withLock(`l2-ip-ranges:${l3.l2NetworkUuid}`, () =>
      db.transaction(async (tx) => {
        const out = [];
        for (const [i, c] of candidates.entries()) {
          await validateRange(tx, l3, c);
          const start = ipToLong(c.startIp);
          const [row] = await tx
            .insert(ipRanges)
            .values({
              uuid: (i === 0 ? resourceUuid : undefined) ?? newUuid(),
              l3NetworkUuid: l3Uuid,
              name: c.name,
              description: c.description ?? null,
              startIp: c.startIp,
              endIp: c.endIp,
              netmask: c.netmask,
              gateway: c.gateway,
              networkCidr: subnetOf(c.startIp, prefixOf(c.netmask)!).cidr,
              ipRangeType: c.ipRangeType,
              startInt: start,
              endInt: ipToLong(c.endIp),
            })
            .returning();
          out.push(ipRangeInventory(row));
        }
        return out;
      }),
    );
  }

  const candidateOf = (msg: Message<'AddIpRange'>): RangeCandidate => {
    const ipRangeType = msg.ipRangeType ?? 'Normal';
    if (ipRangeType === 'Normal' && !msg.gateway) throw argErr('adding normal ip range must specify gateway ip address');
    // An address pool's gateway is its start address (upstream's "fake gateway").
    const gateway = ipRangeType === 'AddressPool' ? msg.startIp : msg.gateway!;
    return { name: msg.name, description: msg.description, startIp: msg.startIp, endIp: msg.endIp, netmask: msg.netmask, gateway, ipRangeType };
  };

  return defineHandlers({
    AddIpRange: {
      async check(msg) {
        const l3 = await loadL3(db, msg.l3NetworkUuid, 'l3NetworkUuid');
        await validateRange(db, l3, candidateOf(msg));
      },
      async run(msg) {
        const [inventory] = await addRanges(msg.l3NetworkUuid, [candidateOf(msg)], msg.resourceUuid);
        return { inventory };
      },
    },
    AddIpRangeByNetworkCidr: {
      async check(msg) {
        const l3 = await loadL3(db, msg.l3NetworkUuid, 'l3NetworkUuid');
        for (const c of rangesFromCidr(msg)) await validateRange(db, l3, c);
      },
      async run(msg) {
        const inventories = await addRanges(msg.l3NetworkUuid, rangesFromCidr(msg), msg.resourceUuid);
        return { inventory: inventories[0], inventories };
      },
    },
    UpdateIpRange: updateHandler(app, { table: ipRanges, entity: 'IpRangeVO', inventory: ipRangeInventory, fields: ['name', 'description'], check: false }),
    GetFreeIp: {
      async run(msg) {
        await loadL3(db, msg.l3NetworkUuid, 'l3NetworkUuid');
        const where = [eq(ipRanges.l3NetworkUuid, msg.l3NetworkUuid)];
        if (msg.ipRangeUuid !== undefined) {
          const [range] = await db.select({ l3: ipRanges.l3NetworkUuid }).from(ipRanges).where(eq(ipRanges.uuid, msg.ipRangeUuid));
          if (!range) throw notFound('IpRangeVO', msg.ipRangeUuid, 'ipRangeUuid');
          if (range.l3 !== msg.l3NetworkUuid) {
            throw argErr(`IP range[uuid:${msg.ipRangeUuid}] is not a range of L3 network[uuid:${msg.l3NetworkUuid}]`);
          }
          where.push(eq(ipRanges.uuid, msg.ipRangeUuid));
        }
        const ranges = await db
          .select()
          .from(ipRanges)
          .where(and(...where))
          .orderBy(asc(ipRanges.startInt));
        return { inventories: await freeIps(db, ranges, { start: msg.start, limit: msg.limit ?? 100 }) };
      },
    },
    CheckIpAvailability: {
      async run(msg) {
        if (!isIpv4(msg.ip)) throw argErr(`invalid IP[${msg.ip}]`);
        await loadL3(db, msg.l3NetworkUuid, 'l3NetworkUuid');
        return { available: await isIpFree(db, msg.l3NetworkUuid, msg.ip) };
      },
    },
    GetIpAddressCapacity: {
      async check(msg) {
        const lists = [msg.ipRangeUuids, msg.l3NetworkUuids, msg.zoneUuids];
        if (!msg.all && !lists.some((l) => l && l.length > 0)) {
          throw argErr('ipRangeUuids, L3NetworkUuids, zoneUuids must have at least one be none-empty list, or all is set to true');
        }
      },
      async run(msg) {
        // The most specific non-empty list decides (upstream's order); all=true without zones means every zone.
        let ranges: SQL;
        if (msg.ipRangeUuids?.length) ranges = sql`SELECT * FROM ${ipRanges} WHERE uuid = ANY(${sql.param(msg.ipRangeUuids)}::text[])`;
        else if (msg.l3NetworkUuids?.length) ranges = sql`SELECT * FROM ${ipRanges} WHERE l3_network_uuid = ANY(${sql.param(msg.l3NetworkUuids)}::text[])`;
        else {
          const zoneUuids = msg.zoneUuids?.length ? msg.zoneUuids : (await db.select({ uuid: zones.uuid }).from(zones)).map((z) => z.uuid);
          ranges = sql`SELECT r.* FROM ${ipRanges} r JOIN ${l3Networks} l ON l.uuid = r.l3_network_uuid WHERE l.zone_uuid = ANY(${sql.param(zoneUuids)}::text[])`;
        }
        // Used addresses are counted inside their range's bounds (a virtual router on the gateway is outside it).
        const result = (await db.execute(sql`
          WITH r AS (${ranges})
          SELECT COALESCE((SELECT sum(end_int - start_int + 1) FROM r), 0)::bigint AS total,
                 (SELECT count(*) FROM ${usedIps} u JOIN r ON u.ip_range_uuid = r.uuid AND u.ip_in_long BETWEEN r.start_int AND r.end_int)::bigint AS used`)) as unknown as {
          rows: Array<{ total: string | number; used: string | number }>;
        };
        const total = Number(result.rows[0].total);
        return { totalCapacity: total, availableCapacity: Math.max(0, total - Number(result.rows[0].used)) };
      },
    },
    DeleteIpRange: {
      async check(msg) {
        const [range] = await db.select().from(ipRanges).where(eq(ipRanges.uuid, msg.uuid));
        if (!range || range.ipRangeType !== 'Normal' || msg.deleteMode === 'Enforcing') return;
        const siblings = await db.select({ type: ipRanges.ipRangeType }).from(ipRanges).where(eq(ipRanges.l3NetworkUuid, range.l3NetworkUuid));
        const normals = siblings.filter((s) => s.type === 'Normal').length;
        if (normals === 1 && siblings.length > normals) {
          throw argErr('can not delete the last normal ip range because there is still has address pool');
        }
      },
      async run(msg) {
        await app.cascade.delete('ipRange', [msg.uuid], msg.deleteMode ?? 'Permissive');
        return {};
      },
    },
  });
}

/** Cascade: ranges live on an L3 network; deleting one also returns its used IPs (VM NICs are detached first). */
export function registerIpRangeCascade(app: DomainContext): void {
  const { db } = app;
  app.cascade.register({
    kind: 'ipRange',
    parents: {
      l3: async (l3Uuids) => (await db.select({ uuid: ipRanges.uuid }).from(ipRanges).where(inArray(ipRanges.l3NetworkUuid, l3Uuids))).map((r) => r.uuid),
    },
    async delete(uuids) {
      await db.transaction(async (tx) => {
        await tx.delete(usedIps).where(inArray(usedIps.ipRangeUuid, uuids));
        await tx.delete(ipRanges).where(inArray(ipRanges.uuid, uuids));
      });
    },
  });
}

// IP allocation on an L3 network (zstack-internals.md §5.3). A reservation is one INSERT into used_ips;
// UNIQUE(l3, ip_in_long) makes a concurrent double allocation impossible. The insert says ON CONFLICT DO NOTHING,
// so losing a race never aborts the caller's transaction (no savepoint needed): we look again and try another
// address. Random allocations also skip addresses that other open transactions are inserting (a try-lock), so
// callers holding longer transactions do not queue behind each other.
import { and, asc, between, count, eq, sql, type SQL } from 'drizzle-orm';
import type { Tx } from '../db/index.js';
import { immediate, type Bind } from '../db/perf/template.js';
import { ipRanges, l3Networks, usedIps } from '../db/schema/index.js';
import { argErr, err } from '../core/errors.js';
import { newUuid } from '../core/ids.js';
import { ipToLong, isIpv4, longToIp } from './ip.js';
import type { IpRangeRow } from './inventory.js';

export type IpAllocatorStrategy = 'Random' | 'FirstAvailable';

export interface AllocateIpOptions {
  /**
   * A required address (upstream's `staticIp` system tag); must lie in a range of the L3 and be free. For
   * `ApplianceVm` the ranges' gateway address is allowed too (a virtual router serving as the gateway).
   */
  staticIp?: string;
  /** Random (default, as upstream's L3BasicNetwork) or FirstAvailable. */
  strategy?: IpAllocatorStrategy;
  usedFor: 'UserVm' | 'ApplianceVm' | 'DHCP' | 'Vip';
  vmNicUuid?: string;
}

export interface AllocatedIp {
  usedIpUuid: string;
  ip: string;
  netmask: string;
  gateway: string;
  ipRangeUuid: string;
}

/** Addresses scanned per query by the random strategy. */
const WINDOW = 256;
/** Lost races tolerated before giving up (each one means another caller got an address). */
const MAX_ATTEMPTS = 1000;
/** Busy addresses skipped before a random allocation waits for the transactions inserting them. */
const MAX_SKIPS = 20;

export const noIpAvailable = (l3Uuid: string) => err('L3.1000', `no IP available on L3 network[uuid:${l3Uuid}]`);

/** The allocatable interval of a range: never the gateway (an AddressPool's gateway is its startIp). */
function bounds(r: IpRangeRow): { lo: number; hi: number } {
  const gw = ipToLong(r.gateway);
  let lo = r.startInt;
  let hi = r.endInt;
  if (gw === lo) lo++;
  if (gw === hi) hi--;
  return { lo, hi };
}

export async function allocateIp(tx: Tx, l3Uuid: string, opts: AllocateIpOptions): Promise<AllocatedIp> {
  const ranges = await tx.select().from(ipRanges).where(eq(ipRanges.l3NetworkUuid, l3Uuid)).orderBy(asc(ipRanges.startInt));
  if (opts.staticIp !== undefined) return allocateStatic(tx, l3Uuid, ranges, opts);
  // Random allocations skip addresses other transactions are inserting; after many skips (a nearly full range
  // whose last addresses are in flight) they wait for those transactions instead, so a rollback frees them.
  let skips = 0;
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const order = opts.strategy === 'FirstAvailable' ? ranges : shuffle(ranges);
    let sawFree = false;
    for (const r of order) {
      const candidate = opts.strategy === 'FirstAvailable' ? await lowestFree(tx, l3Uuid, r) : await randomFree(tx, l3Uuid, r);
      if (candidate === undefined) continue;
      sawFree = true;
      const got = await reserve(tx, l3Uuid, r, candidate, opts, opts.strategy !== 'FirstAvailable' && skips < MAX_SKIPS);
      if (got) return got;
      skips++;
      break; // lost a race: look again from the start
    }
    if (!sawFree) throw noIpAvailable(l3Uuid);
  }
  throw noIpAvailable(l3Uuid);
}

async function allocateStatic(tx: Tx, l3Uuid: string, ranges: IpRangeRow[], opts: AllocateIpOptions): Promise<AllocatedIp> {
  const ip = opts.staticIp!;
  if (!isIpv4(ip)) throw argErr(`static IP[${ip}] is not an IPv4 address`);
  const n = ipToLong(ip);
  // An appliance VM (a virtual router's guest NIC) may take the gateway address itself, as upstream's VR does.
  const r = ranges.find((x) => n >= bounds(x).lo && n <= bounds(x).hi) ?? (opts.usedFor === 'ApplianceVm' ? ranges.find((x) => x.gateway === ip) : undefined);
  if (!r) throw argErr(`static IP[${ip}] is not in any IP range of L3 network[uuid:${l3Uuid}]`);
  const got = await reserve(tx, l3Uuid, r, n, opts);
  if (!got) throw argErr(`static IP[${ip}] is already used on L3 network[uuid:${l3Uuid}]`);
  return got;
}

/**
 * Inserts the used IP; undefined when the address is taken. With `skipBusy`, an address another transaction is
 * inserting right now is skipped instead of waited for (a transaction-scoped try-lock on the address), so random
 * allocations inside long transactions never queue behind each other.
 */
async function reserve(tx: Tx, l3Uuid: string, r: IpRangeRow, n: number, opts: AllocateIpOptions, skipBusy = false): Promise<AllocatedIp | undefined> {
  const uuid = newUuid();
  const ip = longToIp(n);
  const values = {
    uuid,
    ipRangeUuid: r.uuid,
    l3NetworkUuid: l3Uuid,
    ip,
    ipInLong: n,
    netmask: r.netmask,
    gateway: r.gateway,
    usedFor: opts.usedFor,
    vmNicUuid: opts.vmNicUuid ?? null,
  };
  let inserted: unknown[];
  if (skipBusy) {
    const result = (await tx.execute(usedIpInsertIfFree(uuid, l3Uuid, r, n, opts))) as unknown as { rows: unknown[] };
    inserted = result.rows;
  } else {
    inserted = await tx
      .insert(usedIps)
      .values(values)
      .onConflictDoNothing({ target: [usedIps.l3NetworkUuid, usedIps.ipInLong] })
      .returning({ uuid: usedIps.uuid });
  }
  if (inserted.length === 0) return undefined;
  return { usedIpUuid: uuid, ip, netmask: r.netmask, gateway: r.gateway, ipRangeUuid: r.uuid };
}

/**
 * INSERT of a used IP that inserts nothing (and never waits) when the address is taken or another transaction is
 * inserting it right now (a transaction-scoped try-lock on the address, taken in the same statement).
 * RETURNING uuid. Usable as a data-modifying CTE.
 */
export function usedIpInsertIfFree(uuid: string, l3Uuid: string, r: IpRangeRow, n: number, opts: Pick<AllocateIpOptions, 'usedFor' | 'vmNicUuid'>): SQL {
  return sql`INSERT INTO ${usedIps} (uuid, ip_range_uuid, l3_network_uuid, ip, ip_in_long, netmask, gateway, used_for, vm_nic_uuid)
      SELECT ${uuid}, ${r.uuid}, ${l3Uuid}, ${longToIp(n)}, ${n}::bigint, ${r.netmask}, ${r.gateway}, ${opts.usedFor}, ${opts.vmNicUuid ?? null}
      WHERE pg_try_advisory_xact_lock(hashtextextended(${`used-ip:${l3Uuid}:${n}`}, 0))
      ON CONFLICT (l3_network_uuid, ip_in_long) DO NOTHING RETURNING uuid`;
}

/**
 * An INSERT of a used IP that picks the address itself, like the random strategy: a random range, a free address
 * from a random start in it within WINDOW addresses (no sort: PostgreSQL stops at the first free one it meets instead
 * of probing the whole window; any free one is fine), never the range's gateway at either end. The address is taken
 * only when free and not being inserted by another transaction (try-lock, ON CONFLICT DO NOTHING); nothing is
 * inserted otherwise, and the caller then uses allocateIp. RETURNING uuid, ip, netmask, gateway; usable as a CTE.
 */
/** Its values are bound now; the SQL is built by the function returned (db/perf/template.ts `Deferred`). */
export function bindFreeIpInsert(uuid: string, l3Uuid: string, opts: Pick<AllocateIpOptions, 'usedFor' | 'vmNicUuid'>, bind: Bind): () => SQL {
  const l3 = bind('l3NetworkUuid', l3Uuid);
  // (The purpose is a bound value: the statement's text is the same for every purpose, rendered once.)
  const usedFor = bind('usedFor', opts.usedFor);
  const usedIpUuid = bind('uuid', uuid);
  const vmNicUuid = bind('vmNicUuid', opts.vmNicUuid ?? null);
  return () => {
    // A user VM's address only on an Enabled L3: the row lock waits for a deletion's fence (it makes the L3 Disabled
    // while holding the row, vm/allocation/fences.ts), and the state is then read again on the row it changed.
    const enabledL3 = sql` AND (${usedFor}::text <> 'UserVm' OR EXISTS (SELECT 1 FROM ${l3Networks} l WHERE l.uuid = ${l3} AND l.state = 'Enabled' FOR KEY SHARE))`;
    const ipToLongSql = (col: SQL) =>
      sql`((split_part(${col}, '.', 1)::bigint << 24) + (split_part(${col}, '.', 2)::bigint << 16) + (split_part(${col}, '.', 3)::bigint << 8) + split_part(${col}, '.', 4)::bigint)`;
    return sql`INSERT INTO ${usedIps} (uuid, ip_range_uuid, l3_network_uuid, ip, ip_in_long, netmask, gateway, used_for, vm_nic_uuid)
    SELECT ${usedIpUuid}, c.uuid, ${l3}, concat_ws('.', (c.n >> 24) & 255, (c.n >> 16) & 255, (c.n >> 8) & 255, c.n & 255), c.n, c.netmask, c.gateway,
           ${usedFor}, ${vmNicUuid}
      FROM (
        SELECT r.uuid, r.netmask, r.gateway, n FROM (
          SELECT ir.uuid, ir.netmask, ir.gateway, b.hi, b.lo + floor(random() * (b.hi - b.lo + 1))::bigint AS start
            FROM ${ipRanges} ir CROSS JOIN LATERAL (
              SELECT ir.start_int + (g.gw = ir.start_int)::int AS lo, ir.end_int - (g.gw = ir.end_int)::int AS hi
                FROM (SELECT ${ipToLongSql(sql`ir.gateway`)} AS gw) g) b
           WHERE ir.l3_network_uuid = ${l3} AND b.hi >= b.lo${enabledL3}
           ORDER BY random() LIMIT 1) r
        CROSS JOIN LATERAL generate_series(r.start, LEAST(r.start + ${WINDOW - 1}, r.hi)) n
        WHERE NOT EXISTS (SELECT 1 FROM ${usedIps} u WHERE u.l3_network_uuid = ${l3} AND u.ip_in_long = n)
        LIMIT 1) c
     WHERE pg_try_advisory_xact_lock(hashtextextended('used-ip:' || ${l3}::text || ':' || c.n, 0))
    ON CONFLICT (l3_network_uuid, ip_in_long) DO NOTHING RETURNING uuid, ip, netmask, gateway`;
  };
}

async function usedCount(tx: Tx, l3Uuid: string, lo: number, hi: number): Promise<number> {
  const [{ n }] = await tx
    .select({ n: count() })
    .from(usedIps)
    .where(and(eq(usedIps.l3NetworkUuid, l3Uuid), between(usedIps.ipInLong, lo, hi)));
  return Number(n);
}

/** A random free address of the range: a random window, then the following ones (wrapping), as upstream scans. */
async function randomFree(tx: Tx, l3Uuid: string, r: IpRangeRow): Promise<number | undefined> {
  const { lo, hi } = bounds(r);
  const size = hi - lo + 1;
  if (size <= 0) return undefined;
  let start = lo + Math.floor(Math.random() * size);
  let counted = false;
  // Windows from a random start to the range end, then from the range start: every address once. A full range is
  // noticed by a count after the first window comes back full (not before: most first windows have room).
  for (let scanned = 0; scanned < size; start = start + WINDOW > hi ? lo : start + WINDOW) {
    if (scanned > 0 && !counted) {
      counted = true;
      if ((await usedCount(tx, l3Uuid, lo, hi)) >= size) return undefined;
    }
    const end = Math.min(hi, start + WINDOW - 1);
    scanned += end - start + 1;
    const rows = await tx
      .select({ n: usedIps.ipInLong })
      .from(usedIps)
      .where(and(eq(usedIps.l3NetworkUuid, l3Uuid), between(usedIps.ipInLong, start, end)));
    const taken = new Set(rows.map((x) => Number(x.n)));
    const free: number[] = [];
    for (let n = start; n <= end; n++) if (!taken.has(n)) free.push(n);
    if (free.length) return free[Math.floor(Math.random() * free.length)];
  }
  return undefined;
}

/** The lowest free address of the range: the range start, or the first used address whose successor is free. */
async function lowestFree(tx: Tx, l3Uuid: string, r: IpRangeRow): Promise<number | undefined> {
  const { lo, hi } = bounds(r);
  if (hi < lo) return undefined;
  const result = (await tx.execute(sql`
    SELECT c FROM (
      SELECT ${lo}::bigint AS c
      UNION ALL
      SELECT u.ip_in_long + 1 FROM ${usedIps} u
       WHERE u.l3_network_uuid = ${l3Uuid} AND u.ip_in_long BETWEEN ${lo} AND ${hi}
    ) candidates
    WHERE c BETWEEN ${lo} AND ${hi}
      AND NOT EXISTS (SELECT 1 FROM ${usedIps} x WHERE x.l3_network_uuid = ${l3Uuid} AND x.ip_in_long = candidates.c)
    ORDER BY c LIMIT 1`)) as unknown as { rows: Array<{ c: number | string }> };
  const row = result.rows[0];
  return row ? Number(row.c) : undefined;
}

function shuffle<T>(items: T[]): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** `fa:` + 4 random octets + the NIC's device id as 2 hex digits (upstream's NetworkUtils.generateMacWithDeviceId). */
export function generateMac(deviceId: number): string {
  const octets = Array.from({ length: 4 }, () => Math.floor(Math.random() * 256));
  return ['fa', ...octets.map((o) => o.toString(16).padStart(2, '0')), (deviceId % 256).toString(16).padStart(2, '0')].join(':');
}

/** How many addresses of the L3 network's ranges are still free. */
export async function freeIpCount(tx: Tx, l3Uuid: string): Promise<number> {
  const ranges = await tx.select().from(ipRanges).where(eq(ipRanges.l3NetworkUuid, l3Uuid));
  let free = 0;
  for (const r of ranges) {
    const { lo, hi } = bounds(r);
    if (hi >= lo) free += hi - lo + 1 - (await usedCount(tx, l3Uuid, lo, hi));
  }
  return free;
}

/** GetFreeIp answers at most this many addresses per call, whatever the limit (a /8 range has 16 million). */
export const MAX_FREE_IPS = 65536;

/**
 * Addresses the allocator could hand out now, ascending range by range (ranges by start address): inside a range's
 * allocatable interval (never its gateway), not used, from `start` on; at most `limit` (negative: MAX_FREE_IPS).
 */
export async function freeIps(
  tx: Tx,
  ranges: IpRangeRow[],
  opts: { start?: string; limit: number },
): Promise<Array<{ ipRangeUuid: string; ip: string; netmask: string; gateway: string }>> {
  let left = opts.limit < 0 ? MAX_FREE_IPS : Math.min(opts.limit, MAX_FREE_IPS);
  const from = opts.start !== undefined ? ipToLong(opts.start) : 0;
  const out: Array<{ ipRangeUuid: string; ip: string; netmask: string; gateway: string }> = [];
  for (const r of [...ranges].sort((a, b) => a.startInt - b.startInt)) {
    if (left <= 0) break;
    const { lo, hi } = bounds(r);
    const first = Math.max(lo, from);
    if (first > hi) continue;
    // generate_series yields in order, so PostgreSQL stops after `left` free addresses without sorting.
    const result = (await tx.execute(sql`
      SELECT n FROM generate_series(${first}::bigint, ${hi}::bigint) n
       WHERE NOT EXISTS (SELECT 1 FROM ${usedIps} u WHERE u.l3_network_uuid = ${r.l3NetworkUuid} AND u.ip_in_long = n)
       LIMIT ${left}`)) as unknown as { rows: Array<{ n: number | string }> };
    for (const row of result.rows) out.push({ ipRangeUuid: r.uuid, ip: longToIp(Number(row.n)), netmask: r.netmask, gateway: r.gateway });
    left -= result.rows.length;
  }
  return out;
}

/** Whether the allocator could hand out `ip` on the L3 now: inside a range, not a gateway, not used (CheckIpAvailability). */
export async function isIpFree(tx: Tx, l3Uuid: string, ip: string): Promise<boolean> {
  const n = ipToLong(ip);
  const ranges = await tx.select().from(ipRanges).where(eq(ipRanges.l3NetworkUuid, l3Uuid));
  if (ranges.some((r) => r.gateway === ip)) return false;
  if (!ranges.some((r) => n >= bounds(r).lo && n <= bounds(r).hi)) return false;
  const [used] = await tx
    .select({ uuid: usedIps.uuid })
    .from(usedIps)
    .where(and(eq(usedIps.l3NetworkUuid, l3Uuid), eq(usedIps.ipInLong, n)));
  return !used;
}

// What other domains use of the network domain (`ctx.use('networks')`): IP allocation and release, MAC
// generation, the network services attached to an L3 network, the L3 inventory, and a hook the VM module uses to
// detach NICs before an L2 network leaves a cluster.
import { asc, eq, inArray } from 'drizzle-orm';
import type { Db, Tx } from '../db/index.js';
import { l3Networks, networkServiceL3Refs, networkServiceProviders, usedIps } from '../db/schema/index.js';
import { notFound } from '../core/errors.js';
import { allocateIp, generateMac, type AllocateIpOptions, type AllocatedIp } from './allocator.js';
import { l3Inventories, type L3Inventory } from './inventory.js';

export type L2DetachHook = (l2NetworkUuid: string, clusterUuid: string) => Promise<void>;

export class NetworkService {
  private l2DetachHooks: L2DetachHook[] = [];

  constructor(
    private db: Db,
    /** App.remembered: a read reused while its tables are unchanged (db/perf/read-cache.ts). */
    private remembered: <T>(key: string, read: () => Promise<T>) => Promise<T> = (_key, read) => read(),
  ) {}

  /**
   * Reserves an address on the L3 network inside `tx` (unique per L3 even under concurrency). L3.1000 (503) when
   * every range is full; SYS.1007 for a `staticIp` outside the ranges or already used.
   */
  allocateIp(tx: Tx, l3Uuid: string, opts: AllocateIpOptions): Promise<AllocatedIp> {
    return allocateIp(tx, l3Uuid, opts);
  }

  /** Returns the address; releasing one already gone (e.g. its range was deleted) is fine. */
  async releaseIp(tx: Tx, usedIpUuid: string): Promise<void> {
    await tx.delete(usedIps).where(eq(usedIps.uuid, usedIpUuid));
  }

  /** Links a reserved address to the NIC that got it. */
  async setIpOwner(tx: Tx, usedIpUuid: string, vmNicUuid: string): Promise<void> {
    await tx.update(usedIps).set({ vmNicUuid, lastOpDate: new Date() }).where(eq(usedIps.uuid, usedIpUuid));
  }

  /** `fa:` + 4 random octets + deviceId as 2 hex digits; callers retry on the UNIQUE(mac) conflict. */
  generateMac(deviceId: number): string {
    return generateMac(deviceId);
  }

  /** The network services attached to the L3 network, in attach order. */
  async providersOf(l3Uuid: string, tx?: Tx): Promise<Array<{ providerUuid: string; providerType: string; serviceType: string }>> {
    // Outside a transaction (every VM start asks), through the memo: attach/detach of services change it rarely.
    if (!tx) return this.remembered(`providersOf:${l3Uuid}`, () => this.providersOf(l3Uuid, this.db));
    return tx
      .select({
        providerUuid: networkServiceL3Refs.networkServiceProviderUuid,
        providerType: networkServiceProviders.type,
        serviceType: networkServiceL3Refs.networkServiceType,
      })
      .from(networkServiceL3Refs)
      .innerJoin(networkServiceProviders, eq(networkServiceProviders.uuid, networkServiceL3Refs.networkServiceProviderUuid))
      .where(eq(networkServiceL3Refs.l3NetworkUuid, l3Uuid))
      .orderBy(asc(networkServiceL3Refs.createDate));
  }

  /** The L3 inventory exactly as QueryL3Network answers it; SYS.1003 when the network does not exist. */
  async l3Inventory(uuid: string, tx: Tx = this.db): Promise<L3Inventory> {
    const rows = await tx.select().from(l3Networks).where(eq(l3Networks.uuid, uuid));
    if (!rows.length) throw notFound('L3NetworkVO', uuid);
    return (await l3Inventories(rows, tx))[0];
  }

  /** L3 inventories of the given networks (unknown ones left out), in creation order. */
  async l3Inventories(uuids: string[], tx: Tx = this.db): Promise<L3Inventory[]> {
    if (!uuids.length) return [];
    const rows = await tx.select().from(l3Networks).where(inArray(l3Networks.uuid, uuids)).orderBy(asc(l3Networks.createDate), asc(l3Networks.uuid));
    return l3Inventories(rows, tx);
  }

  /** Runs before an L2 network is detached from a cluster (the VM module detaches the NICs concerned). */
  onL2DetachFromCluster(hook: L2DetachHook): void {
    this.l2DetachHooks.push(hook);
  }

  async runL2DetachHooks(l2NetworkUuid: string, clusterUuid: string): Promise<void> {
    for (const hook of this.l2DetachHooks) await hook(l2NetworkUuid, clusterUuid);
  }
}

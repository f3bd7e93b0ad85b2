// What other domains use of VIPs (`ctx.use('vips')`): finding one, and taking it for a network service. A VIP serves
// one service (`useFor`) on one guest L3 network (`peerL3NetworkUuid`) at a time (upstream VipManagerImpl.lockVip /
// acquireVip); taking and giving back are single UPDATEs, so two services racing for one VIP cannot both win.
import { and, eq, isNull, or, sql } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import type { Tx } from '../db/index.js';
import { vips } from '../db/schema/index.js';
import { notFound, opErr } from '../core/errors.js';
import type { VipRow } from './inventory.js';

/** The provider applying every VIP service we serve. */
export const VIP_SERVICE_PROVIDER = 'VirtualRouter';

export class VipService {
  constructor(private readonly app: DomainContext) {}

  async get(uuid: string, tx: Tx = this.app.db): Promise<VipRow | undefined> {
    const [row] = await tx.select().from(vips).where(eq(vips.uuid, uuid));
    return row;
  }

  /** The VIP; SYS.1003 naming `field` when it does not exist. */
  async require(uuid: string, field = 'uuid', tx: Tx = this.app.db): Promise<VipRow> {
    const row = await this.get(uuid, tx);
    if (!row) throw notFound('VipVO', uuid, field);
    return row;
  }

  /**
   * Takes the VIP for `useFor` (and, when given, the guest L3 network it will serve): refused (SYS.1006) when it is
   * Disabled, used by another service, or serving another guest network. Taking it again for the same use is fine.
   */
  async acquire(vipUuid: string, useFor: string, opts: { peerL3NetworkUuid?: string; field?: string; tx?: Tx } = {}): Promise<VipRow> {
    const tx = opts.tx ?? this.app.db;
    const peer = opts.peerL3NetworkUuid;
    const [row] = await tx
      .update(vips)
      .set({
        useFor,
        serviceProvider: VIP_SERVICE_PROVIDER,
        ...(peer ? { peerL3NetworkUuid: sql`coalesce(${vips.peerL3NetworkUuid}, ${peer})` } : {}),
        lastOpDate: new Date(),
      })
      .where(
        and(
          eq(vips.uuid, vipUuid),
          eq(vips.state, 'Enabled'),
          or(isNull(vips.useFor), eq(vips.useFor, useFor)),
          peer ? or(isNull(vips.peerL3NetworkUuid), eq(vips.peerL3NetworkUuid, peer)) : undefined,
        ),
      )
      .returning();
    if (row) return row;
    const vip = await this.require(vipUuid, opts.field ?? 'vipUuid', tx);
    if (vip.state !== 'Enabled') throw opErr(`vip[uuid:${vip.uuid}, ip:${vip.ip}] is ${vip.state}; enable it first`);
    if (vip.useFor && vip.useFor !== useFor) {
      throw opErr(`vip[uuid:${vip.uuid}, name:${vip.name}, ip:${vip.ip}] has been occupied by usage[${vip.useFor}]`);
    }
    throw opErr(`vip[uuid:${vip.uuid}, name:${vip.name}] has been serving l3Network[uuid:${vip.peerL3NetworkUuid}], can't serve l3Network[uuid:${peer}]`);
  }

  /** Sets (or, with null, clears) the guest L3 network the VIP serves. */
  async setPeer(vipUuid: string, peerL3NetworkUuid: string | null, tx: Tx = this.app.db): Promise<void> {
    await tx.update(vips).set({ peerL3NetworkUuid, lastOpDate: new Date() }).where(eq(vips.uuid, vipUuid));
  }

  /** Gives the VIP back: no service, no guest network (only when `useFor` still holds it). */
  async release(vipUuid: string, useFor: string, tx: Tx = this.app.db): Promise<void> {
    await tx
      .update(vips)
      .set({ useFor: null, serviceProvider: null, peerL3NetworkUuid: null, lastOpDate: new Date() })
      .where(and(eq(vips.uuid, vipUuid), eq(vips.useFor, useFor)));
  }
}
export const vipLockKey = (vipUuid: string) => `vip:${vipUuid}`;

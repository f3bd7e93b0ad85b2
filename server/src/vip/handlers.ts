// The VIP APIs (upstream VipApiInterceptor + VipManagerImpl, 1.1): an address taken from the L3 network by the NIC
// allocator (network domain), given back on delete, after the cascade has removed what used the VIP.
import { and, eq } from 'drizzle-orm';
import { changeStateHandler, deleteHandler, updateHandler } from '../core/crud.js';
import type { DomainContext } from '../core/domain.js';
import { l3Networks, vips } from '../db/schema/index.js';
import { argErr, notFound, opErr } from '../core/errors.js';
import { defineHandlers } from '../core/handlers.js';
import { newUuid } from '../core/ids.js';
import { isIpv4, type IpAllocatorStrategy } from '../network/index.js';
import { vipInventory } from './inventory.js';
import type { VipService } from './service.js';

const STRATEGIES: Record<string, IpAllocatorStrategy> = {
  RandomIpAllocatorStrategy: 'Random',
  FirstAvailableIpAllocatorStrategy: 'FirstAvailable',
};

export function vipHandlers(app: DomainContext, service: VipService) {
  const { db } = app;
  const inventory = async (uuid: string) => ({ inventory: vipInventory(await service.require(uuid)) });
  const vip = { table: vips, entity: 'VipVO', inventory: vipInventory };

  return defineHandlers({
    CreateVip: {
      async check(msg) {
        if (msg.allocatorStrategy !== undefined && !STRATEGIES[msg.allocatorStrategy]) {
          throw argErr(`unsupported ip allocation strategy[${msg.allocatorStrategy}]`);
        }
        const [l3] = await db.select({ uuid: l3Networks.uuid }).from(l3Networks).where(eq(l3Networks.uuid, msg.l3NetworkUuid));
        if (!l3) throw notFound('L3NetworkVO', msg.l3NetworkUuid, 'l3NetworkUuid');
        if (msg.requiredIp !== undefined) {
          if (!isIpv4(msg.requiredIp)) throw argErr(`requiredIp[${msg.requiredIp}] is not in valid IPv4 mediaType`);
          const [dup] = await db
            .select({ uuid: vips.uuid })
            .from(vips)
            .where(and(eq(vips.ip, msg.requiredIp), eq(vips.l3NetworkUuid, msg.l3NetworkUuid)));
          if (dup) throw opErr(`there is already a vip[${msg.requiredIp}] on l3Network[uuid:${msg.l3NetworkUuid}]`);
        }
      },
      async run(msg) {
        // The address and the row in one transaction: a failure leaves neither (nothing to roll back by hand).
        const uuid = msg.resourceUuid ?? newUuid();
        await db.transaction(async (tx) => {
          const ip = await app.use('networks').allocateIp(tx, msg.l3NetworkUuid, {
            usedFor: 'Vip',
            strategy: msg.allocatorStrategy ? STRATEGIES[msg.allocatorStrategy] : 'Random',
            ...(msg.requiredIp !== undefined ? { staticIp: msg.requiredIp } : {}),
          });
          await tx.insert(vips).values({
            uuid,
            name: msg.name,
            description: msg.description ?? null,
            l3NetworkUuid: msg.l3NetworkUuid,
            ipRangeUuid: ip.ipRangeUuid,
            usedIpUuid: ip.usedIpUuid,
            ip: ip.ip,
            gateway: ip.gateway,
            netmask: ip.netmask,
          });
        });
        return inventory(uuid);
      },
    },
    UpdateVip: updateHandler(app, { ...vip, fields: ['name', 'description'] }),
    ChangeVipState: changeStateHandler(app, vip),
    // Unknown VIPs: success, as upstream. What uses the VIP goes first (the cascade's children).
    DeleteVip: deleteHandler(app, { node: 'vip', onlyIfIn: vips }),
  });
}

// VIPs: addresses of an L3 network's ranges (the NIC allocator's), each used by one network service at a time. The
// services (eip/, port-forwarding/, load balancers) take a VIP through `ctx.use('vips')` and hang their cascade
// nodes under kind `vip`, so DeleteVip (and an L3 network's or IP range's deletion) removes them first.
import { inArray } from 'drizzle-orm';
import { defineDomain, type DomainContext } from '../core/domain.js';
import { vips } from '../db/schema/index.js';
import { vipHandlers } from './handlers.js';
import { vipDescriptor } from './inventory.js';
import { VipService } from './service.js';

declare module '../services.js' {
  interface Services {
    vips: VipService;
  }
}

export { VipService, VIP_SERVICE_PROVIDER, vipLockKey } from './service.js';
export { vipOnRouter, vipOnExistingRouter, placeOn, requireRouterService, type VipOnRouter, type VipTO } from './router.js';
export { vipInventory, type VipRow, type VipInventory } from './inventory.js';

export const vipModule = defineDomain({ name: 'vip', needs: ['networks', 'virtualRouters'], provides: ['vips'], register });

/** Registers the VIP domain: its inventory, APIs, service and cascade node. */
function register(app: DomainContext<'networks' | 'virtualRouters', 'vips'>): void {
  const service = new VipService(app);
  app.provide('vips', service);
  app.addInventory(vipDescriptor);
  app.addHandlers(vipHandlers(app, service));

  const { db } = app;
  const uuidsOf = (rows: Array<{ uuid: string }>) => rows.map((r) => r.uuid);
  app.cascade.register({
    kind: 'vip',
    parents: {
      l3: async (l3Uuids) => uuidsOf(await db.select({ uuid: vips.uuid }).from(vips).where(inArray(vips.l3NetworkUuid, l3Uuids))),
      ipRange: async (rangeUuids) => uuidsOf(await db.select({ uuid: vips.uuid }).from(vips).where(inArray(vips.ipRangeUuid, rangeUuids))),
    },
    // The services on these VIPs are gone (children first): the addresses go back to their L3 networks.
    async delete(uuids) {
      await db.transaction(async (tx) => {
        const gone = await tx.delete(vips).where(inArray(vips.uuid, uuids)).returning({ usedIpUuid: vips.usedIpUuid });
        for (const g of gone) if (g.usedIpUuid) await app.use('networks').releaseIp(tx, g.usedIpUuid);
      });
    },
  });
}

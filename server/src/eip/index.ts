// EIPs: a VIP bound to a VM NIC, applied on the guest network's virtual router (service.ts). Hooks: the VM network
// service extension (VM start / NIC gone), the router's (re)connect (every EIP again), the cascade under `vip`.
import { inArray } from 'drizzle-orm';
import { defineDomain, type DomainContext } from '../core/domain.js';
import { eips } from '../db/schema/index.js';
import { toApiError } from '../core/errors.js';
import { eipHandlers } from './handlers.js';
import { eipDescriptor } from './inventory.js';
import { EipService } from './service.js';

declare module '../services.js' {
  interface Services {
    eips: EipService;
  }
}

export type { EipService };

export const eipModule = defineDomain({ name: 'eip', needs: ['networks', 'vips', 'virtualRouters', 'vms'], provides: ['eips'], register });

/** Registers the EIP domain: inventory, APIs, settings, the hooks keeping routers current, the cascade node. */
function register(app: DomainContext<'networks' | 'vips' | 'virtualRouters' | 'vms', 'eips'>): void {
  app.globalConfig.define({
    category: 'eip',
    name: 'snatInboundTraffic',
    type: 'bool',
    defaultValue: 'false',
    description: "Whether inbound traffic to an EIP is also SNATed to the router's guest address (upstream EipGlobalConfig)",
  });
  const service = new EipService(app);
  app.provide('eips', service);
  app.addInventory(eipDescriptor);
  app.addHandlers(eipHandlers(app, service));
  app.use('vms').addNetworkServiceExtension(service);
  app.use('virtualRouters').afterConnect((vr) => service.syncRouter(vr));

  const { db } = app;
  app.cascade.register({
    kind: 'eip',
    parents: {
      vip: async (vipUuids) => (await db.select({ uuid: eips.uuid }).from(eips).where(inArray(eips.vipUuid, vipUuids))).map((r) => r.uuid),
    },
    async delete(uuids, _root, mode) {
      await service.delete(uuids, mode === 'Permissive').catch((e) => {
        if (mode === 'Permissive') throw e;
        console.warn(`[eip] enforcing delete: ${toApiError(e).message}`);
      });
    },
  });
}

// Load balancers (1.1's org.zstack.network.service.lb): on a VIP, with listeners and backend VM NICs, applied on the
// guest network's virtual router (service.ts). Hooks: the VM network service extension (NICs gone), VM state
// changes (backends Inactive while stopped), the router's (re)connect, the cascade under `vip`.
import { inArray } from 'drizzle-orm';
import { defineDomain, type DomainContext } from '../core/domain.js';
import { toApiError } from '../core/errors.js';
import { loadBalancers } from '../db/schema/index.js';
import { loadBalancerHandlers } from './handlers.js';
import { loadBalancerDescriptors } from './inventory.js';
import { LoadBalancerService } from './service.js';
import { defineListenerOptions } from './tags.js';

declare module '../services.js' {
  interface Services {
    loadBalancers: LoadBalancerService;
  }
}

export type { LoadBalancerService };

export const loadBalancerModule = defineDomain({
  name: 'load-balancer',
  needs: ['networks', 'vips', 'virtualRouters', 'vms'],
  provides: ['loadBalancers'],
  register,
});

/** Registers the load balancer domain: settings and tags, inventories, APIs, the hooks, the cascade node. */
function register(app: DomainContext<'networks' | 'vips' | 'virtualRouters' | 'vms', 'loadBalancers'>): void {
  defineListenerOptions(app);
  const service = new LoadBalancerService(app);
  app.provide('loadBalancers', service);
  for (const d of loadBalancerDescriptors) app.addInventory(d);
  app.addHandlers(loadBalancerHandlers(app, service));
  app.use('vms').addNetworkServiceExtension(service);
  app.use('virtualRouters').afterConnect((vr) => service.syncRouter(vr));
  app.events.on('vm.state', async ({ vmUuid, newState }) => {
    await service.onVmState(vmUuid, newState).catch((e) => console.warn(`[load-balancer] VM[uuid:${vmUuid}] ${newState}: ${toApiError(e).message}`));
  });

  const { db } = app;
  app.cascade.register({
    kind: 'loadBalancer',
    parents: {
      vip: async (vipUuids) =>
        (await db.select({ uuid: loadBalancers.uuid }).from(loadBalancers).where(inArray(loadBalancers.vipUuid, vipUuids))).map((r) => r.uuid),
    },
    async delete(uuids, _root, mode) {
      await service.delete(uuids, mode === 'Permissive').catch((e) => {
        if (mode === 'Permissive') throw e;
        console.warn(`[load-balancer] enforcing delete: ${toApiError(e).message}`);
      });
    },
  });
}

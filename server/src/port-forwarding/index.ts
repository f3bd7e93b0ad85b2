// Port forwarding rules: VIP port ranges forwarded to VM NICs, applied on the guest network's virtual router
// (service.ts). Hooks: the VM network service extension (VM start / NIC gone), the router's (re)connect (every rule
// again), the cascade under `vip`.
import { inArray } from 'drizzle-orm';
import { defineDomain, type DomainContext } from '../core/domain.js';
import { portForwardingRules } from '../db/schema/index.js';
import { toApiError } from '../core/errors.js';
import { portForwardingHandlers } from './handlers.js';
import { ruleDescriptor } from './inventory.js';
import { PortForwardingService } from './service.js';

declare module '../services.js' {
  interface Services {
    portForwarding: PortForwardingService;
  }
}

export type { PortForwardingService };

export const portForwardingModule = defineDomain({
  name: 'port-forwarding',
  needs: ['networks', 'vips', 'virtualRouters', 'vms'],
  provides: ['portForwarding'],
  register,
});

/** Registers the port forwarding domain: inventory, APIs, settings, the hooks keeping routers current, the cascade node. */
function register(app: DomainContext<'networks' | 'vips' | 'virtualRouters' | 'vms', 'portForwarding'>): void {
  app.globalConfig.define({
    category: 'portForwarding',
    name: 'snatInboundTraffic',
    type: 'bool',
    defaultValue: 'false',
    description: "Whether inbound traffic of a port forwarding rule is also SNATed to the router's guest address (upstream PortForwardingGlobalConfig)",
  });
  const service = new PortForwardingService(app);
  app.provide('portForwarding', service);
  app.addInventory(ruleDescriptor);
  app.addHandlers(portForwardingHandlers(app, service));
  app.use('vms').addNetworkServiceExtension(service);
  app.use('virtualRouters').afterConnect((vr) => service.syncRouter(vr));

  const { db } = app;
  app.cascade.register({
    kind: 'portForwardingRule',
    parents: {
      vip: async (vipUuids) =>
        (await db.select({ uuid: portForwardingRules.uuid }).from(portForwardingRules).where(inArray(portForwardingRules.vipUuid, vipUuids))).map(
          (r) => r.uuid,
        ),
    },
    async delete(uuids, _root, mode) {
      await service.delete(uuids, mode === 'Permissive').catch((e) => {
        if (mode === 'Permissive') throw e;
        console.warn(`[port-forwarding] enforcing delete: ${toApiError(e).message}`);
      });
    },
  });
}

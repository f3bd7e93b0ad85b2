import { defineDomain, type DomainContext } from '../core/domain.js';
import { networkDescriptors } from './inventory.js';
import { ipRangeHandlers, registerIpRangeCascade } from './ip-ranges.js';
import { l2Handlers, registerL2Cascade } from './l2.js';
import { l3Handlers, registerL3Cascade } from './l3.js';
import { networkServiceHandlers } from './network-services.js';
import { seedProviders } from './providers.js';
import { NetworkService } from './service.js';

declare module '../services.js' {
  interface Services {
    networks: NetworkService;
  }
}

export { NetworkService };
export { bindFreeIpInsert } from './allocator.js';
export { ipToLong, isIpv4 } from './ip.js';
export type { AllocateIpOptions, AllocatedIp, IpAllocatorStrategy } from './allocator.js';

export const networkModule = defineDomain({ name: 'network', provides: ['networks'], register });

/** Registers the network domain: inventories, handlers, cascade nodes, settings and its service. */
function register(app: DomainContext): void {
  app.provide('networks', new NetworkService(app.db, (key, read) => app.remembered(key, read)));
  for (const d of networkDescriptors) app.addInventory(d);
  app.addHandlers(l2Handlers(app));
  app.addHandlers(l3Handlers(app));
  app.addHandlers(ipRangeHandlers(app));
  app.addHandlers(networkServiceHandlers(app));
  registerL2Cascade(app);
  registerL3Cascade(app);
  registerIpRangeCascade(app);
  // The built-in providers exist from the first start on (idempotent; safe with several servers starting).
  app.onBoot(() => seedProviders(app.db));
}

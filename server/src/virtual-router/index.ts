// Virtual routers: the VirtualRouter provider's network services for VM NICs (through the VM service's extension
// point), QueryVirtualRouterVm and ReconnectVirtualRouter. A virtual router is a VM (type ApplianceVm), so it is
// stored, queried, migrated and destroyed as one.
import { and, eq } from 'drizzle-orm';
import { defineDomain, type DomainContext } from '../core/domain.js';
import { notFound } from '../core/errors.js';
import { defineHandlers } from '../core/handlers.js';
import type { InventoryDescriptor } from '../core/query.js';
import { vmDescriptor, type VmRow } from '../vm/index.js';
import { requireState } from '../vm/index.js';
import { vmLockKey } from '../vm/index.js';
import { VirtualRouterService } from './service.js';

declare module '../services.js' {
  interface Services {
    virtualRouters: VirtualRouterService;
  }
}

export const virtualRouterDescriptor: InventoryDescriptor<VmRow> = {
  ...vmDescriptor,
  name: 'VirtualRouterVmInventory',
  where: (t) => and(eq(t.type, 'ApplianceVm'), eq(t.applianceVmType, 'VirtualRouter'))!,
};

export const virtualRouterModule = defineDomain({
  name: 'virtual-router',
  needs: ['hosts', 'networks', 'offerings', 'vms'],
  provides: ['virtualRouters'],
  register,
});

/** Registers the virtual-router domain: inventories, handlers, cascade nodes, settings and its service. */
function register(app: DomainContext): void {
  const vms = app.use('vms');
  const routers = new VirtualRouterService(app, vms);
  app.provide('virtualRouters', routers);
  vms.addNetworkServiceExtension(routers);
  app.addInventory(virtualRouterDescriptor);

  const requireRouter = async (uuid: string) => {
    const vm = await vms.get(uuid);
    if (!vm || vm.type !== 'ApplianceVm' || vm.applianceVmType !== 'VirtualRouter') throw notFound('VirtualRouterVmVO', uuid, 'vmInstanceUuid');
    return vm;
  };
  app.addHandlers(
    defineHandlers({
      ReconnectVirtualRouter: {
        check: async (msg) => requireState((await requireRouter(msg.vmInstanceUuid)).state, 'ReconnectVirtualRouter'),
        async run(msg) {
          await app.locks.withLock(vmLockKey(msg.vmInstanceUuid), async () => {
            requireState((await requireRouter(msg.vmInstanceUuid)).state, 'ReconnectVirtualRouter');
            await routers.connect(msg.vmInstanceUuid);
          });
          return { inventory: (await vms.inventory(msg.vmInstanceUuid)) as any };
        },
      },
    }),
  );
}

// Virtual routers: the VirtualRouter provider's network services for VM NICs (through the VM service's extension
// point), QueryVirtualRouterVm and ReconnectVirtualRouter. A virtual router is a VM (type ApplianceVm), so it is
// stored, queried, migrated and destroyed as one.
import { and, eq, inArray } from 'drizzle-orm';
import { defineDomain, type DomainContext } from '../core/domain.js';
import { argErr, notFound } from '../core/errors.js';
import { newUuid } from '../core/ids.js';
import type { Message } from '../core/handlers.js';
import { images, instanceOfferings, l3Networks } from '../db/schema/index.js';
import { defineHandlers } from '../core/handlers.js';
import type { InventoryDescriptor } from '../core/query.js';
import { vmDescriptor, type VmRow } from '../vm/index.js';
import { requireState } from '../vm/index.js';
import { vmLockKey } from '../vm/index.js';
import { VirtualRouterService, type RouterPlan } from './service.js';

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

/** QueryApplianceVm: every appliance VM (today all of them are virtual routers). */
export const applianceVmDescriptor: InventoryDescriptor<VmRow> = {
  ...vmDescriptor,
  name: 'ApplianceVmInventory',
  where: (t) => eq(t.type, 'ApplianceVm'),
};

export const virtualRouterModule = defineDomain({
  name: 'virtual-router',
  needs: ['hosts', 'networks', 'offerings', 'vms', 'primaryStorage'], // primaryStorage: the VM flows it runs create volumes
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
  app.addInventory(applianceVmDescriptor);

  const requireRouter = async (uuid: string) => {
    const vm = await vms.get(uuid);
    if (!vm || vm.type !== 'ApplianceVm' || vm.applianceVmType !== 'VirtualRouter') throw notFound('VirtualRouterVmVO', uuid, 'vmInstanceUuid');
    return vm;
  };
  /** CreateVirtualRouterVm's checks: the offering, the image and the networks, all in one zone. */
  const planOf = async (msg: Message<'CreateVirtualRouterVm'>): Promise<RouterPlan> => {
    const [offering] = await app.db.select().from(instanceOfferings).where(eq(instanceOfferings.uuid, msg.instanceOfferingUuid));
    if (!offering) throw notFound('InstanceOfferingVO', msg.instanceOfferingUuid, 'instanceOfferingUuid');
    if (offering.state !== 'Enabled') throw argErr(`instance offering[uuid:${offering.uuid}] is ${offering.state}, it cannot be used to create VMs`);
    const [image] = await app.db.select().from(images).where(eq(images.uuid, msg.imageUuid));
    if (!image) throw notFound('ImageVO', msg.imageUuid, 'imageUuid');
    if (image.mediaType !== 'RootVolumeTemplate')
      throw argErr(`image[uuid:${image.uuid}] is a ${image.mediaType}; a virtual router boots a RootVolumeTemplate`);
    if (image.status !== 'Ready' || image.state !== 'Enabled')
      throw argErr(`image[uuid:${image.uuid}] is ${image.state}/${image.status}; it must be Enabled and Ready`);
    const named: Array<[string, string]> = [
      ...msg.l3NetworkUuids.map((u): [string, string] => [u, 'l3NetworkUuids']),
      [msg.managementNetworkUuid, 'managementNetworkUuid'],
      ...(msg.publicNetworkUuid ? [[msg.publicNetworkUuid, 'publicNetworkUuid'] as [string, string]] : []),
    ];
    const l3s = await app.db
      .select()
      .from(l3Networks)
      .where(inArray(l3Networks.uuid, [...new Set(named.map(([u]) => u))]));
    const zoneUuid = msg.zoneUuid ?? l3s.find((l) => l.uuid === msg.managementNetworkUuid)?.zoneUuid;
    for (const [uuid, field] of named) {
      const l3 = l3s.find((l) => l.uuid === uuid);
      if (!l3) throw notFound('L3NetworkVO', uuid, field);
      if (l3.zoneUuid !== zoneUuid) throw argErr(`field[${field}]: L3 network[uuid:${uuid}] is in zone[uuid:${l3.zoneUuid}], not in zone[uuid:${zoneUuid}]`);
      if (field === 'l3NetworkUuids' && l3.state !== 'Enabled') throw argErr(`L3 network[uuid:${uuid}] is ${l3.state}; only Enabled L3 networks can be used`);
    }
    for (const l3Uuid of msg.l3NetworkUuids) {
      const existing = await routers.find(l3Uuid);
      if (existing) throw argErr(`field[l3NetworkUuids]: L3 network[uuid:${l3Uuid}] already has a virtual router[uuid:${existing.uuid}]`);
    }
    return {
      uuid: msg.resourceUuid ?? newUuid(),
      name: msg.name,
      description: msg.description,
      offering: { uuid: offering.uuid, cpuNum: offering.cpuNum, memorySize: offering.memorySize, cpuSpeed: offering.cpuSpeed },
      image,
      managementNetworkUuid: msg.managementNetworkUuid,
      publicNetworkUuid: msg.publicNetworkUuid,
      guestL3Uuids: msg.l3NetworkUuids,
      placement: { zoneUuid, clusterUuid: msg.clusterUuid, hostUuid: msg.hostUuid },
    };
  };

  app.addHandlers(
    defineHandlers({
      CreateVirtualRouterVm: {
        check: planOf,
        async run(msg, _call, checked?: RouterPlan) {
          const vr = await routers.createByHand(checked ?? (await planOf(msg)));
          return { inventory: (await vms.inventory(vr.uuid)) as any };
        },
      },
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

export { VR_PROVIDER_TYPE, type RouterConnectHook, type VirtualRouterService } from './service.js';

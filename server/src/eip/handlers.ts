// The EIP APIs (upstream EipApiInterceptor + EipManagerImpl, 1.1), in its checks' order and words.
import { and, asc, eq, inArray, isNotNull, ne, notInArray } from 'drizzle-orm';
import { changeStateHandler, deleteHandler, updateHandler } from '../core/crud.js';
import type { DomainContext } from '../core/domain.js';
import { accountResourceRefs, eips, l3Networks, networkServiceL3Refs, vmInstances, vmNics } from '../db/schema/index.js';
import { argErr, opErr } from '../core/errors.js';
import { defineHandlers } from '../core/handlers.js';
import { newUuid } from '../core/ids.js';
import { nicInventory } from '../vm/index.js';
import { requireRouterService } from '../vip/index.js';
import { eipInventory } from './inventory.js';
import { EIP_SERVICE, type EipService } from './service.js';

export function eipHandlers(app: DomainContext, service: EipService) {
  const { db } = app;
  const inventory = async (uuid: string) => ({ inventory: eipInventory(await service.require(uuid)) });
  const eip = { table: eips, entity: 'EipVO', inventory: eipInventory };

  /** The NIC may take the VIP's EIP: no other EIP, not on the VIP's network, its network runs the service. */
  const checkNic = async (nicUuid: string, vipL3Uuid: string, what: string) => {
    const [other] = await db.select({ uuid: eips.uuid }).from(eips).where(eq(eips.vmNicUuid, nicUuid));
    if (other) throw opErr(`vm nic[uuid:${nicUuid}] has attached to another eip[uuid:${other.uuid}]`);
    const { nic } = await service.nicWithVm(nicUuid);
    if (nic.l3NetworkUuid === vipL3Uuid) throw argErr(`guest l3Network of vm nic[uuid:${nicUuid}] and vip l3Network of ${what} are the same network`);
    await requireRouterService(app, nic.l3NetworkUuid, EIP_SERVICE);
  };

  return defineHandlers({
    CreateEip: {
      async check(msg) {
        const vip = await app.use('vips').require(msg.vipUuid, 'vipUuid');
        if (vip.useFor) throw opErr(`vip[uuid:${vip.uuid}] has been occupied other network service entity[${vip.useFor}]`);
        if (vip.state !== 'Enabled') throw opErr(`vip[uuid:${vip.uuid}] is not in state[Enabled], current state is ${vip.state}`);
        if (msg.vmNicUuid) await checkNic(msg.vmNicUuid, vip.l3NetworkUuid, `vip[uuid: ${vip.uuid}]`);
      },
      async run(msg) {
        const vips = app.use('vips');
        const uuid = msg.resourceUuid ?? newUuid();
        // Taking the VIP is the race: of two EIPs on one VIP, one wins, the other is refused before any row exists.
        const vip = await vips.acquire(msg.vipUuid, EIP_SERVICE);
        const [taken] = await db.select({ uuid: eips.uuid }).from(eips).where(eq(eips.vipUuid, vip.uuid));
        if (taken) throw opErr(`vip[uuid:${vip.uuid}] has been occupied other network service entity[${EIP_SERVICE}]`);
        try {
          await db.insert(eips).values({ uuid, name: msg.name, description: msg.description ?? null, vipUuid: vip.uuid, vipIp: vip.ip });
        } catch {
          throw opErr(`vip[uuid:${vip.uuid}] has been occupied other network service entity[${EIP_SERVICE}]`);
        }
        if (msg.vmNicUuid) {
          try {
            await service.attach(uuid, msg.vmNicUuid);
          } catch (e) {
            // Nothing half-made: the EIP goes and the VIP is free again.
            await service.delete([uuid], false);
            throw e;
          }
        }
        return inventory(uuid);
      },
    },
    UpdateEip: updateHandler(app, { ...eip, fields: ['name', 'description'] }),
    ChangeEipState: changeStateHandler(app, eip),
    DeleteEip: deleteHandler(app, { node: 'eip', onlyIfIn: eips }),
    AttachEip: {
      async check(msg) {
        const eip = await service.require(msg.eipUuid, 'eipUuid');
        if (eip.vmNicUuid) throw opErr(`eip[uuid:${eip.uuid}] has attached to another vm nic[uuid:${eip.vmNicUuid}], can't attach again`);
        if (eip.state !== 'Enabled') {
          throw opErr(`eip[uuid: ${eip.uuid}] can only be attached when state is Enabled, current state is ${eip.state}`);
        }
        const vip = await app.use('vips').require(eip.vipUuid, 'vipUuid');
        await checkNic(msg.vmNicUuid, vip.l3NetworkUuid, `EIP[uuid:${eip.uuid}]`);
      },
      async run(msg) {
        await service.attach(msg.eipUuid, msg.vmNicUuid);
        return inventory(msg.eipUuid);
      },
    },
    DetachEip: {
      async check(msg) {
        const eip = await service.require(msg.uuid);
        if (!eip.vmNicUuid) throw opErr(`eip[uuid:${eip.uuid}] has not attached to any vm nic`);
      },
      async run(msg) {
        await service.detach(msg.uuid);
        return inventory(msg.uuid);
      },
    },
    GetEipAttachableVmNics: {
      async run(msg, call) {
        const eip = await service.require(msg.eipUuid, 'eipUuid');
        if (eip.state !== 'Enabled') throw opErr(`eip[uuid:${eip.uuid}] is not in state of Enabled, cannot get attachable vm nic`);
        if (eip.vmNicUuid) throw opErr(`eip[uuid:${eip.uuid}] has attached to vm nic[uuid:${eip.vmNicUuid}], cannot get attachable vm nic`);
        const vip = await app.use('vips').require(eip.vipUuid, 'vipUuid');
        const [vipL3] = await db.select({ zoneUuid: l3Networks.zoneUuid }).from(l3Networks).where(eq(l3Networks.uuid, vip.l3NetworkUuid));
        const l3s = db
          .selectDistinct({ uuid: l3Networks.uuid })
          .from(l3Networks)
          .innerJoin(networkServiceL3Refs, eq(networkServiceL3Refs.l3NetworkUuid, l3Networks.uuid))
          .where(
            and(
              eq(l3Networks.system, false),
              ne(l3Networks.uuid, vip.l3NetworkUuid),
              eq(networkServiceL3Refs.networkServiceType, EIP_SERVICE),
              eq(l3Networks.zoneUuid, vipL3?.zoneUuid ?? ''),
            ),
          );
        const withEip = db.select({ uuid: eips.vmNicUuid }).from(eips).where(isNotNull(eips.vmNicUuid));
        const conditions = [
          inArray(vmNics.l3NetworkUuid, l3s),
          notInArray(vmNics.uuid, withEip),
          eq(vmInstances.type, 'UserVm'),
          inArray(vmInstances.state, ['Running', 'Stopped']),
        ];
        const session = call.session;
        if (session && session.accountType !== 'SystemAdmin') {
          const own = db
            .select({ uuid: accountResourceRefs.resourceUuid })
            .from(accountResourceRefs)
            .where(eq(accountResourceRefs.accountUuid, session.accountUuid));
          conditions.push(inArray(vmInstances.uuid, own));
        }
        const rows = await db
          .select({ nic: vmNics })
          .from(vmNics)
          .innerJoin(vmInstances, eq(vmInstances.uuid, vmNics.vmInstanceUuid))
          .where(and(...conditions))
          .orderBy(asc(vmNics.createDate), asc(vmNics.uuid));
        return { inventories: rows.map((r) => nicInventory(r.nic)) };
      },
    },
  });
}

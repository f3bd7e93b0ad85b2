// The port forwarding APIs (upstream PortForwardingApiInterceptor + PortForwardingManagerImpl, 1.1), in its checks'
// order and words. (Upstream compared a new VIP range with the other rules' *private* end port; we compare VIP
// ranges with VIP ranges, which is what its message says.)
import { and, asc, eq, inArray, ne } from 'drizzle-orm';
import { changeStateHandler, deleteHandler, updateHandler } from '../core/crud.js';
import type { DomainContext } from '../core/domain.js';
import { accountResourceRefs, l3Networks, networkServiceL3Refs, portForwardingRules, vmInstances, vmNics } from '../db/schema/index.js';
import { argErr, opErr } from '../core/errors.js';
import { defineHandlers, type Message } from '../core/handlers.js';
import { newUuid } from '../core/ids.js';
import { nicInventory } from '../vm/index.js';
import { requireRouterService, vipLockKey } from '../vip/index.js';
import { ruleInventory } from './inventory.js';
import { PF_SERVICE, type PortForwardingService } from './service.js';

const CIDR = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}\/([0-9]|[12]\d|3[0-2])$/;

interface Ports {
  vipPortStart: number;
  vipPortEnd: number;
  privatePortStart: number;
  privatePortEnd: number;
}

/** Defaults, ordering and the range-size rule of upstream's interceptor. */
export function normalizePorts(msg: { vipPortStart: number; vipPortEnd?: number; privatePortStart?: number; privatePortEnd?: number }): Ports {
  const vipEndIn = msg.vipPortEnd ?? msg.vipPortStart;
  const vipPortStart = Math.min(msg.vipPortStart, vipEndIn);
  const vipPortEnd = Math.max(msg.vipPortStart, vipEndIn);
  const privStartIn = msg.privatePortStart ?? vipPortStart;
  // Upstream defaults the private end to the VIP end, which turns `2222 → 22` into the range 22–2222; the range of
  // the VIP's size from the private start is what was meant.
  const privEndIn = msg.privatePortEnd ?? privStartIn + (vipPortEnd - vipPortStart);
  const p = {
    vipPortStart,
    vipPortEnd,
    privatePortStart: Math.min(privStartIn, privEndIn),
    privatePortEnd: Math.max(privStartIn, privEndIn),
  };
  if (p.vipPortStart !== p.vipPortEnd && p.vipPortEnd - p.vipPortStart !== p.privatePortEnd - p.privatePortStart) {
    throw argErr(
      `for range port forwarding, the port range size must match; vip range[${p.vipPortStart}, ${p.vipPortEnd}]'s size doesn't match range[${p.privatePortStart}, ${p.privatePortEnd}]'s size`,
    );
  }
  return p;
}

export function portForwardingHandlers(app: DomainContext, service: PortForwardingService) {
  const { db } = app;
  const inventory = async (uuid: string) => ({ inventory: ruleInventory(await service.require(uuid)) });
  const rule = { table: portForwardingRules, entity: 'PortForwardingRuleVO', inventory: ruleInventory };

  const checkNic = async (nicUuid: string, vipL3Uuid: string, what: string) => {
    const { nic } = await service.nicWithVm(nicUuid);
    if (nic.l3NetworkUuid === vipL3Uuid) throw argErr(`guest l3Network of vm nic[uuid:${nicUuid}] and vip l3Network of ${what} are the same network`);
    await requireRouterService(app, nic.l3NetworkUuid, PF_SERVICE);
  };

  /** A VIP range overlapping a rule of the same protocol on the VIP: SYS.1007. */
  const checkOverlap = async (vipUuid: string, protocol: string, p: Ports) => {
    const rules = await db
      .select()
      .from(portForwardingRules)
      .where(and(eq(portForwardingRules.vipUuid, vipUuid), eq(portForwardingRules.protocolType, protocol)));
    for (const r of rules) {
      if (p.vipPortStart <= r.vipPortEnd && r.vipPortStart <= p.vipPortEnd) {
        throw argErr(
          `vip port range[vipStartPort:${p.vipPortStart}, vipEndPort:${p.vipPortEnd}] overlaps with rule[uuid:${r.uuid}, vipStartPort:${r.vipPortStart}, vipEndPort:${r.vipPortEnd}]`,
        );
      }
    }
  };

  const checkCreate = async (msg: Message<'CreatePortForwardingRule'>) => {
    const ports = normalizePorts(msg);
    if (msg.allowedCidr !== undefined && !CIDR.test(msg.allowedCidr)) throw argErr(`invalid CIDR[${msg.allowedCidr}]`);
    const vip = await app.use('vips').require(msg.vipUuid, 'vipUuid');
    if (vip.useFor && vip.useFor !== PF_SERVICE) throw opErr(`vip[uuid:${vip.uuid}] has been occupied other network service entity[${vip.useFor}]`);
    if (vip.state !== 'Enabled') throw opErr(`vip[uuid:${vip.uuid}] is not in state[Enabled], current state is ${vip.state}`);
    await checkOverlap(vip.uuid, msg.protocolType, ports);
    if (msg.vmNicUuid) await checkNic(msg.vmNicUuid, vip.l3NetworkUuid, `vip[uuid: ${vip.uuid}]`);
    return ports;
  };

  return defineHandlers({
    CreatePortForwardingRule: {
      check: checkCreate,
      async run(msg) {
        const uuid = msg.resourceUuid ?? newUuid();
        // The overlap check and the insert under the VIP's lock: two rules racing for one port cannot both land.
        await app.locks.withLock(vipLockKey(msg.vipUuid), async () => {
          const ports = await checkCreate(msg);
          const vip = await app.use('vips').acquire(msg.vipUuid, PF_SERVICE);
          await db.insert(portForwardingRules).values({
            uuid,
            name: msg.name,
            description: msg.description ?? null,
            vipUuid: vip.uuid,
            vipIp: vip.ip,
            ...ports,
            protocolType: msg.protocolType,
            allowedCidr: msg.allowedCidr ?? null,
          });
        });
        if (msg.vmNicUuid) {
          try {
            await service.attach(uuid, msg.vmNicUuid);
          } catch (e) {
            await service.delete([uuid], false);
            throw e;
          }
        }
        return inventory(uuid);
      },
    },
    UpdatePortForwardingRule: updateHandler(app, { ...rule, fields: ['name', 'description'] }),
    ChangePortForwardingRuleState: changeStateHandler(app, rule),
    DeletePortForwardingRule: deleteHandler(app, { node: 'portForwardingRule', onlyIfIn: portForwardingRules }),
    AttachPortForwardingRule: {
      async check(msg) {
        const rule = await service.require(msg.ruleUuid, 'ruleUuid');
        if (rule.vmNicUuid) {
          throw opErr(`port forwarding rule[uuid:${rule.uuid}] has been attached to vm nic[uuid:${rule.vmNicUuid}], can't attach again`);
        }
        if (rule.state !== 'Enabled') {
          throw opErr(
            `port forwarding rule[uuid:${rule.uuid}] is not in state of Enabled,  current state is ${rule.state}. A rule can only be attached when its state is Enabled`,
          );
        }
        const vip = await app.use('vips').require(rule.vipUuid, 'vipUuid');
        await checkNic(msg.vmNicUuid, vip.l3NetworkUuid, `port forwarding rule[uuid:${rule.uuid}]`);
      },
      async run(msg) {
        await service.attach(msg.ruleUuid, msg.vmNicUuid);
        return inventory(msg.ruleUuid);
      },
    },
    DetachPortForwardingRule: {
      async check(msg) {
        const rule = await service.require(msg.uuid);
        if (!rule.vmNicUuid) throw opErr(`port forwarding rule rule[uuid:${rule.uuid}] has not been attached to any vm nic, can't detach`);
      },
      async run(msg) {
        await service.detach(msg.uuid);
        return inventory(msg.uuid);
      },
    },
    GetPortForwardingAttachableVmNics: {
      async run(msg, call) {
        const rule = await service.require(msg.ruleUuid, 'ruleUuid');
        if (rule.state !== 'Enabled') throw opErr(`Port forwarding rule[uuid:${rule.uuid}] is not in state of Enabled, current state is ${rule.state}`);
        if (rule.vmNicUuid) throw opErr(`Port forwarding rule[uuid:${rule.uuid}] has been attached to vm nic[uuid:${rule.vmNicUuid}] already`);
        const vip = await app.use('vips').require(rule.vipUuid, 'vipUuid');
        const [vipL3] = await db.select({ zoneUuid: l3Networks.zoneUuid }).from(l3Networks).where(eq(l3Networks.uuid, vip.l3NetworkUuid));
        const l3Conditions = [
          eq(l3Networks.system, false),
          ne(l3Networks.uuid, vip.l3NetworkUuid),
          eq(networkServiceL3Refs.networkServiceType, PF_SERVICE),
          eq(l3Networks.zoneUuid, vipL3?.zoneUuid ?? ''),
        ];
        // A VIP serving a guest network already: only that network's NICs.
        if (vip.peerL3NetworkUuid) l3Conditions.push(eq(l3Networks.uuid, vip.peerL3NetworkUuid));
        const l3s = db
          .selectDistinct({ uuid: l3Networks.uuid })
          .from(l3Networks)
          .innerJoin(networkServiceL3Refs, eq(networkServiceL3Refs.l3NetworkUuid, l3Networks.uuid))
          .where(and(...l3Conditions));
        const conditions = [inArray(vmNics.l3NetworkUuid, l3s), eq(vmInstances.type, 'UserVm'), inArray(vmInstances.state, ['Running', 'Stopped'])];
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

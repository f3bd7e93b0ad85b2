// The load balancer APIs (upstream LoadBalancerApiInterceptor + LoadBalancerManagerImpl/LoadBalancerBase, 1.1): the
// checks answer before the job (SYS.1007/SYS.1003/SYS.1006 with 1.1's wording), the work is the service's flows.
import { and, eq } from 'drizzle-orm';
import { deleteHandler } from '../core/crud.js';
import type { DomainContext } from '../core/domain.js';
import { argErr, opErr, pgErrorOf } from '../core/errors.js';
import { defineHandlers, type Message } from '../core/handlers.js';
import { newUuid } from '../core/ids.js';
import { TagService } from '../core/tags.js';
import { loadBalancerListeners, loadBalancers } from '../db/schema/index.js';
import { requireRouterService } from '../vip/index.js';
import { listenerInventories, loadBalancerInventories } from './inventory.js';
import { LB_SERVICE, type LoadBalancerService } from './service.js';
import { LISTENER_OPTIONS } from './tags.js';

export function loadBalancerHandlers(app: DomainContext, service: LoadBalancerService) {
  const { db } = app;
  const lbReply = async (uuid: string) => ({ inventory: (await loadBalancerInventories([await service.require(uuid)], db))[0] });
  const listenerReply = async (uuid: string) => ({ inventory: (await listenerInventories([await service.requireListener(uuid)], db))[0] });

  /** Upstream's interceptor: ports free on the load balancer, protocol and instance port defaulted, option tags defaulted. */
  async function checkListener(msg: Message<'CreateLoadBalancerListener'>) {
    await service.require(msg.loadBalancerUuid, 'loadBalancerUuid');
    const instancePort = msg.instancePort ?? msg.loadBalancerPort;
    const on = (col: typeof loadBalancerListeners.loadBalancerPort | typeof loadBalancerListeners.instancePort, port: number) =>
      db
        .select({ uuid: loadBalancerListeners.uuid })
        .from(loadBalancerListeners)
        .where(and(eq(loadBalancerListeners.loadBalancerUuid, msg.loadBalancerUuid), eq(col, port)));
    const [lbPort] = await on(loadBalancerListeners.loadBalancerPort, msg.loadBalancerPort);
    if (lbPort) throw argErr(`conflict loadBalancerPort[${msg.loadBalancerPort}], a listener[uuid:${lbPort.uuid}] has used that port`);
    const [instance] = await on(loadBalancerListeners.instancePort, instancePort);
    if (instance) throw argErr(`conflict instancePort[${instancePort}], a listener[uuid:${instance.uuid}] has used that port`);
    // Every option the caller left out gets its global config's value, stored as the listener's tag (as 1.1 does).
    const tags = [...(msg.systemTags ?? [])];
    for (const o of LISTENER_OPTIONS) {
      if (!tags.some((t) => app.tags.tokensOf(o.format, t))) {
        tags.push(TagService.instantiate(o.format, { [o.token]: app.globalConfig.get('loadBalancer', o.token) }));
      }
    }
    msg.systemTags = tags;
  }

  /** Upstream's interceptor: existing NICs on one L3 network running the LoadBalancer service of the VirtualRouter. */
  async function checkNics(msg: Message<'AddVmNicToLoadBalancer'>) {
    await service.requireListener(msg.listenerUuid, 'listenerUuid');
    const uuids = [...new Set(msg.vmNicUuids)];
    const backends = await service.nicsWithVms(uuids);
    if (backends.length !== uuids.length) throw opErr(`some of the vm nics${JSON.stringify(uuids)} belong to VMs being destroyed`);
    const l3s = [...new Set(backends.map((b) => b.nic.l3NetworkUuid))];
    if (l3s.length > 1) {
      throw argErr(`vm nics[uuids:${uuids.join(',')}] are not on the same L3 network. they are on L3 networks[uuids:${l3s.join(',')}]`);
    }
    const notUser = backends.find((b) => b.vm.type !== 'UserVm');
    if (notUser) throw argErr(`vm nic[uuid:${notUser.nic.uuid}] belongs to an appliance VM; only user VMs' NICs can be backends`);
    await requireRouterService(app, l3s[0], LB_SERVICE);
    return backends;
  }

  return defineHandlers({
    CreateLoadBalancer: {
      async check(msg) {
        const vip = await app.use('vips').require(msg.vipUuid, 'vipUuid');
        if (vip.useFor === LB_SERVICE) {
          const [lb] = await db.select({ uuid: loadBalancers.uuid }).from(loadBalancers).where(eq(loadBalancers.vipUuid, vip.uuid));
          throw argErr(`the vip[uuid:${vip.uuid}] is occupied by another load balancer[uuid:${lb?.uuid}]`);
        }
        if (vip.useFor) throw argErr(`the vip[uuid:${vip.uuid}] is occupied by another service[${vip.useFor}]`);
        if (vip.state !== 'Enabled') throw opErr(`vip[uuid:${vip.uuid}, ip:${vip.ip}] is ${vip.state}; enable it first`);
      },
      async run(msg) {
        const uuid = msg.resourceUuid ?? newUuid();
        await service.create({ uuid, name: msg.name, description: msg.description, vipUuid: msg.vipUuid });
        return lbReply(uuid);
      },
    },
    DeleteLoadBalancer: deleteHandler(app, { node: 'loadBalancer' }),
    RefreshLoadBalancer: {
      check: async (msg) => void (await service.require(msg.uuid)),
      async run(msg) {
        await service.refresh(msg.uuid);
        return lbReply(msg.uuid);
      },
    },
    CreateLoadBalancerListener: {
      check: checkListener,
      async run(msg) {
        const uuid = msg.resourceUuid ?? newUuid();
        const lb = await service.require(msg.loadBalancerUuid, 'loadBalancerUuid');
        await db
          .insert(loadBalancerListeners)
          .values({
            uuid,
            loadBalancerUuid: lb.uuid,
            name: msg.name,
            description: msg.description ?? null,
            instancePort: msg.instancePort ?? msg.loadBalancerPort,
            loadBalancerPort: msg.loadBalancerPort,
            protocol: msg.protocol ?? 'tcp',
          })
          .catch((e) => {
            // A concurrent listener took a port between the check and here (unique indexes).
            if (pgErrorOf(e)?.code === '23505')
              throw argErr(`conflict loadBalancerPort[${msg.loadBalancerPort}] or instancePort: another listener has used it`);
            throw e;
          });
        return listenerReply(uuid);
      },
    },
    DeleteLoadBalancerListener: {
      check: async (msg) => void (await service.requireListener(msg.uuid)),
      async run(msg) {
        return lbReply(await service.deleteListener(msg.uuid));
      },
    },
    AddVmNicToLoadBalancer: {
      check: checkNics,
      async run(msg, _call, checked?: Awaited<ReturnType<typeof checkNics>>) {
        await service.addNics(msg.listenerUuid, checked ?? (await checkNics(msg)));
        return listenerReply(msg.listenerUuid);
      },
    },
    RemoveVmNicFromLoadBalancer: {
      check: async (msg) => void (await service.requireListener(msg.listenerUuid, 'listenerUuid')),
      async run(msg) {
        return lbReply(await service.removeNics(msg.listenerUuid, [...new Set([msg.vmNicUuids].flat())]));
      },
    },
  });
}

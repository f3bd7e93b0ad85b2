// A VIP on the virtual router of the guest network it serves: the router (created when missing, as upstream's
// VirtualRouterVipBackend does), its NIC on the VIP's L3 network — the VIP must come from a network the router has a
// NIC on, in practice its public network — and its NIC on the guest network. Shared by the services using VIPs.
import type { DomainContext } from '../core/domain.js';
import { opErr } from '../core/errors.js';
import type { AgentRequest } from '../agent-client/index.js';
import type { NicRow, VmRow } from '../vm/index.js';
import type { VipRow } from './inventory.js';

export type VipTO = AgentRequest<'/virtualrouter/createvip'>['vips'][number];

export interface VipOnRouter {
  vr: VmRow;
  vipTO: VipTO;
  /** The router's NIC holding the VIP. */
  publicNic: NicRow;
  /** The router's NIC on the guest network. */
  guestNic: NicRow;
}

/** The guest network's router, made ready (found, started, reconnected or created), with the VIP's place on it. */
export async function vipOnRouter(app: DomainContext, vip: VipRow, guestL3Uuid: string): Promise<VipOnRouter> {
  const routers = app.use('virtualRouters');
  const vr = await routers.ensure(guestL3Uuid);
  return placeOn(app, vr, vip, guestL3Uuid);
}

/** The same on the guest network's router as it is now, without creating or starting it (undefined: none running). */
export async function vipOnExistingRouter(app: DomainContext, vip: VipRow, guestL3Uuid: string): Promise<VipOnRouter | undefined> {
  const vr = await app.use('virtualRouters').find(guestL3Uuid);
  if (!vr || vr.state !== 'Running') return undefined;
  return placeOn(app, vr, vip, guestL3Uuid).catch(() => undefined);
}

export async function placeOn(app: DomainContext, vr: VmRow, vip: VipRow, guestL3Uuid: string): Promise<VipOnRouter> {
  const routers = app.use('virtualRouters');
  const publicNic = await routers.nicOn(vr.uuid, vip.l3NetworkUuid);
  if (!publicNic) {
    throw opErr(
      `virtual router[uuid:${vr.uuid}] serving L3 network[uuid:${guestL3Uuid}] has no NIC on L3 network[uuid:${vip.l3NetworkUuid}] of vip[uuid:${vip.uuid}, ip:${vip.ip}]; ` +
        `create the VIP on the router's public network`,
    );
  }
  const guestNic = await routers.nicOn(vr.uuid, guestL3Uuid);
  if (!guestNic) throw opErr(`virtual router[uuid:${vr.uuid}] has no NIC on guest L3 network[uuid:${guestL3Uuid}]`);
  return { vr, publicNic, guestNic, vipTO: { ip: vip.ip, netmask: vip.netmask, gateway: vip.gateway, ownerEthernetMac: publicNic.mac } };
}

/** Refuses (SYS.1006) a guest L3 network where the VirtualRouter provider does not run `serviceType`. */
export async function requireRouterService(app: DomainContext, l3Uuid: string, serviceType: 'Eip' | 'PortForwarding' | 'LoadBalancer'): Promise<void> {
  const refs = await app.use('networks').providersOf(l3Uuid, app.db);
  if (!refs.some((r) => r.serviceType === serviceType && r.providerType === 'VirtualRouter')) {
    throw opErr(
      `L3 network[uuid:${l3Uuid}] does not run the ${serviceType} network service of the VirtualRouter provider; attach it with AttachNetworkServiceToL3Network first`,
    );
  }
}

// VIPs, EIPs and port forwarding rules a virtual router has been told to apply (upstream's vip.py, eip.py and
// port_forwarding.py plugins), kept beside its DHCP/DNS state. On a kvm host's namespace router they also become
// iptables NAT rules in the router's namespace (network/router-nat.ts) and are saved next to its state.json, so an
// agent restarted since builds on them; elsewhere (the simulator, the standalone agent) the state is all there is.
import type { Schemas } from '../lib/protocol.js';
import type { RouterNetworks, VirtualRouters } from './state.js';

export type VipTO = Schemas['VipTO'];
export type EipTO = Schemas['EipTO'];
export type PortForwardingRuleTO = Schemas['PortForwardingRuleTO'];

export interface NatState {
  vips: Map<string, VipTO>;
  eips: Map<string, EipTO>;
  portForwardings: Map<string, PortForwardingRuleTO>;
}

declare module './state.js' {
  interface VirtualRouterState {
    nat?: NatState;
  }
}

/** A router's real NAT: made to apply `nat` after every change, and what it last applied (after a restart). */
export interface RouterNat {
  applyNat(routerUuid: string, nat: NatState, signal: AbortSignal): Promise<void>;
  loadNat(routerUuid: string): Promise<NatState | undefined>;
}

/** A rule's identity on the router: VIP address, protocol and VIP port range. */
export const ruleKey = (r: PortForwardingRuleTO) => `${r.vipIp}/${r.protocolType}/${r.vipPortStart}-${r.vipPortEnd}`;

export const emptyNat = (): NatState => ({ vips: new Map(), eips: new Map(), portForwardings: new Map() });

const isRouterNat = (n: unknown): n is RouterNat => typeof (n as RouterNat | undefined)?.applyNat === 'function';

/**
 * Changes the router's NAT state and makes its network apply it; a change the network refuses is not kept (the
 * same all-or-nothing as the DHCP/DNS changes in handlers.ts).
 */
export async function changeNat(
  routers: VirtualRouters,
  target: string,
  networks: RouterNetworks | undefined,
  signal: AbortSignal,
  edit: (nat: NatState) => void,
): Promise<Record<string, never>> {
  const real = isRouterNat(networks) ? networks : undefined;
  if (networks && !routers.get(target)) {
    const saved = await networks.load(target);
    if (saved) routers.adopt(target, saved);
  }
  const vr = routers.require(target);
  if (!vr.nat) vr.nat = (real && (await real.loadNat(target))) || emptyNat();
  const next: NatState = { vips: new Map(vr.nat.vips), eips: new Map(vr.nat.eips), portForwardings: new Map(vr.nat.portForwardings) };
  edit(next);
  await real?.applyNat(target, next, signal);
  vr.nat = next;
  return {};
}

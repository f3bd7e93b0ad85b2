// Virtual router agent: DHCP entries keyed by MAC, DNS servers by address, NICs by MAC; with real networks, every
// change is applied to the router's namespace before the reply.
import type { AgentPart, Ctx } from '../lib/handler.js';
import { loadBalancerHandlers } from './load-balancer.js';
import type { OperationId } from '../lib/protocol.js';
import type { RouterNetworks, VirtualRouterState, VirtualRouters } from './state.js';
import { eipHandlers } from './eip.js';
import { portForwardingHandlers } from './port-forwarding.js';

export function virtualRouterPart(routers: VirtualRouters, networks?: RouterNetworks): AgentPart {
  /** Changes the router's state and makes its network serve it; a change its network refuses is not kept. */
  const change = async <O extends OperationId>(ctx: Ctx<O>, edit: (vr: VirtualRouterState) => void) => {
    if (networks && !routers.get(ctx.target)) {
      const saved = await networks.load(ctx.target);
      if (saved) routers.adopt(ctx.target, saved);
    }
    const vr = routers.require(ctx.target);
    const next = { ...vr, nics: new Map(vr.nics), dhcp: new Map(vr.dhcp), dns: new Map(vr.dns) };
    edit(next);
    await networks?.apply(ctx.target, next, ctx.signal);
    Object.assign(vr, { nics: next.nics, dhcp: next.dhcp, dns: next.dns });
    return {};
  };
  return {
    handlers: {
      ...eipHandlers(routers, networks),
      ...portForwardingHandlers(routers, networks),
      VirtualRouterInit: async (ctx) => {
        routers.require(ctx.target).initializedAs = ctx.body.uuid ?? ctx.target;
        return {};
      },
      VirtualRouterEcho: async () => ({}),
      VirtualRouterPing: async (ctx) => {
        const uuid = routers.get(ctx.target)?.initializedAs;
        return uuid ? { uuid } : {};
      },
      VirtualRouterAddDhcp: (ctx) =>
        change(ctx, (vr) => {
          if (ctx.body.rebuild) vr.dhcp.clear();
          for (const entry of ctx.body.dhcpEntries) vr.dhcp.set(entry.mac, entry);
        }),
      VirtualRouterRemoveDhcp: (ctx) =>
        change(ctx, (vr) => {
          for (const entry of ctx.body.dhcpEntries) vr.dhcp.delete(entry.mac);
        }),
      VirtualRouterSetDns: (ctx) =>
        change(ctx, (vr) => {
          for (const dns of ctx.body.dns) vr.dns.set(dns.dnsAddress, dns);
        }),
      VirtualRouterRemoveDns: (ctx) =>
        change(ctx, (vr) => {
          for (const dns of ctx.body.dns) vr.dns.delete(dns.dnsAddress);
        }),
      VirtualRouterConfigureNic: (ctx) =>
        change(ctx, (vr) => {
          for (const nic of ctx.body.nics) vr.nics.set(nic.mac, nic);
        }),
      ...loadBalancerHandlers(routers, networks),
    },
  };
}

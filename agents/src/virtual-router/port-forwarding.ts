// Virtual router agent: port forwarding rules, keyed by VIP address, protocol and VIP port range — upstream
// port_forwarding.py.
import type { HandlerMap } from '../lib/handler.js';
import { changeNat, ruleKey } from './nat-state.js';
import type { RouterNetworks, VirtualRouters } from './state.js';

export function portForwardingHandlers(routers: VirtualRouters, networks?: RouterNetworks): HandlerMap {
  return {
    VirtualRouterCreatePortForwarding: async (ctx) =>
      changeNat(routers, ctx.target, networks, ctx.signal, (nat) => {
        for (const r of ctx.body.rules) nat.portForwardings.set(ruleKey(r), r);
      }),
    VirtualRouterRevokePortForwarding: async (ctx) =>
      changeNat(routers, ctx.target, networks, ctx.signal, (nat) => {
        for (const r of ctx.body.rules) nat.portForwardings.delete(ruleKey(r));
      }),
    VirtualRouterSyncPortForwarding: async (ctx) =>
      changeNat(routers, ctx.target, networks, ctx.signal, (nat) => {
        nat.portForwardings = new Map(ctx.body.rules.map((r) => [ruleKey(r), r]));
      }),
  };
}

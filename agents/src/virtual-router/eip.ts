// Virtual router agent: VIPs (keyed by address) and EIPs (keyed by VIP address) — upstream vip.py and eip.py.
import type { HandlerMap } from '../lib/handler.js';
import { changeNat } from './nat-state.js';
import type { RouterNetworks, VirtualRouters } from './state.js';

export function eipHandlers(routers: VirtualRouters, networks?: RouterNetworks): HandlerMap {
  return {
    VirtualRouterCreateVip: async (ctx) =>
      changeNat(routers, ctx.target, networks, ctx.signal, (nat) => {
        for (const vip of ctx.body.vips) nat.vips.set(vip.ip, vip);
      }),
    VirtualRouterRemoveVip: async (ctx) =>
      changeNat(routers, ctx.target, networks, ctx.signal, (nat) => {
        for (const vip of ctx.body.vips) nat.vips.delete(vip.ip);
      }),
    VirtualRouterCreateEip: async (ctx) =>
      changeNat(routers, ctx.target, networks, ctx.signal, (nat) => {
        nat.eips.set(ctx.body.eip.vipIp, ctx.body.eip);
      }),
    VirtualRouterRemoveEip: async (ctx) =>
      changeNat(routers, ctx.target, networks, ctx.signal, (nat) => {
        nat.eips.delete(ctx.body.eip.vipIp);
      }),
    VirtualRouterSyncEip: async (ctx) =>
      changeNat(routers, ctx.target, networks, ctx.signal, (nat) => {
        nat.eips = new Map(ctx.body.eips.map((e) => [e.vipIp, e]));
      }),
  };
}

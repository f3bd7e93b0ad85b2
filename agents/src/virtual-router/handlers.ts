// Virtual router agent: DHCP entries keyed by MAC, DNS servers by address, NICs by MAC.
import type { AgentPart } from '../lib/handler.js'
import type { VirtualRouters } from './state.js'

export function virtualRouterPart(routers: VirtualRouters): AgentPart {
  return {
    handlers: {
      VirtualRouterInit: async (ctx) => {
        routers.require(ctx.target).initializedAs = ctx.body.uuid ?? ctx.target
        return {}
      },
      VirtualRouterEcho: async () => ({}),
      VirtualRouterPing: async (ctx) => {
        const uuid = routers.get(ctx.target)?.initializedAs
        return uuid ? { uuid } : {}
      },
      VirtualRouterAddDhcp: async (ctx) => {
        const vr = routers.require(ctx.target)
        if (ctx.body.rebuild) vr.dhcp.clear()
        for (const entry of ctx.body.dhcpEntries) vr.dhcp.set(entry.mac, entry)
        return {}
      },
      VirtualRouterRemoveDhcp: async (ctx) => {
        const vr = routers.require(ctx.target)
        for (const entry of ctx.body.dhcpEntries) vr.dhcp.delete(entry.mac)
        return {}
      },
      VirtualRouterSetDns: async (ctx) => {
        const vr = routers.require(ctx.target)
        for (const dns of ctx.body.dns) vr.dns.set(dns.dnsAddress, dns)
        return {}
      },
      VirtualRouterRemoveDns: async (ctx) => {
        const vr = routers.require(ctx.target)
        for (const dns of ctx.body.dns) vr.dns.delete(dns.dnsAddress)
        return {}
      },
      VirtualRouterConfigureNic: async (ctx) => {
        const vr = routers.require(ctx.target)
        for (const nic of ctx.body.nics) vr.nics.set(nic.mac, nic)
        return {}
      },
    },
  }
}

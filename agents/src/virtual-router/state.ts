// What a virtual router has been told to serve. Kept in memory in both modes: driving dnsmasq/iptables inside a
// real appliance VM is out of scope (agents/README.md).
import { BadRequestError } from '../lib/errors.js'
import type { DhcpInfo, DnsInfo, VirtualRouterNicInfo } from '../lib/protocol.js'

export interface VirtualRouterState {
  initializedAs?: string
  nics: Map<string, VirtualRouterNicInfo>
  dhcp: Map<string, DhcpInfo>
  dns: Map<string, DnsInfo>
}

export class VirtualRouters {
  private readonly routers = new Map<string, VirtualRouterState>()

  /** @param multi true in the simulator (one state per target uuid); a real agent is one router. */
  constructor(readonly multi: boolean) {}

  require(target: string): VirtualRouterState {
    const key = this.multi ? target : ''
    if (this.multi && key === '') throw new BadRequestError('X-Zstack-Target-Uuid is required: the simulator serves many virtual routers')
    let vr = this.routers.get(key)
    if (!vr) this.routers.set(key, (vr = { nics: new Map(), dhcp: new Map(), dns: new Map() }))
    return vr
  }

  get(target: string): VirtualRouterState | undefined {
    return this.routers.get(this.multi ? target : '')
  }

  clear(): void {
    this.routers.clear()
  }
}

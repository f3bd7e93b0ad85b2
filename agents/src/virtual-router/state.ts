// What a virtual router has been told to serve, kept in memory. On a kvm host with the libvirt backend each router
// is also a network namespace on the host (network/router-namespace.ts) that is made to serve this state after
// every change; elsewhere (the simulator, the standalone agent) the state is all there is.
import { BadRequestError } from '../lib/errors.js';
import type { DhcpInfo, DnsInfo, VirtualRouterNicInfo } from '../lib/protocol.js';

export interface VirtualRouterState {
  initializedAs?: string;
  nics: Map<string, VirtualRouterNicInfo>;
  dhcp: Map<string, DhcpInfo>;
  dns: Map<string, DnsInfo>;
}

/** Makes a router's real network serve its state (the router is the command's target uuid). */
export interface RouterNetworks {
  apply(routerUuid: string, state: VirtualRouterState, signal: AbortSignal): Promise<void>;
  /** What the router's network was last made to serve (an agent restarted since keeps building on it). */
  load(routerUuid: string): Promise<Omit<VirtualRouterState, 'initializedAs'> | undefined>;
}

export class VirtualRouters {
  private readonly routers = new Map<string, VirtualRouterState>();

  /** @param multi true when one agent serves many routers (one state per target uuid); a standalone agent is one router. */
  constructor(readonly multi: boolean) {}

  require(target: string): VirtualRouterState {
    const key = this.multi ? target : '';
    if (this.multi && key === '') throw new BadRequestError('X-Zstack-Target-Uuid is required: this agent serves many virtual routers');
    let vr = this.routers.get(key);
    if (!vr) this.routers.set(key, (vr = { nics: new Map(), dhcp: new Map(), dns: new Map() }));
    return vr;
  }

  /** Takes a router's state when this agent has none (restarted): what its network was last told to serve. */
  adopt(target: string, state: Omit<VirtualRouterState, 'initializedAs'>): void {
    const key = this.multi ? target : '';
    if (!this.routers.has(key)) this.routers.set(key, { ...state });
  }

  get(target: string): VirtualRouterState | undefined {
    return this.routers.get(this.multi ? target : '');
  }

  /** Forgets a router (its VM was destroyed). */
  delete(target: string): void {
    this.routers.delete(this.multi ? target : '');
  }

  clear(): void {
    this.routers.clear();
  }
}

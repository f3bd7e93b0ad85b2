// The VirtualRouter network service provider (zstack-internals.md §5.5): when a user VM's NIC is on an L3 network
// whose DHCP or DNS the VirtualRouter provider serves, the L3's virtual router VM `virtualRouter.l3.<l3Uuid>` is
// made sure to exist and run — created once per L3, even under concurrent VM creations on several management
// nodes (lock `vr-l3:<l3Uuid>`, existence re-checked inside) — and is told the NIC's DHCP entry and the DNS servers.
import { and, asc, eq, isNotNull, notInArray } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import type { AgentPathOf, AgentRequest } from '../agent-client/index.js';
import { err, notFound, toApiError } from '../core/errors.js';
import { images, l3Networks, vmInstances, vmNics } from '../db/schema/index.js';
import { createVm, type VmCreateSpec } from '../vm/index.js';
import type { NicRow, VmRow } from '../vm/index.js';
import type { VmNetworkServiceExtension, VmService } from '../vm/index.js';
import { taggedHostname } from '../vm/index.js';

export const VR_PROVIDER_TYPE = 'VirtualRouter';
export const VR_AGENT_PORT = 7272;
/** NIC roles in an appliance VM NIC's metaData (upstream VirtualRouterNicMetaData): a bit mask. */
export const NIC_ROLE = { public: 1, management: 2, guest: 4 } as const;

export const vrLockKey = (l3Uuid: string) => `vr-l3:${l3Uuid}`;
export const vrName = (l3Uuid: string) => `virtualRouter.l3.${l3Uuid}`;

const GONE_STATES = ['Destroying', 'Destroyed', 'Expunging'];
const isGuestNic = (n: NicRow) => (Number(n.metaData ?? 0) & NIC_ROLE.guest) !== 0;
const hasIp = (n: NicRow): n is NicRow & { ip: string } => !!n.ip;
type DhcpInfo = AgentRequest<'/virtualrouter/adddhcp'>['dhcpEntries'][number];

/** What a virtual router is built from: its offering's CPU/memory, image, networks and where it may run. */
export interface RouterPlan {
  uuid?: string;
  name: string;
  description?: string;
  offering: { uuid: string; cpuNum: number; memorySize: number; cpuSpeed: number };
  image: typeof images.$inferSelect;
  managementNetworkUuid: string;
  publicNetworkUuid?: string;
  guestL3Uuids: string[];
  placement: { zoneUuid?: string; clusterUuid?: string; hostUuid?: string };
}

interface VrServices {
  dhcp: boolean;
  dns: boolean;
}

/** Run when a router (re)connected, after its DHCP/DNS: the services configured on it (EIP, port forwarding…) again. */
export type RouterConnectHook = (vr: VmRow) => Promise<void>;

export class VirtualRouterService implements VmNetworkServiceExtension {
  readonly name = 'VirtualRouter';
  private connectHooks: RouterConnectHook[] = [];

  constructor(
    private app: DomainContext,
    private vms: VmService,
  ) {}

  // ------------------------------------------------------------------ the VM network service extension

  async apply(vm: VmRow, nics: NicRow[]): Promise<void> {
    if (vm.type === 'ApplianceVm') return;
    for (const [l3Uuid, l3Nics] of groupByL3(nics)) {
      const services = await this.servicesOf(l3Uuid);
      if (!services) continue;
      const vr = await this.ensure(l3Uuid);
      await this.push(vr, l3Uuid, services, vm, l3Nics, false);
    }
  }

  async release(vm: VmRow, nics: NicRow[]): Promise<void> {
    if (vm.type === 'ApplianceVm') return;
    for (const [l3Uuid, l3Nics] of groupByL3(nics)) {
      const services = await this.servicesOf(l3Uuid);
      if (!services?.dhcp) continue;
      const vr = await this.find(l3Uuid);
      if (!vr || vr.state !== 'Running') continue;
      await this.call(vr, '/virtualrouter/removedhcp', { dhcpEntries: l3Nics.filter(hasIp).map((n) => ({ ip: n.ip, mac: n.mac })) });
    }
  }

  /** Which of DHCP and DNS the VirtualRouter provider serves on the L3; undefined when neither. */
  private async servicesOf(l3Uuid: string): Promise<VrServices | undefined> {
    const refs = (await this.app.use('networks').providersOf(l3Uuid)).filter((r) => r.providerType === VR_PROVIDER_TYPE);
    const dhcp = refs.some((r) => r.serviceType === 'DHCP');
    const dns = refs.some((r) => r.serviceType === 'DNS');
    return dhcp || dns ? { dhcp, dns } : undefined;
  }

  // ------------------------------------------------------------------ finding, creating, connecting

  /** The live virtual router with a guest NIC on the L3 (the earliest created), if any. */
  async find(l3Uuid: string): Promise<VmRow | undefined> {
    const rows = await this.app.db
      .select({ vm: vmInstances, nic: vmNics })
      .from(vmInstances)
      .innerJoin(vmNics, eq(vmNics.vmInstanceUuid, vmInstances.uuid))
      .where(
        and(
          eq(vmInstances.type, 'ApplianceVm'),
          eq(vmInstances.applianceVmType, 'VirtualRouter'),
          eq(vmNics.l3NetworkUuid, l3Uuid),
          notInArray(vmInstances.state, GONE_STATES),
        ),
      )
      .orderBy(asc(vmInstances.createDate));
    return rows.find((r) => isGuestNic(r.nic))?.vm;
  }

  /** The L3's virtual router, Running and Connected: found, started, reconnected or created. */
  async ensure(l3Uuid: string): Promise<VmRow> {
    const quick = await this.find(l3Uuid);
    if (quick && quick.state === 'Running' && quick.status === 'Connected') return quick;
    return this.app.locks.withLock(vrLockKey(l3Uuid), async () => {
      const vr = await this.find(l3Uuid);
      if (!vr) return this.create(l3Uuid);
      if (vr.state === 'Stopped') await this.vms.start(vr.uuid, {});
      else if (vr.state !== 'Running') {
        throw err('SYS.1006', `virtual router[uuid:${vr.uuid}] of L3 network[uuid:${l3Uuid}] is ${vr.state}; it cannot serve the network now`);
      }
      if (vr.state !== 'Running' || vr.status !== 'Connected') await this.connect(vr.uuid);
      return (await this.vms.get(vr.uuid))!;
    });
  }

  private async create(l3Uuid: string): Promise<VmRow> {
    const [l3] = await this.app.db.select().from(l3Networks).where(eq(l3Networks.uuid, l3Uuid));
    if (!l3) throw notFound('L3NetworkVO', l3Uuid, 'l3NetworkUuid');
    const offering = await this.app.use('offerings').defaultVirtualRouterOffering(l3.zoneUuid);
    if (!offering) {
      throw err('SYS.1006', `no virtual router offering for zone[uuid:${l3.zoneUuid}]: cannot create the virtual router serving L3 network[uuid:${l3Uuid}]`);
    }
    const [image] = await this.app.db.select().from(images).where(eq(images.uuid, offering.imageUuid!));
    if (!image) throw err('SYS.1006', `image[uuid:${offering.imageUuid}] of virtual router offering[uuid:${offering.uuid}] does not exist`);
    if (image.status !== 'Ready') throw err('SYS.1006', `image[uuid:${image.uuid}] of virtual router offering[uuid:${offering.uuid}] is ${image.status}`);
    return this.build({
      name: vrName(l3Uuid),
      offering,
      image,
      managementNetworkUuid: offering.managementNetworkUuid!,
      publicNetworkUuid: offering.publicNetworkUuid ?? undefined,
      guestL3Uuids: [l3Uuid],
      placement: { zoneUuid: l3.zoneUuid },
    });
  }

  /**
   * CreateVirtualRouterVm: a router built by hand for the given guest networks, each of which must have no router yet
   * (checked again under each network's lock, so it cannot race the on-demand creation).
   */
  async createByHand(plan: RouterPlan): Promise<VmRow> {
    const ordered = [...new Set(plan.guestL3Uuids)].sort();
    const locked = async (i: number): Promise<VmRow> => {
      if (i === ordered.length) return this.build(plan);
      const l3Uuid = ordered[i];
      return this.app.locks.withLock(vrLockKey(l3Uuid), async () => {
        const existing = await this.find(l3Uuid);
        if (existing) throw err('SYS.1006', `L3 network[uuid:${l3Uuid}] already has a virtual router[uuid:${existing.uuid}]`);
        return locked(i + 1);
      });
    };
    // Locks in a fixed order: two calls naming the same networks never wait on each other in a circle.
    return locked(0);
  }

  /** Creates the router VM (NICs: management, public, guests with their roles), then connects to its agent. */
  private async build(plan: RouterPlan): Promise<VmRow> {
    const management = plan.managementNetworkUuid;
    const pub = plan.publicNetworkUuid ?? management;
    // One NIC per distinct network; a NIC serving several roles carries all their bits (the seed's metaData "7").
    const roles = new Map<string, number>();
    const add = (l3: string, role: number) => roles.set(l3, (roles.get(l3) ?? 0) | role);
    add(management, NIC_ROLE.management);
    add(pub, NIC_ROLE.public);
    for (const guest of plan.guestL3Uuids) add(guest, NIC_ROLE.guest);
    // A NIC that is only a guest network's takes its gateway address: the router is the guests' gateway. (A NIC
    // in every role, as in the release notes' seed, takes an address from the range like any other.)
    const gateways = new Map<string, string>();
    for (const [l3Uuid, mask] of roles) {
      if (mask !== NIC_ROLE.guest) continue;
      const gateway = (await this.app.use('networks').l3Inventory(l3Uuid)).ipRanges[0]?.gateway;
      if (gateway) gateways.set(l3Uuid, gateway);
    }
    const { offering, image } = plan;
    const spec: VmCreateSpec = {
      name: plan.name,
      description: plan.description,
      type: 'ApplianceVm',
      cpuNum: offering.cpuNum,
      memorySize: offering.memorySize,
      cpuSpeed: offering.cpuSpeed,
      instanceOfferingUuid: offering.uuid,
      allocatorStrategy: 'LeastVmPreferredHostAllocatorStrategy',
      image,
      rootDiskSize: image.size,
      dataDisks: [],
      nics: [...roles].map(([l3NetworkUuid, mask]) => ({
        l3NetworkUuid,
        metaData: String(mask),
        ...(gateways.has(l3NetworkUuid) ? { staticIp: gateways.get(l3NetworkUuid) } : {}),
      })),
      zoneUuid: plan.placement.zoneUuid!,
      placement: plan.placement,
      strategy: 'InstantStart',
      uuid: plan.uuid,
      appliance: {
        applianceVmType: 'VirtualRouter',
        managementNetworkUuid: management,
        publicNetworkUuid: pub,
        defaultRouteL3NetworkUuid: pub,
        status: 'Connecting',
      },
    };
    const uuid = await createVm(this.app, this.vms, spec);
    try {
      await this.connect(uuid);
    } catch (e) {
      await this.vms.destroy(uuid).catch((x) => console.error(`[vr] removing the unconnectable virtual router[uuid:${uuid}] failed:`, toApiError(x).message));
      throw e;
    }
    return (await this.vms.get(uuid))!;
  }

  /**
   * Connects to the router's agent: Connecting → `/virtualrouter/init` + `/virtualrouter/configurenic` → Connected,
   * then rebuilds the DHCP entries and DNS of every network it serves. Failure → Disconnected.
   */
  async connect(vrUuid: string): Promise<void> {
    const setStatus = (status: string) => this.app.db.update(vmInstances).set({ status, lastOpDate: new Date() }).where(eq(vmInstances.uuid, vrUuid));
    await setStatus('Connecting');
    try {
      const vr = (await this.vms.get(vrUuid))!;
      const nics = await this.vms.nicsOf(vrUuid);
      await this.call(vr, '/virtualrouter/init', { uuid: vrUuid });
      await this.call(vr, '/virtualrouter/configurenic', {
        nics: nics.map((n) => {
          // Every router NIC holds an address of its L3 (allocated with the router); the agent requires one.
          if (!n.ip || !n.netmask) throw err('SYS.1006', `NIC[uuid:${n.uuid}] of virtual router[uuid:${vrUuid}] has no IP address`);
          return {
            mac: n.mac,
            ip: n.ip,
            netmask: n.netmask,
            gateway: n.gateway ?? undefined,
            isDefaultRoute: n.l3NetworkUuid === vr.defaultRouteL3NetworkUuid,
          };
        }),
      });
      for (const nic of nics.filter(isGuestNic)) {
        const services = await this.servicesOf(nic.l3NetworkUuid);
        if (services) await this.rebuild(vr, nic.l3NetworkUuid, services);
      }
      for (const hook of this.connectHooks) await hook(vr);
    } catch (e) {
      await setStatus('Disconnected');
      throw e;
    }
    await setStatus('Connected');
  }

  /** Every user NIC on the L3 that holds an IP gets its DHCP entry again (rebuild), and the DNS servers. */
  private async rebuild(vr: VmRow, l3Uuid: string, services: VrServices): Promise<void> {
    const rows = await this.app.db
      .select({ vm: vmInstances, nic: vmNics })
      .from(vmNics)
      .innerJoin(vmInstances, eq(vmInstances.uuid, vmNics.vmInstanceUuid))
      .where(and(eq(vmNics.l3NetworkUuid, l3Uuid), eq(vmInstances.type, 'UserVm'), isNotNull(vmNics.usedIpUuid)));
    const entries = [];
    for (const r of rows) entries.push(...(await this.dhcpEntries(vr, l3Uuid, r.vm, [r.nic])));
    if (services.dhcp) await this.call(vr, '/virtualrouter/adddhcp', { dhcpEntries: entries, rebuild: true });
    if (services.dns) await this.setDns(vr, l3Uuid);
  }

  /** Tells the router about NICs of one VM on one of its networks. */
  private async push(vr: VmRow, l3Uuid: string, services: VrServices, vm: VmRow, nics: NicRow[], rebuild: boolean): Promise<void> {
    if (services.dhcp) {
      await this.call(vr, '/virtualrouter/adddhcp', { dhcpEntries: await this.dhcpEntries(vr, l3Uuid, vm, nics), rebuild });
    }
    if (services.dns) await this.setDns(vr, l3Uuid);
  }

  private async dhcpEntries(vr: VmRow, l3Uuid: string, vm: VmRow, nics: NicRow[]) {
    const l3 = await this.app.use('networks').l3Inventory(l3Uuid);
    const guest = (await this.vms.nicsOf(vr.uuid)).find((n) => n.l3NetworkUuid === l3Uuid);
    // The VM's `hostname::` system tag names the guest (upstream's DHCP hostname); otherwise a VM name that is a valid host name.
    const hostname = (await taggedHostname(this.app.db, vm.uuid)) ?? (/^[a-zA-Z0-9][a-zA-Z0-9-]{0,62}$/.test(vm.name) ? vm.name : undefined);
    return nics.filter(hasIp).map((n) => {
      const entry: DhcpInfo = {
        ip: n.ip,
        mac: n.mac,
        netmask: n.netmask ?? undefined,
        gateway: n.gateway ?? undefined,
        isDefaultL3Network: vm.defaultL3NetworkUuid === l3Uuid,
        // With the router's DNS service the guest asks the router; otherwise the L3's servers.
        dns: guest?.ip ? [guest.ip] : l3.dns,
      };
      if (hostname) entry.hostname = hostname;
      if (l3.dnsDomain) entry.dnsDomain = l3.dnsDomain;
      return entry;
    });
  }

  private async setDns(vr: VmRow, l3Uuid: string): Promise<void> {
    const l3 = await this.app.use('networks').l3Inventory(l3Uuid);
    const guest = (await this.vms.nicsOf(vr.uuid)).find((n) => n.l3NetworkUuid === l3Uuid);
    if (l3.dns.length === 0) return;
    await this.call(vr, '/virtualrouter/setdns', { dns: l3.dns.map((dnsAddress: string) => ({ dnsAddress, nicMac: guest?.mac })) });
  }

  // ------------------------------------------------------------------ for services configured on routers

  /** Registers what must be configured again on a router that (re)connects; a hook that throws fails the connect. */
  afterConnect(hook: RouterConnectHook): void {
    this.connectHooks.push(hook);
  }

  /** The guest L3 networks a router serves (its NICs in the guest role). */
  async guestL3s(vrUuid: string): Promise<string[]> {
    return (await this.vms.nicsOf(vrUuid)).filter(isGuestNic).map((n) => n.l3NetworkUuid);
  }

  /** The router's NIC on an L3 network, if it has one. */
  async nicOn(vrUuid: string, l3Uuid: string): Promise<NicRow | undefined> {
    return (await this.vms.nicsOf(vrUuid)).find((n) => n.l3NetworkUuid === l3Uuid);
  }

  /** A command to the router's agent (EIP, port forwarding… live in their own domains). */
  command<P extends AgentPathOf<'virtualrouter'>>(vr: VmRow, path: P, body: AgentRequest<P>): Promise<void> {
    return this.call(vr, path, body);
  }

  /**
   * An agent call to the router (target = its uuid): the simulator serves routers on simulated hosts; a KVM host's
   * agent serves the routers it runs (as network namespaces: no router image with an agent inside exists); else
   * the agent in the VM at its management address.
   */
  private async call<P extends AgentPathOf<'virtualrouter'>>(vr: VmRow, path: P, body: AgentRequest<P>): Promise<void> {
    const { url, secret } = await this.agentOf(vr);
    await this.app.agents.call(url, path, body, { targetUuid: vr.uuid, secret });
  }

  private async agentOf(vr: VmRow): Promise<{ url: string; secret?: string }> {
    const hostUuid = vr.hostUuid ?? vr.lastHostUuid;
    const host = hostUuid ? await this.app.use('hosts').get(hostUuid) : undefined;
    if (host?.hypervisorType === 'Simulator') {
      if (!this.app.options.simulatorUrl) throw err('SYS.1006', 'no simulator agent is configured on this management node');
      return { url: this.app.options.simulatorUrl };
    }
    const hosts = this.app.use('hosts');
    if (host?.hypervisorType === 'KVM') return { url: hosts.agentUrlOf(host), secret: hosts.agentSecretOf(host) };
    const nics = await this.vms.nicsOf(vr.uuid);
    const management = nics.find((n) => n.l3NetworkUuid === vr.managementNetworkUuid) ?? nics[0];
    if (!management?.ip) throw err('SYS.1006', `virtual router[uuid:${vr.uuid}] has no management IP`);
    return { url: `http://${management.ip}:${VR_AGENT_PORT}` };
  }
}

function groupByL3(nics: NicRow[]): Map<string, NicRow[]> {
  const m = new Map<string, NicRow[]>();
  for (const n of nics) m.set(n.l3NetworkUuid, [...(m.get(n.l3NetworkUuid) ?? []), n]);
  return m;
}

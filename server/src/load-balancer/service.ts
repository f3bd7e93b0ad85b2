// Load balancers on the data plane (upstream LoadBalancerBase + VirtualRouterLoadBalancerBackend, 1.1). A load
// balancer is applied on the virtual router of the guest network its backends are on, from its first backend NIC
// on: the VIP on the router's public NIC (/virtualrouter/createvip), then every listener with its active backends'
// addresses (/lb/refresh; a listener without backends is removed by the router). Every change is one flow inside the
// API's job, undone when a step fails. Operations on one load balancer take turns on its VIP's lock (the lock EIPs
// and port forwarding take too). A NIC of a stopped VM is Inactive (not balanced to) until the VM runs again; a NIC
// that goes away (detached, VM destroyed) leaves the load balancer.
import { and, asc, eq, inArray } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import { runFlow } from '../core/flow.js';
import { argErr, notFound, opErr, toApiError } from '../core/errors.js';
import { loadBalancerListeners, loadBalancerListenerVmNicRefs, loadBalancers, systemTags, vmInstances, vmNics } from '../db/schema/index.js';
import type { AgentRequest } from '../agent-client/index.js';
import { placeOn, vipLockKey, vipOnRouter, type VipRow } from '../vip/index.js';
import type { NicRow, VmNetworkServiceExtension, VmRow } from '../vm/index.js';
import type { ListenerRow, LoadBalancerRow } from './inventory.js';

export const LB_SERVICE = 'LoadBalancer';
export type LbTO = AgentRequest<'/lb/refresh'>['lbs'][number];

/** Backend states a router balances to (upstream: Active and Pending). */
const BALANCED = ['Active', 'Pending'];
const GONE = ['Destroying', 'Destroyed', 'Expunging'];

export class LoadBalancerService implements VmNetworkServiceExtension {
  readonly name = 'LoadBalancer';

  constructor(private readonly app: DomainContext) {}

  private get db() {
    return this.app.db;
  }

  async get(uuid: string): Promise<LoadBalancerRow | undefined> {
    const [row] = await this.db.select().from(loadBalancers).where(eq(loadBalancers.uuid, uuid));
    return row;
  }

  async require(uuid: string, field = 'uuid'): Promise<LoadBalancerRow> {
    const row = await this.get(uuid);
    if (!row) throw notFound('LoadBalancerVO', uuid, field);
    return row;
  }

  async requireListener(uuid: string, field = 'uuid'): Promise<ListenerRow> {
    const [row] = await this.db.select().from(loadBalancerListeners).where(eq(loadBalancerListeners.uuid, uuid));
    if (!row) throw notFound('LoadBalancerListenerVO', uuid, field);
    return row;
  }

  /** Runs `fn` on the load balancer under its VIP's lock, with its row read again inside. */
  private async locked<T>(lbUuid: string, fn: (lb: LoadBalancerRow) => Promise<T>, field = 'uuid'): Promise<T> {
    const first = await this.require(lbUuid, field);
    return this.app.locks.withLock(vipLockKey(first.vipUuid), async () => fn(await this.require(lbUuid, field)));
  }

  // ------------------------------------------------------------------ what the router is told

  /**
   * The load balancer's listeners as the router applies them: backends are the Active/Pending refs' NIC addresses,
   * minus `without` (NIC uuids) on the listener `of` (every listener when absent); `only` limits to one listener.
   */
  async lbTOs(lb: LoadBalancerRow, opts: { without?: { nics: string[]; of?: string }; only?: string } = {}): Promise<LbTO[]> {
    const vip = await this.app.use('vips').get(lb.vipUuid);
    if (!vip) return [];
    const listeners = (
      await this.db
        .select()
        .from(loadBalancerListeners)
        .where(eq(loadBalancerListeners.loadBalancerUuid, lb.uuid))
        .orderBy(asc(loadBalancerListeners.createDate))
    ).filter((l) => !opts.only || l.uuid === opts.only);
    if (!listeners.length) return [];
    const uuids = listeners.map((l) => l.uuid);
    const refs = await this.db
      .select({ listener: loadBalancerListenerVmNicRefs.listenerUuid, nic: vmNics.uuid, ip: vmNics.ip })
      .from(loadBalancerListenerVmNicRefs)
      .innerJoin(vmNics, eq(vmNics.uuid, loadBalancerListenerVmNicRefs.vmNicUuid))
      .where(and(inArray(loadBalancerListenerVmNicRefs.listenerUuid, uuids), inArray(loadBalancerListenerVmNicRefs.status, BALANCED)))
      .orderBy(asc(loadBalancerListenerVmNicRefs.id));
    const tags = await this.db
      .select({ resource: systemTags.resourceUuid, tag: systemTags.tag })
      .from(systemTags)
      .where(inArray(systemTags.resourceUuid, uuids))
      .orderBy(asc(systemTags.createDate), asc(systemTags.tag));
    const dropped = (listener: string, nic: string) => !!opts.without?.nics.includes(nic) && (!opts.without.of || opts.without.of === listener);
    return listeners.map((l) => ({
      lbUuid: lb.uuid,
      listenerUuid: l.uuid,
      vip: vip.ip,
      nicIps: refs.filter((r) => r.listener === l.uuid && r.ip && !dropped(l.uuid, r.nic)).map((r) => r.ip!),
      instancePort: l.instancePort,
      loadBalancerPort: l.loadBalancerPort,
      mode: l.protocol as 'tcp' | 'http',
      parameters: tags.filter((t) => t.resource === l.uuid).map((t) => t.tag),
    }));
  }

  /** The router the load balancer is applied on, while it exists and runs. */
  private async runningRouterOf(lb: LoadBalancerRow): Promise<VmRow | undefined> {
    if (!lb.virtualRouterVmUuid) return undefined;
    const vr = await this.app.use('vms').get(lb.virtualRouterVmUuid);
    return vr && vr.state === 'Running' ? vr : undefined;
  }

  private command<P extends '/lb/refresh' | '/lb/delete' | '/virtualrouter/createvip' | '/virtualrouter/removevip'>(
    vr: VmRow,
    path: P,
    body: AgentRequest<P>,
  ): Promise<void> {
    return this.app.use('virtualRouters').command(vr, path, body);
  }

  // ------------------------------------------------------------------ the APIs

  /** CreateLoadBalancer: the VIP taken for the service and the row, in one transaction. */
  async create(values: { uuid: string; name: string; description?: string; vipUuid: string }): Promise<void> {
    await this.app.locks.withLock(vipLockKey(values.vipUuid), () =>
      this.db.transaction(async (tx) => {
        // Checked again under the VIP's lock: a concurrent creation on the same VIP may have won.
        const [other] = await tx.select({ uuid: loadBalancers.uuid }).from(loadBalancers).where(eq(loadBalancers.vipUuid, values.vipUuid));
        if (other) throw argErr(`the vip[uuid:${values.vipUuid}] is occupied by another load balancer[uuid:${other.uuid}]`);
        await this.app.use('vips').acquire(values.vipUuid, LB_SERVICE, { tx, field: 'vipUuid' });
        await tx.insert(loadBalancers).values({ ...values, description: values.description ?? null });
      }),
    );
  }

  /** AddVmNicToLoadBalancer: the VIP serves the NICs' network, refs Pending, applied on its router, then Active. */
  async addNics(listenerUuid: string, backends: Array<{ nic: NicRow; vm: VmRow }>): Promise<void> {
    const listener = await this.requireListener(listenerUuid, 'listenerUuid');
    const nics = backends.map((b) => b.nic);
    const l3Uuid = nics[0].l3NetworkUuid;
    // A stopped VM's NIC is recorded Inactive: balanced to once the VM runs.
    const statusOf = (nic: NicRow) => (backends.find((b) => b.nic.uuid === nic.uuid)!.vm.state === 'Running' ? 'Pending' : 'Inactive');
    await this.locked(listener.loadBalancerUuid, async (lb) => {
      const existing = await this.db
        .select({ nic: loadBalancerListenerVmNicRefs.vmNicUuid })
        .from(loadBalancerListenerVmNicRefs)
        .where(
          and(
            eq(loadBalancerListenerVmNicRefs.listenerUuid, listenerUuid),
            inArray(
              loadBalancerListenerVmNicRefs.vmNicUuid,
              nics.map((n) => n.uuid),
            ),
          ),
        );
      if (existing.length) {
        throw opErr(`the vm nics[uuid:${existing.map((e) => e.nic).join(', ')}] are already on the load balancer listener[uuid:${listenerUuid}]`);
      }
      const vips = this.app.use('vips');
      const before = await vips.require(lb.vipUuid, 'vipUuid');
      interface Data {
        vip?: VipRow;
        refIds?: number[];
        vr?: VmRow;
        vipPlaced?: () => Promise<void>;
      }
      await runFlow<Data>(
        'add-vm-nic-to-lb',
        [
          {
            // The VIP serves one guest network: every backend of the load balancer is on it.
            name: 'take-vip',
            run: async (d) => void (d.vip = await vips.acquire(lb.vipUuid, LB_SERVICE, { peerL3NetworkUuid: l3Uuid, field: 'vmNicUuids' })),
            rollback: async () => (before.peerL3NetworkUuid ? undefined : vips.setPeer(lb.vipUuid, null)),
          },
          {
            name: 'record-nics',
            run: async (d) => {
              const rows = await this.db
                .insert(loadBalancerListenerVmNicRefs)
                .values(nics.map((n) => ({ listenerUuid, vmNicUuid: n.uuid, status: statusOf(n) })))
                .returning({ id: loadBalancerListenerVmNicRefs.id });
              d.refIds = rows.map((r) => r.id);
            },
            rollback: async (d) => void (await this.db.delete(loadBalancerListenerVmNicRefs).where(inArray(loadBalancerListenerVmNicRefs.id, d.refIds!))),
          },
          {
            // The guest network's router (found, started or created) holds the VIP on its public NIC.
            name: 'vip-on-router',
            run: async (d) => {
              const place = await vipOnRouter(this.app, d.vip!, l3Uuid);
              d.vr = place.vr;
              if (lb.virtualRouterVmUuid === place.vr.uuid) return;
              await this.command(place.vr, '/virtualrouter/createvip', { vips: [place.vipTO] });
              d.vipPlaced = () => this.command(place.vr, '/virtualrouter/removevip', { vips: [place.vipTO] });
            },
            rollback: async (d) => d.vipPlaced?.(),
          },
          {
            name: 'refresh-on-router',
            run: async (d) => this.command(d.vr!, '/lb/refresh', { lbs: await this.lbTOs(lb) }),
          },
          {
            name: 'activate',
            run: async (d) => {
              await this.db.transaction(async (tx) => {
                await tx
                  .update(loadBalancers)
                  .set({ providerType: 'VirtualRouter', virtualRouterVmUuid: d.vr!.uuid, lastOpDate: new Date() })
                  .where(eq(loadBalancers.uuid, lb.uuid));
                await tx
                  .update(loadBalancerListenerVmNicRefs)
                  .set({ status: 'Active', lastOpDate: new Date() })
                  .where(and(inArray(loadBalancerListenerVmNicRefs.id, d.refIds!), eq(loadBalancerListenerVmNicRefs.status, 'Pending')));
              });
            },
          },
        ],
        {},
      );
    });
  }

  /** RemoveVmNicFromLoadBalancer: the router applies the listener without them, then the refs go. */
  async removeNics(listenerUuid: string, nicUuids: string[]): Promise<string> {
    const listener = await this.requireListener(listenerUuid, 'listenerUuid');
    await this.locked(listener.loadBalancerUuid, async (lb) => {
      const refs = await this.db
        .select({ id: loadBalancerListenerVmNicRefs.id })
        .from(loadBalancerListenerVmNicRefs)
        .where(and(eq(loadBalancerListenerVmNicRefs.listenerUuid, listenerUuid), inArray(loadBalancerListenerVmNicRefs.vmNicUuid, nicUuids)));
      if (!refs.length) return;
      const vr = await this.runningRouterOf(lb);
      if (vr) await this.command(vr, '/lb/refresh', { lbs: await this.lbTOs(lb, { only: listenerUuid, without: { nics: nicUuids } }) });
      await this.db.delete(loadBalancerListenerVmNicRefs).where(
        inArray(
          loadBalancerListenerVmNicRefs.id,
          refs.map((r) => r.id),
        ),
      );
    });
    return listener.loadBalancerUuid;
  }

  /** DeleteLoadBalancerListener: removed from the router (/lb/delete), then deleted with its refs and tags. */
  async deleteListener(listenerUuid: string): Promise<string> {
    const listener = await this.requireListener(listenerUuid);
    await this.locked(listener.loadBalancerUuid, async (lb) => {
      const vr = await this.runningRouterOf(lb);
      if (vr) await this.command(vr, '/lb/delete', { lbs: await this.lbTOs(lb, { only: listenerUuid }) });
      await this.db.delete(loadBalancerListeners).where(eq(loadBalancerListeners.uuid, listenerUuid));
    });
    return listener.loadBalancerUuid;
  }

  /**
   * Deletes load balancers (DeleteLoadBalancer, cascade node `loadBalancer` under `vip`): listeners and the VIP off
   * the router (`strict`: a refusal stops the deletion; otherwise it is logged), rows deleted, the VIP given back.
   */
  async delete(uuids: string[], strict: boolean): Promise<void> {
    for (const uuid of uuids) {
      const first = await this.get(uuid);
      if (!first) continue;
      await this.app.locks.withLock(vipLockKey(first.vipUuid), async () => {
        const lb = await this.get(uuid);
        if (!lb) return;
        const vr = await this.runningRouterOf(lb);
        if (vr) {
          try {
            const tos = await this.lbTOs(lb);
            if (tos.length) await this.command(vr, '/lb/delete', { lbs: tos });
            const vip = await this.app.use('vips').get(lb.vipUuid);
            const place = vip && vip.peerL3NetworkUuid ? await placeOn(this.app, vr, vip, vip.peerL3NetworkUuid).catch(() => undefined) : undefined;
            if (place) await this.command(vr, '/virtualrouter/removevip', { vips: [place.vipTO] });
          } catch (e) {
            if (strict) throw e;
            console.warn(`[load-balancer] removing load balancer[uuid:${uuid}] from virtual router[uuid:${vr.uuid}] failed: ${toApiError(e).message}`);
          }
        }
        await this.db.delete(loadBalancers).where(eq(loadBalancers.uuid, uuid));
        await this.app.use('vips').release(lb.vipUuid, LB_SERVICE);
      });
    }
  }

  /** RefreshLoadBalancer: the whole load balancer on its router again (the router made ready first). */
  async refresh(uuid: string): Promise<void> {
    await this.locked(uuid, async (lb) => {
      const vip = await this.app.use('vips').get(lb.vipUuid);
      if (!lb.providerType || !vip?.peerL3NetworkUuid) return; // no backend added yet: nothing to apply
      const place = await vipOnRouter(this.app, vip, vip.peerL3NetworkUuid);
      await this.command(place.vr, '/virtualrouter/createvip', { vips: [place.vipTO] });
      await this.command(place.vr, '/lb/refresh', { lbs: await this.lbTOs(lb) });
      if (lb.virtualRouterVmUuid !== place.vr.uuid) {
        await this.db.update(loadBalancers).set({ virtualRouterVmUuid: place.vr.uuid, lastOpDate: new Date() }).where(eq(loadBalancers.uuid, uuid));
      }
    });
  }

  // ------------------------------------------------------------------ VMs and routers coming and going

  /** Load balancers with backends among these NICs, with the listeners concerned. */
  private async balancersOf(nicUuids: string[]): Promise<Array<{ lbUuid: string; listenerUuid: string; nicUuid: string }>> {
    if (!nicUuids.length) return [];
    return this.db
      .select({
        lbUuid: loadBalancerListeners.loadBalancerUuid,
        listenerUuid: loadBalancerListenerVmNicRefs.listenerUuid,
        nicUuid: loadBalancerListenerVmNicRefs.vmNicUuid,
      })
      .from(loadBalancerListenerVmNicRefs)
      .innerJoin(loadBalancerListeners, eq(loadBalancerListeners.uuid, loadBalancerListenerVmNicRefs.listenerUuid))
      .where(inArray(loadBalancerListenerVmNicRefs.vmNicUuid, nicUuids));
  }

  /** Starting a VM changes nothing here: its NICs come back when it is Running (onVmState). */
  async apply(): Promise<void> {}

  /** The NICs go (detached, VM destroyed): they leave every load balancer (best effort on the routers). */
  async release(vm: VmRow, nics: NicRow[]): Promise<void> {
    // A start rolled back: the NICs stay (Inactive while the VM is not running).
    if (vm.type !== 'UserVm' || vm.state === 'Starting') return;
    const uuids = nics.map((n) => n.uuid);
    for (const { lbUuid, listenerUuid, nicUuid } of await this.balancersOf(uuids)) {
      await this.removeNicsQuietly(lbUuid, listenerUuid, [nicUuid]);
    }
  }

  private async removeNicsQuietly(lbUuid: string, listenerUuid: string, nicUuids: string[]): Promise<void> {
    try {
      await this.locked(lbUuid, async (lb) => {
        const vr = await this.runningRouterOf(lb);
        if (vr) {
          await this.command(vr, '/lb/refresh', { lbs: await this.lbTOs(lb, { only: listenerUuid, without: { nics: nicUuids } }) }).catch((e) =>
            console.warn(`[load-balancer] refreshing load balancer[uuid:${lbUuid}] without NICs ${nicUuids} failed: ${toApiError(e).message}`),
          );
        }
        await this.db
          .delete(loadBalancerListenerVmNicRefs)
          .where(and(eq(loadBalancerListenerVmNicRefs.listenerUuid, listenerUuid), inArray(loadBalancerListenerVmNicRefs.vmNicUuid, nicUuids)));
      });
    } catch (e) {
      console.warn(`[load-balancer] removing NICs ${nicUuids} from load balancer[uuid:${lbUuid}] failed: ${toApiError(e).message}`);
    }
  }

  /** A VM stopped (its backends Inactive) or runs again (Active): its load balancers re-applied (best effort). */
  async onVmState(vmUuid: string, newState: string): Promise<void> {
    const to = newState === 'Running' ? 'Active' : newState === 'Stopped' ? 'Inactive' : undefined;
    if (!to) return;
    // One read: the VM's NICs that are back ends of a load balancer (none while no load balancer has any).
    if (!(await this.app.anyRows(loadBalancerListenerVmNicRefs))) return;
    const refs = await this.db
      .select({
        lbUuid: loadBalancerListeners.loadBalancerUuid,
        listenerUuid: loadBalancerListenerVmNicRefs.listenerUuid,
        nicUuid: loadBalancerListenerVmNicRefs.vmNicUuid,
      })
      .from(loadBalancerListenerVmNicRefs)
      .innerJoin(vmNics, eq(vmNics.uuid, loadBalancerListenerVmNicRefs.vmNicUuid))
      .innerJoin(loadBalancerListeners, eq(loadBalancerListeners.uuid, loadBalancerListenerVmNicRefs.listenerUuid))
      .where(eq(vmNics.vmInstanceUuid, vmUuid));
    for (const lbUuid of new Set(refs.map((r) => r.lbUuid))) {
      try {
        await this.locked(lbUuid, async (lb) => {
          await this.db
            .update(loadBalancerListenerVmNicRefs)
            .set({ status: to, lastOpDate: new Date() })
            .where(
              inArray(
                loadBalancerListenerVmNicRefs.vmNicUuid,
                refs.filter((r) => r.lbUuid === lbUuid).map((r) => r.nicUuid),
              ),
            );
          const vr = await this.runningRouterOf(lb);
          if (vr) await this.command(vr, '/lb/refresh', { lbs: await this.lbTOs(lb) });
        });
      } catch (e) {
        console.warn(`[load-balancer] re-applying load balancer[uuid:${lbUuid}] after VM[uuid:${vmUuid}] became ${newState} failed: ${toApiError(e).message}`);
      }
    }
  }

  /** A router (re)connected: the VIPs and listeners of every load balancer applied on it. */
  async syncRouter(vr: VmRow): Promise<void> {
    const lbs = await this.db.select().from(loadBalancers).where(eq(loadBalancers.virtualRouterVmUuid, vr.uuid));
    for (const lb of lbs) {
      const vip = await this.app.use('vips').get(lb.vipUuid);
      if (!vip?.peerL3NetworkUuid) continue;
      const place = await placeOn(this.app, vr, vip, vip.peerL3NetworkUuid).catch(() => undefined);
      if (!place) continue;
      await this.command(vr, '/virtualrouter/createvip', { vips: [place.vipTO] });
      await this.command(vr, '/lb/refresh', { lbs: await this.lbTOs(lb) });
    }
  }

  /** The NICs with their VMs; SYS.1003 naming vmNicUuids for one that does not exist. */
  async nicsWithVms(uuids: string[]): Promise<Array<{ nic: NicRow; vm: VmRow }>> {
    const rows = await this.db
      .select({ nic: vmNics, vm: vmInstances })
      .from(vmNics)
      .innerJoin(vmInstances, eq(vmInstances.uuid, vmNics.vmInstanceUuid))
      .where(inArray(vmNics.uuid, uuids));
    for (const u of uuids) if (!rows.some((r) => r.nic.uuid === u)) throw notFound('VmNicVO', u, 'vmNicUuids');
    return rows.filter((r) => !GONE.includes(r.vm.state));
  }
}

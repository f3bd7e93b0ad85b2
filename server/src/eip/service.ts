// EIPs on the data plane (upstream EipManagerImpl + VirtualRouterEipBackend, 1.1): an attached EIP of a Running VM
// is applied on its guest network's virtual router — the VIP on the router's public NIC (/virtualrouter/createvip),
// then the mapping (/virtualrouter/createeip) — inside the API's job, undone when a later step fails. A Stopped VM's
// EIP is only recorded; it is applied when the VM starts (the VM network service extension below), withdrawn when
// its NIC goes or the VM is destroyed, and every EIP of a router is sent again when the router (re)connects.
import { and, eq, inArray, isNotNull, isNull } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import { runFlow } from '../core/flow.js';
import { notFound, opErr, toApiError } from '../core/errors.js';
import { eips, vmInstances, vmNics } from '../db/schema/index.js';
import { placeOn, vipOnExistingRouter, vipOnRouter, vipLockKey, type VipOnRouter, type VipRow } from '../vip/index.js';
import type { NicRow, VmNetworkServiceExtension, VmRow } from '../vm/index.js';
import type { EipRow } from './inventory.js';

export const EIP_SERVICE = 'Eip';

export class EipService implements VmNetworkServiceExtension {
  readonly name = 'Eip';

  constructor(private readonly app: DomainContext) {}

  async get(uuid: string): Promise<EipRow | undefined> {
    const [row] = await this.app.db.select().from(eips).where(eq(eips.uuid, uuid));
    return row;
  }

  async require(uuid: string, field = 'uuid'): Promise<EipRow> {
    const row = await this.get(uuid);
    if (!row) throw notFound('EipVO', uuid, field);
    return row;
  }

  /** A NIC with its VM (the vm domain's). */
  nicWithVm(nicUuid: string, field = 'vmNicUuid'): Promise<{ nic: NicRow; vm: VmRow }> {
    return this.app.use('vms').nicWithVm(nicUuid, field);
  }

  private eipTO(place: VipOnRouter, guestIp: string) {
    return {
      vipIp: place.vipTO.ip,
      guestIp,
      privateMac: place.guestNic.mac,
      publicMac: place.publicNic.mac,
      snatInboundTraffic: this.app.globalConfig.getBool('eip', 'snatInboundTraffic'),
    };
  }

  /** Applies the EIP on the router of the NIC's network (ready or created); returns the undo. */
  private async applyOnRouter(vip: VipRow, nic: NicRow): Promise<() => Promise<void>> {
    if (!nic.ip) throw opErr(`vm nic[uuid:${nic.uuid}] has no IP address; an EIP needs one`);
    const place = await vipOnRouter(this.app, vip, nic.l3NetworkUuid);
    const routers = this.app.use('virtualRouters');
    const eip = this.eipTO(place, nic.ip);
    await routers.command(place.vr, '/virtualrouter/createvip', { vips: [place.vipTO] });
    try {
      await routers.command(place.vr, '/virtualrouter/createeip', { eip });
    } catch (e) {
      await routers.command(place.vr, '/virtualrouter/removevip', { vips: [place.vipTO] }).catch(() => undefined);
      throw e;
    }
    return async () => {
      await routers.command(place.vr, '/virtualrouter/removeeip', { eip });
      await routers.command(place.vr, '/virtualrouter/removevip', { vips: [place.vipTO] });
    };
  }

  /** Withdraws the EIP from the router of the NIC's network, if one runs there; `strict` lets a failure through. */
  private async removeFromRouter(vip: VipRow, l3Uuid: string, guestIp: string, strict: boolean): Promise<void> {
    const place = await vipOnExistingRouter(this.app, vip, l3Uuid);
    if (!place) return;
    const routers = this.app.use('virtualRouters');
    try {
      await routers.command(place.vr, '/virtualrouter/removeeip', { eip: this.eipTO(place, guestIp) });
      await routers.command(place.vr, '/virtualrouter/removevip', { vips: [place.vipTO] });
    } catch (e) {
      if (strict) throw e;
      console.warn(`[eip] withdrawing vip[${vip.ip}] from virtual router[uuid:${place.vr.uuid}] failed: ${toApiError(e).message}`);
    }
  }

  /** AttachEip (and CreateEip with a NIC): take the VIP for the NIC's network, apply on the router, record. */
  async attach(eipUuid: string, nicUuid: string): Promise<void> {
    const first = await this.require(eipUuid, 'eipUuid');
    await this.app.locks.withLock(vipLockKey(first.vipUuid), async () => {
      const eip = await this.require(eipUuid, 'eipUuid');
      if (eip.vmNicUuid) throw opErr(`eip[uuid:${eip.uuid}] has attached to another vm nic[uuid:${eip.vmNicUuid}], can't attach again`);
      const { nic, vm } = await this.nicWithVm(nicUuid);
      const vips = this.app.use('vips');
      const before = await vips.require(eip.vipUuid, 'vipUuid');
      interface Data {
        vip?: VipRow;
        undo?: () => Promise<void>;
      }
      await runFlow<Data>(
        'attach-eip',
        [
          {
            name: 'take-vip',
            run: async (d) => void (d.vip = await vips.acquire(eip.vipUuid, EIP_SERVICE, { peerL3NetworkUuid: nic.l3NetworkUuid })),
            rollback: async () => (before.peerL3NetworkUuid ? undefined : vips.setPeer(eip.vipUuid, null)),
          },
          {
            // A Stopped VM's EIP is applied when it starts.
            name: 'apply-on-router',
            when: () => vm.state === 'Running',
            run: async (d) => void (d.undo = await this.applyOnRouter(d.vip!, nic)),
            rollback: async (d) => d.undo?.(),
          },
          {
            name: 'record',
            run: async () => {
              const [other] = await this.app.db.select({ uuid: eips.uuid }).from(eips).where(eq(eips.vmNicUuid, nic.uuid));
              if (other) throw opErr(`vm nic[uuid:${nic.uuid}] has attached to another eip[uuid:${other.uuid}]`);
              const done = await this.app.db
                .update(eips)
                .set({ vmNicUuid: nic.uuid, guestIp: nic.ip, lastOpDate: new Date() })
                .where(and(eq(eips.uuid, eip.uuid), isNull(eips.vmNicUuid)))
                .returning({ uuid: eips.uuid })
                .catch(() => {
                  // UNIQUE(vm_nic_uuid): another EIP took the NIC at the same moment.
                  throw opErr(`vm nic[uuid:${nic.uuid}] has attached to another eip`);
                });
              if (!done.length) throw opErr(`eip[uuid:${eip.uuid}] has attached to another vm nic, can't attach again`);
            },
          },
        ],
        {},
      );
    });
  }

  /** DetachEip: withdraw from the router (a refusal fails the detach), unbind, the VIP serves no guest network. */
  async detach(eipUuid: string, opts: { strict?: boolean } = {}): Promise<void> {
    const first = await this.require(eipUuid);
    await this.app.locks.withLock(vipLockKey(first.vipUuid), async () => {
      const eip = await this.require(eipUuid);
      if (!eip.vmNicUuid) throw opErr(`eip[uuid:${eip.uuid}] has not attached to any vm nic`);
      await this.unbind(eip, opts.strict ?? true);
    });
  }

  private async unbind(eip: EipRow, strict: boolean): Promise<void> {
    const vips = this.app.use('vips');
    const vip = await vips.get(eip.vipUuid);
    if (eip.vmNicUuid && vip) {
      const [row] = await this.app.db
        .select({ l3: vmNics.l3NetworkUuid, ip: vmNics.ip, state: vmInstances.state })
        .from(vmNics)
        .innerJoin(vmInstances, eq(vmInstances.uuid, vmNics.vmInstanceUuid))
        .where(eq(vmNics.uuid, eip.vmNicUuid));
      if (row && row.state === 'Running') await this.removeFromRouter(vip, row.l3, row.ip ?? eip.guestIp ?? '', strict);
    }
    await this.app.db.update(eips).set({ vmNicUuid: null, guestIp: null, lastOpDate: new Date() }).where(eq(eips.uuid, eip.uuid));
    if (vip) await vips.setPeer(vip.uuid, null);
  }

  /** Deletes EIPs (cascade node `eip`): detached first (Enforcing: whatever the router says), VIPs freed. */
  async delete(uuids: string[], strict: boolean): Promise<void> {
    const rows = await this.app.db.select().from(eips).where(inArray(eips.uuid, uuids));
    const vips = this.app.use('vips');
    for (const eip of rows) {
      await this.app.locks.withLock(vipLockKey(eip.vipUuid), async () => {
        const fresh = await this.get(eip.uuid);
        if (!fresh) return;
        if (fresh.vmNicUuid) await this.unbind(fresh, strict);
        await this.app.db.delete(eips).where(eq(eips.uuid, eip.uuid));
        await vips.release(eip.vipUuid, EIP_SERVICE);
      });
    }
  }

  // ------------------------------------------------------------------ VM NICs coming and going

  private async attachedTo(nics: NicRow[]) {
    if (nics.length === 0 || !(await this.app.anyRows(eips))) return [];
    return this.app.db
      .select()
      .from(eips)
      .where(
        inArray(
          eips.vmNicUuid,
          nics.map((n) => n.uuid),
        ),
      );
  }

  /** The VM starts (or a NIC is plugged): its NICs' EIPs on their routers, with the NICs' current addresses. */
  async apply(vm: VmRow, nics: NicRow[]): Promise<void> {
    if (vm.type !== 'UserVm') return;
    for (const eip of await this.attachedTo(nics)) {
      const nic = nics.find((n) => n.uuid === eip.vmNicUuid)!;
      const vip = await this.app.use('vips').get(eip.vipUuid);
      if (!vip || !nic.ip) continue;
      await this.applyOnRouter(vip, nic);
      if (eip.guestIp !== nic.ip) await this.app.db.update(eips).set({ guestIp: nic.ip }).where(eq(eips.uuid, eip.uuid));
    }
  }

  /** The NICs go (detach, destroy, a failed start): their EIPs leave the routers; the attachment stays recorded. */
  async release(vm: VmRow, nics: NicRow[]): Promise<void> {
    if (vm.type !== 'UserVm') return;
    for (const eip of await this.attachedTo(nics)) {
      const nic = nics.find((n) => n.uuid === eip.vmNicUuid)!;
      const vip = await this.app.use('vips').get(eip.vipUuid);
      if (vip) await this.removeFromRouter(vip, nic.l3NetworkUuid, nic.ip ?? eip.guestIp ?? '', false);
    }
  }

  /** A router (re)connected: every EIP of Running VMs on its guest networks, in one sync. */
  async syncRouter(vr: VmRow): Promise<void> {
    const routers = this.app.use('virtualRouters');
    // Only networks running the service: routers elsewhere are not asked anything.
    const l3s = [];
    for (const l3 of await routers.guestL3s(vr.uuid)) {
      if ((await this.app.use('networks').providersOf(l3)).some((r) => r.serviceType === EIP_SERVICE)) l3s.push(l3);
    }
    if (l3s.length === 0) return;
    const rows = await this.app.db
      .select({ eip: eips, nic: vmNics })
      .from(eips)
      .innerJoin(vmNics, eq(vmNics.uuid, eips.vmNicUuid))
      .innerJoin(vmInstances, eq(vmInstances.uuid, vmNics.vmInstanceUuid))
      .where(and(inArray(vmNics.l3NetworkUuid, l3s), eq(vmInstances.state, 'Running'), isNotNull(vmNics.ip)));
    const tos = [];
    const vipTOs = [];
    for (const { eip, nic } of rows) {
      const vip = await this.app.use('vips').get(eip.vipUuid);
      if (!vip) continue;
      const place = await placeOn(this.app, vr, vip, nic.l3NetworkUuid).catch(() => undefined);
      if (!place) continue;
      vipTOs.push(place.vipTO);
      tos.push(this.eipTO(place, nic.ip!));
    }
    if (vipTOs.length) await routers.command(vr, '/virtualrouter/createvip', { vips: vipTOs });
    await routers.command(vr, '/virtualrouter/synceip', { eips: tos });
  }
}

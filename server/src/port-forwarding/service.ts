// Port forwarding on the data plane (upstream PortForwardingManagerImpl + VirtualRouterPortForwardingBackend, 1.1):
// an attached rule of a Running VM is applied on its guest network's virtual router — the VIP on the router's
// public NIC (/virtualrouter/createvip), then the rule (/virtualrouter/createportforwarding) — inside the API's job,
// undone when a later step fails. Rules of Stopped VMs are only recorded and applied when the VM starts; they leave
// the router when their NIC goes or the VM is destroyed; a router that (re)connects gets all of its rules again.
// Several rules share a VIP: it is taken for PortForwarding by the first and freed with the last; it serves the guest
// network of its attached rules, and is withdrawn from the router when none of them is applied there any more.
import { and, eq, inArray, isNotNull, isNull, ne } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import { runFlow } from '../core/flow.js';
import { notFound, opErr, toApiError } from '../core/errors.js';
import { portForwardingRules, vmInstances, vmNics } from '../db/schema/index.js';
import { placeOn, vipOnExistingRouter, vipOnRouter, vipLockKey, type VipOnRouter, type VipRow } from '../vip/index.js';
import type { NicRow, VmNetworkServiceExtension, VmRow } from '../vm/index.js';
import type { RuleRow } from './inventory.js';

export const PF_SERVICE = 'PortForwarding';

export class PortForwardingService implements VmNetworkServiceExtension {
  readonly name = 'PortForwarding';

  constructor(private readonly app: DomainContext) {}

  async get(uuid: string): Promise<RuleRow | undefined> {
    const [row] = await this.app.db.select().from(portForwardingRules).where(eq(portForwardingRules.uuid, uuid));
    return row;
  }

  async require(uuid: string, field = 'uuid'): Promise<RuleRow> {
    const row = await this.get(uuid);
    if (!row) throw notFound('PortForwardingRuleVO', uuid, field);
    return row;
  }

  /** A NIC with its VM (the vm domain's). */
  nicWithVm(nicUuid: string, field = 'vmNicUuid'): Promise<{ nic: NicRow; vm: VmRow }> {
    return this.app.use('vms').nicWithVm(nicUuid, field);
  }

  private ruleTO(place: VipOnRouter, rule: RuleRow, nic: { ip: string; mac: string }) {
    return {
      vipIp: place.vipTO.ip,
      vipPortStart: rule.vipPortStart,
      vipPortEnd: rule.vipPortEnd,
      privatePortStart: rule.privatePortStart,
      privatePortEnd: rule.privatePortEnd,
      protocolType: rule.protocolType as 'TCP' | 'UDP',
      privateIp: nic.ip,
      privateMac: nic.mac,
      ...(rule.allowedCidr ? { allowedCidr: rule.allowedCidr } : {}),
      snatInboundTraffic: this.app.globalConfig.getBool('portForwarding', 'snatInboundTraffic'),
    };
  }

  /** Rules of the VIP other than `except` that are applied now (attached to a Running VM's NIC). */
  private async otherAppliedOnVip(vipUuid: string, except: string): Promise<number> {
    const rows = await this.app.db
      .select({ uuid: portForwardingRules.uuid })
      .from(portForwardingRules)
      .innerJoin(vmNics, eq(vmNics.uuid, portForwardingRules.vmNicUuid))
      .innerJoin(vmInstances, eq(vmInstances.uuid, vmNics.vmInstanceUuid))
      .where(and(eq(portForwardingRules.vipUuid, vipUuid), ne(portForwardingRules.uuid, except), eq(vmInstances.state, 'Running')));
    return rows.length;
  }

  /** Applies the rule on the router of the NIC's network (ready or created); returns the undo. */
  private async applyOnRouter(vip: VipRow, rule: RuleRow, nic: NicRow): Promise<() => Promise<void>> {
    if (!nic.ip) throw opErr(`vm nic[uuid:${nic.uuid}] has no IP address; port forwarding needs one`);
    const place = await vipOnRouter(this.app, vip, nic.l3NetworkUuid);
    const routers = this.app.use('virtualRouters');
    const to = this.ruleTO(place, rule, { ip: nic.ip, mac: nic.mac });
    const vipWasThere = (await this.otherAppliedOnVip(vip.uuid, rule.uuid)) > 0;
    await routers.command(place.vr, '/virtualrouter/createvip', { vips: [place.vipTO] });
    const dropVip = async () => {
      if (!vipWasThere) await routers.command(place.vr, '/virtualrouter/removevip', { vips: [place.vipTO] });
    };
    try {
      await routers.command(place.vr, '/virtualrouter/createportforwarding', { rules: [to] });
    } catch (e) {
      await dropVip().catch(() => undefined);
      throw e;
    }
    return async () => {
      await routers.command(place.vr, '/virtualrouter/revokeportforwarding', { rules: [to] });
      await dropVip();
    };
  }

  /** Revokes the rule on the router of the NIC's network, if one runs there; `strict` lets a failure through. */
  private async removeFromRouter(vip: VipRow, rule: RuleRow, nic: { l3: string; ip: string; mac: string }, strict: boolean): Promise<void> {
    const place = await vipOnExistingRouter(this.app, vip, nic.l3);
    if (!place) return;
    const routers = this.app.use('virtualRouters');
    try {
      await routers.command(place.vr, '/virtualrouter/revokeportforwarding', { rules: [this.ruleTO(place, rule, nic)] });
      if ((await this.otherAppliedOnVip(vip.uuid, rule.uuid)) === 0) {
        await routers.command(place.vr, '/virtualrouter/removevip', { vips: [place.vipTO] });
      }
    } catch (e) {
      if (strict) throw e;
      console.warn(`[port-forwarding] revoking a rule of vip[${vip.ip}] on virtual router[uuid:${place.vr.uuid}] failed: ${toApiError(e).message}`);
    }
  }

  /** AttachPortForwardingRule (and Create with a NIC): the VIP serves the NIC's network, apply, record. */
  async attach(ruleUuid: string, nicUuid: string): Promise<void> {
    const first = await this.require(ruleUuid, 'ruleUuid');
    await this.app.locks.withLock(vipLockKey(first.vipUuid), async () => {
      const rule = await this.require(ruleUuid, 'ruleUuid');
      if (rule.vmNicUuid) throw opErr(`port forwarding rule[uuid:${rule.uuid}] has been attached to vm nic[uuid:${rule.vmNicUuid}], can't attach again`);
      const { nic, vm } = await this.nicWithVm(nicUuid);
      const vips = this.app.use('vips');
      const before = await vips.require(rule.vipUuid, 'vipUuid');
      interface Data {
        vip?: VipRow;
        undo?: () => Promise<void>;
      }
      await runFlow<Data>(
        'attach-port-forwarding-rule',
        [
          {
            name: 'take-vip',
            run: async (d) => void (d.vip = await vips.acquire(rule.vipUuid, PF_SERVICE, { peerL3NetworkUuid: nic.l3NetworkUuid })),
            rollback: async () => (before.peerL3NetworkUuid ? undefined : vips.setPeer(rule.vipUuid, null)),
          },
          {
            name: 'apply-on-router',
            when: () => vm.state === 'Running',
            run: async (d) => void (d.undo = await this.applyOnRouter(d.vip!, rule, nic)),
            rollback: async (d) => d.undo?.(),
          },
          {
            name: 'record',
            run: async () => {
              const done = await this.app.db
                .update(portForwardingRules)
                .set({ vmNicUuid: nic.uuid, guestIp: nic.ip, lastOpDate: new Date() })
                .where(and(eq(portForwardingRules.uuid, rule.uuid), isNull(portForwardingRules.vmNicUuid)))
                .returning({ uuid: portForwardingRules.uuid });
              if (!done.length) throw opErr(`port forwarding rule[uuid:${rule.uuid}] has been attached to a vm nic, can't attach again`);
            },
          },
        ],
        {},
      );
    });
  }

  async detach(ruleUuid: string): Promise<void> {
    const first = await this.require(ruleUuid);
    await this.app.locks.withLock(vipLockKey(first.vipUuid), async () => {
      const rule = await this.require(ruleUuid);
      if (!rule.vmNicUuid) throw opErr(`port forwarding rule rule[uuid:${rule.uuid}] has not been attached to any vm nic, can't detach`);
      await this.unbind(rule, true);
    });
  }

  private async unbind(rule: RuleRow, strict: boolean): Promise<void> {
    const vips = this.app.use('vips');
    const vip = await vips.get(rule.vipUuid);
    if (rule.vmNicUuid && vip) {
      const [row] = await this.app.db
        .select({ l3: vmNics.l3NetworkUuid, ip: vmNics.ip, mac: vmNics.mac, state: vmInstances.state })
        .from(vmNics)
        .innerJoin(vmInstances, eq(vmInstances.uuid, vmNics.vmInstanceUuid))
        .where(eq(vmNics.uuid, rule.vmNicUuid));
      if (row && row.state === 'Running') await this.removeFromRouter(vip, rule, { l3: row.l3, ip: row.ip ?? rule.guestIp ?? '', mac: row.mac }, strict);
    }
    await this.app.db
      .update(portForwardingRules)
      .set({ vmNicUuid: null, guestIp: null, lastOpDate: new Date() })
      .where(eq(portForwardingRules.uuid, rule.uuid));
    // The VIP serves no guest network once none of its rules is attached.
    const [attached] = await this.app.db
      .select({ uuid: portForwardingRules.uuid })
      .from(portForwardingRules)
      .where(and(eq(portForwardingRules.vipUuid, rule.vipUuid), isNotNull(portForwardingRules.vmNicUuid)))
      .limit(1);
    if (vip && !attached) await vips.setPeer(vip.uuid, null);
  }

  /** Deletes rules (cascade node `portForwardingRule`): detached first, the VIP freed with its last rule. */
  async delete(uuids: string[], strict: boolean): Promise<void> {
    const rows = await this.app.db.select().from(portForwardingRules).where(inArray(portForwardingRules.uuid, uuids));
    const vips = this.app.use('vips');
    for (const rule of rows) {
      await this.app.locks.withLock(vipLockKey(rule.vipUuid), async () => {
        const fresh = await this.get(rule.uuid);
        if (!fresh) return;
        if (fresh.vmNicUuid) await this.unbind(fresh, strict);
        await this.app.db.delete(portForwardingRules).where(eq(portForwardingRules.uuid, rule.uuid));
        const [left] = await this.app.db
          .select({ uuid: portForwardingRules.uuid })
          .from(portForwardingRules)
          .where(eq(portForwardingRules.vipUuid, rule.vipUuid))
          .limit(1);
        if (!left) await vips.release(rule.vipUuid, PF_SERVICE);
      });
    }
  }

  // ------------------------------------------------------------------ VM NICs coming and going

  private async attachedTo(nics: NicRow[]) {
    if (nics.length === 0 || !(await this.app.anyRows(portForwardingRules))) return [];
    return this.app.db
      .select()
      .from(portForwardingRules)
      .where(
        inArray(
          portForwardingRules.vmNicUuid,
          nics.map((n) => n.uuid),
        ),
      );
  }

  async apply(vm: VmRow, nics: NicRow[]): Promise<void> {
    if (vm.type !== 'UserVm') return;
    for (const rule of await this.attachedTo(nics)) {
      const nic = nics.find((n) => n.uuid === rule.vmNicUuid)!;
      const vip = await this.app.use('vips').get(rule.vipUuid);
      if (!vip || !nic.ip) continue;
      await this.applyOnRouter(vip, rule, nic);
      if (rule.guestIp !== nic.ip) await this.app.db.update(portForwardingRules).set({ guestIp: nic.ip }).where(eq(portForwardingRules.uuid, rule.uuid));
    }
  }

  async release(vm: VmRow, nics: NicRow[]): Promise<void> {
    if (vm.type !== 'UserVm') return;
    for (const rule of await this.attachedTo(nics)) {
      const nic = nics.find((n) => n.uuid === rule.vmNicUuid)!;
      const vip = await this.app.use('vips').get(rule.vipUuid);
      if (vip) await this.removeFromRouter(vip, rule, { l3: nic.l3NetworkUuid, ip: nic.ip ?? rule.guestIp ?? '', mac: nic.mac }, false);
    }
  }

  /** A router (re)connected: every rule of Running VMs on its guest networks, in one sync. */
  async syncRouter(vr: VmRow): Promise<void> {
    const routers = this.app.use('virtualRouters');
    const l3s = [];
    for (const l3 of await routers.guestL3s(vr.uuid)) {
      if ((await this.app.use('networks').providersOf(l3)).some((r) => r.serviceType === PF_SERVICE)) l3s.push(l3);
    }
    if (l3s.length === 0) return;
    const rows = await this.app.db
      .select({ rule: portForwardingRules, nic: vmNics })
      .from(portForwardingRules)
      .innerJoin(vmNics, eq(vmNics.uuid, portForwardingRules.vmNicUuid))
      .innerJoin(vmInstances, eq(vmInstances.uuid, vmNics.vmInstanceUuid))
      .where(and(inArray(vmNics.l3NetworkUuid, l3s), eq(vmInstances.state, 'Running'), isNotNull(vmNics.ip)));
    const tos = [];
    const vipTOs = new Map<string, VipOnRouter['vipTO']>();
    for (const { rule, nic } of rows) {
      const vip = await this.app.use('vips').get(rule.vipUuid);
      if (!vip) continue;
      const place = await placeOn(this.app, vr, vip, nic.l3NetworkUuid).catch(() => undefined);
      if (!place) continue;
      vipTOs.set(place.vipTO.ip, place.vipTO);
      tos.push(this.ruleTO(place, rule, { ip: nic.ip!, mac: nic.mac }));
    }
    if (vipTOs.size) await routers.command(vr, '/virtualrouter/createvip', { vips: [...vipTOs.values()] });
    await routers.command(vr, '/virtualrouter/syncportforwarding', { rules: tos });
  }
}

// Security group rules on the data plane (upstream SecurityGroupManagerImpl's RuleCalculator + applyRules): the rule
// set of a VM NIC is the union of the rules of its Enabled groups, plus the addresses of those groups' other members
// on the same L3 network; a NIC in no Enabled group gets its chain deleted. Rule sets go to the host of the NIC's VM
// while it is Running (`/securitygroup/applyrules`). As upstream, a host that cannot take them does not fail the API:
// it is recorded and refreshed whole (`/securitygroup/refreshrulesonhost`) by a retry timer and when it reconnects.
import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import type { DomainContext } from '../core/domain.js';
import type { Tx } from '../db/index.js';
import { securityGroupFailureHosts, securityGroupRules, securityGroups, vmInstances, vmNics, vmNicSecurityGroupRefs } from '../db/schema/index.js';
import { describeError } from '../core/errors.js';
import { vmLockKey } from '../vm/index.js';
import type { components } from '@zstack-ts/openapi/agent-protocol';

type RuleSetTO = components['schemas']['SecurityGroupRuleSetTO'];
type RuleTO = components['schemas']['SecurityGroupRuleEntryTO'];

/** VM states whose NICs carry rules (a reconnecting host's VMs are Unknown until synced). */
const RULED_STATES = ['Running', 'Unknown'];

export const APPLY_PATH = '/securitygroup/applyrules' as const;
export const REFRESH_PATH = '/securitygroup/refreshrulesonhost' as const;

/** Consecutive addresses folded into `a-b` ranges, as upstream's NetworkUtils.findConsecutiveIpRange. */
export function ipRanges(ips: string[]): string[] {
  const toLong = (ip: string) => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
  const sorted = [...new Set(ips)].sort((a, b) => toLong(a) - toLong(b));
  const out: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && toLong(sorted[j + 1]) === toLong(sorted[j]) + 1) j++;
    out.push(i === j ? sorted[i] : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return out;
}

export class SecurityGroupService {
  constructor(private readonly app: DomainContext<'hosts', 'securityGroups'>) {}

  /** The NICs that are members of these groups. */
  async memberNics(securityGroupUuids: string[], tx: Tx = this.app.db): Promise<string[]> {
    if (securityGroupUuids.length === 0) return [];
    const rows = await tx
      .selectDistinct({ uuid: vmNicSecurityGroupRefs.vmNicUuid })
      .from(vmNicSecurityGroupRefs)
      .where(inArray(vmNicSecurityGroupRefs.securityGroupUuid, securityGroupUuids));
    return rows.map((r) => r.uuid);
  }

  /**
   * The rule set of each of these NICs whose VM is on a host in a ruled state, by host uuid. `onlyMembers` leaves
   * out NICs in no Enabled group instead of deleting their chains (a whole-host refresh drops them anyway).
   */
  async ruleSetsByHost(nicUuids: string[], opts: { onlyMembers?: boolean } = {}): Promise<Map<string, RuleSetTO[]>> {
    const out = new Map<string, RuleSetTO[]>();
    if (nicUuids.length === 0) return out;
    const db = this.app.db;
    const nics = await db
      .select({
        uuid: vmNics.uuid,
        l3NetworkUuid: vmNics.l3NetworkUuid,
        internalName: vmNics.internalName,
        mac: vmNics.mac,
        ip: vmNics.ip,
        hostUuid: vmInstances.hostUuid,
      })
      .from(vmNics)
      .innerJoin(vmInstances, eq(vmInstances.uuid, vmNics.vmInstanceUuid))
      .where(and(inArray(vmNics.uuid, nicUuids), inArray(vmInstances.state, RULED_STATES)));
    if (nics.length === 0) return out;
    // Memberships in Enabled groups only: a Disabled group's rules are not applied.
    const refs = await db
      .select({ vmNicUuid: vmNicSecurityGroupRefs.vmNicUuid, sg: vmNicSecurityGroupRefs.securityGroupUuid })
      .from(vmNicSecurityGroupRefs)
      .innerJoin(securityGroups, eq(securityGroups.uuid, vmNicSecurityGroupRefs.securityGroupUuid))
      .where(
        and(
          inArray(
            vmNicSecurityGroupRefs.vmNicUuid,
            nics.map((n) => n.uuid),
          ),
          eq(securityGroups.state, 'Enabled'),
        ),
      );
    const groups = [...new Set(refs.map((r) => r.sg))];
    const [rules, members] = groups.length
      ? await Promise.all([
          db
            .select()
            .from(securityGroupRules)
            .where(inArray(securityGroupRules.securityGroupUuid, groups))
            .orderBy(asc(securityGroupRules.createDate), asc(securityGroupRules.uuid)),
          db
            .select({ sg: vmNicSecurityGroupRefs.securityGroupUuid, l3: vmNics.l3NetworkUuid, ip: vmNics.ip })
            .from(vmNicSecurityGroupRefs)
            .innerJoin(vmNics, eq(vmNics.uuid, vmNicSecurityGroupRefs.vmNicUuid))
            .where(inArray(vmNicSecurityGroupRefs.securityGroupUuid, groups)),
        ])
      : [[], []];
    const gc = this.app.globalConfig;
    for (const nic of nics) {
      if (!nic.hostUuid) continue;
      const mine = refs.filter((r) => r.vmNicUuid === nic.uuid).map((r) => r.sg);
      if (mine.length === 0 && opts.onlyMembers) continue;
      const entries: RuleTO[] = [];
      for (const sg of mine) {
        const internal = ipRanges(members.filter((m) => m.sg === sg && m.l3 === nic.l3NetworkUuid && m.ip).map((m) => m.ip!));
        for (const r of rules.filter((x) => x.securityGroupUuid === sg)) {
          entries.push({
            type: r.type as RuleTO['type'],
            protocol: r.protocol as RuleTO['protocol'],
            startPort: r.startPort,
            endPort: r.endPort,
            allowedCidr: r.allowedCidr,
            allowedInternalIpRange: internal,
          });
        }
      }
      const to: RuleSetTO = {
        vmNicUuid: nic.uuid,
        actionCode: mine.length ? 'applyRule' : 'deleteChain',
        ingressDefaultPolicy: gc.get('securityGroup', 'ingress.defaultPolicy') as 'accept' | 'deny',
        egressDefaultPolicy: gc.get('securityGroup', 'egress.defaultPolicy') as 'accept' | 'deny',
        rules: entries,
        vmNicMac: nic.mac,
        ...(nic.internalName ? { vmNicInternalName: nic.internalName } : {}),
        ...(nic.ip ? { vmNicIp: nic.ip } : {}),
      };
      out.set(nic.hostUuid, [...(out.get(nic.hostUuid) ?? []), to]);
    }
    return out;
  }

  /**
   * Applies the current rule sets of these NICs on their hosts. Serialized (compute + send), so a later change is
   * never overtaken by an earlier, staler rule set. Hosts that fail are left for the retry (see the file comment).
   */
  async apply(nicUuids: string[]): Promise<void> {
    if (nicUuids.length === 0) return;
    await this.app.locks.withLock('security-group-apply', async () => {
      const byHost = await this.ruleSetsByHost(nicUuids);
      await Promise.all([...byHost].map(([hostUuid, ruleTOs]) => this.send(hostUuid, APPLY_PATH, ruleTOs)));
    });
  }

  /** Replaces every rule set on the host with what it should hold now; clears its failure record on success. */
  async refreshHost(hostUuid: string): Promise<boolean> {
    return this.app.locks.withLock('security-group-apply', async () => {
      const nics = await this.app.db
        .selectDistinct({ uuid: vmNicSecurityGroupRefs.vmNicUuid })
        .from(vmNicSecurityGroupRefs)
        .innerJoin(vmInstances, eq(vmInstances.uuid, vmNicSecurityGroupRefs.vmInstanceUuid))
        .where(eq(vmInstances.hostUuid, hostUuid));
      const ruleTOs =
        (
          await this.ruleSetsByHost(
            nics.map((n) => n.uuid),
            { onlyMembers: true },
          )
        ).get(hostUuid) ?? [];
      const ok = await this.send(hostUuid, REFRESH_PATH, ruleTOs);
      if (ok) await this.app.db.delete(securityGroupFailureHosts).where(eq(securityGroupFailureHosts.hostUuid, hostUuid));
      return ok;
    });
  }

  /** A host that (re)connects gets a refresh when it holds member NICs or missed an application. */
  async onHostConnected(hostUuid: string): Promise<void> {
    const [failed] = await this.app.db.select().from(securityGroupFailureHosts).where(eq(securityGroupFailureHosts.hostUuid, hostUuid));
    const [member] = failed
      ? [true]
      : await this.app.db
          .select({ one: sql<number>`1` })
          .from(vmNicSecurityGroupRefs)
          .innerJoin(vmInstances, eq(vmInstances.uuid, vmNicSecurityGroupRefs.vmInstanceUuid))
          .where(eq(vmInstances.hostUuid, hostUuid))
          .limit(1);
    if (failed || member) await this.refreshHost(hostUuid);
  }

  /** The retry timer: refreshes up to `securityGroup/host.failureResolvePerTime` recorded hosts that are Connected. */
  async retryFailedHosts(): Promise<void> {
    const limit = this.app.globalConfig.getNumber('securityGroup', 'host.failureResolvePerTime');
    const failed = await this.app.db.select().from(securityGroupFailureHosts).orderBy(asc(securityGroupFailureHosts.createDate)).limit(limit);
    for (const f of failed) {
      const host = await this.app.use('hosts').get(f.hostUuid);
      if (host?.status === 'Connected') await this.refreshHost(f.hostUuid);
    }
  }

  /**
   * After a VM started, stopped or moved: its member NICs' rules on its current host, and their chains deleted on
   * the host it left (`lastHostUuid`: the host it stopped on, or the migration's source).
   */
  async onVmState(vmUuid: string): Promise<void> {
    // Most VMs are in no security group: no lock, and no statement while no NIC is in any. (A NIC joining a group
    // meanwhile applies its rules itself.)
    if (!(await this.app.anyRows(vmNicSecurityGroupRefs))) return;
    const [member] = await this.app.db
      .select({ uuid: vmNicSecurityGroupRefs.vmNicUuid })
      .from(vmNicSecurityGroupRefs)
      .where(eq(vmNicSecurityGroupRefs.vmInstanceUuid, vmUuid))
      .limit(1);
    if (!member) return;
    // The state change is emitted inside the VM operation's transaction: its lock is free once that committed.
    await this.app.locks.withLock(vmLockKey(vmUuid), () => this.followVm(vmUuid));
  }

  private async followVm(vmUuid: string): Promise<void> {
    const db = this.app.db;
    const nics = await db
      .select({ uuid: vmNics.uuid, mac: vmNics.mac, internalName: vmNics.internalName })
      .from(vmNicSecurityGroupRefs)
      .innerJoin(vmNics, eq(vmNics.uuid, vmNicSecurityGroupRefs.vmNicUuid))
      .where(eq(vmNicSecurityGroupRefs.vmInstanceUuid, vmUuid));
    if (nics.length === 0) return;
    const unique = [...new Map(nics.map((n) => [n.uuid, n])).values()];
    await this.apply(unique.map((n) => n.uuid));
    const [vm] = await db
      .select({ hostUuid: vmInstances.hostUuid, lastHostUuid: vmInstances.lastHostUuid })
      .from(vmInstances)
      .where(eq(vmInstances.uuid, vmUuid));
    if (!vm?.lastHostUuid || vm.lastHostUuid === vm.hostUuid) return;
    const left = vm.lastHostUuid;
    const deleteChains: RuleSetTO[] = unique.map((n) => ({
      vmNicUuid: n.uuid,
      actionCode: 'deleteChain',
      rules: [],
      vmNicMac: n.mac,
      ...(n.internalName ? { vmNicInternalName: n.internalName } : {}),
    }));
    await this.app.locks.withLock('security-group-apply', () => this.send(left, APPLY_PATH, deleteChains));
  }

  private async send(hostUuid: string, path: typeof APPLY_PATH | typeof REFRESH_PATH, ruleTOs: RuleSetTO[]): Promise<boolean> {
    try {
      await this.app.use('hosts').call(hostUuid, path, { ruleTOs });
      return true;
    } catch (e) {
      console.warn(`[security-group] rules not applied on host[uuid:${hostUuid}], retried later: ${describeError(e)}`);
      await this.app.db
        .insert(securityGroupFailureHosts)
        .values({ hostUuid })
        .onConflictDoNothing()
        .catch(() => undefined);
      return false;
    }
  }
}

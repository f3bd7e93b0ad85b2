// The security group rule sets a kvm host holds, one per VM NIC (upstream's per-NIC iptables chains). The simulator
// keeps one table per simulated host; the libvirt backend keeps one for its host and, as root with iptables, makes
// the host's iptables chains match it after every change (security-group-iptables.ts).
import type { Schemas } from '../lib/protocol.js';

export type RuleSetTO = Schemas['SecurityGroupRuleSetTO'];

export class SecurityGroupRuleTable {
  private readonly byNic = new Map<string, RuleSetTO>();

  /** /securitygroup/applyrules: each rule set replaces its NIC's, `deleteChain` removes it; other NICs keep theirs. */
  apply(ruleTOs: RuleSetTO[]): void {
    for (const to of ruleTOs) {
      if (to.actionCode === 'deleteChain') this.byNic.delete(to.vmNicUuid);
      else this.byNic.set(to.vmNicUuid, structuredClone(to));
    }
  }

  /** /securitygroup/refreshrulesonhost: the given rule sets become the host's whole table. */
  refresh(ruleTOs: RuleSetTO[]): void {
    this.byNic.clear();
    this.apply(ruleTOs);
  }

  /** The NIC's tap device is gone (VM destroyed, NIC detached): so is its chain. */
  forget(nicUuids: Iterable<string>): void {
    for (const uuid of nicUuids) this.byNic.delete(uuid);
  }

  list(): RuleSetTO[] {
    return [...this.byNic.values()].sort((a, b) => a.vmNicUuid.localeCompare(b.vmNicUuid));
  }
}

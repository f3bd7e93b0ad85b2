// Security group rules enforced with iptables on a real kvm host (upstream kvmagent's securitygroup_plugin, same
// layout, our own names): a parent chain `zs-sg` hooked into FORWARD jumps, per VM NIC, by the NIC's tap device
// (`-m physdev --physdev-out/--physdev-in <tap> --physdev-is-bridged`) to the NIC's `zs-<tap>-in` (traffic to the VM)
// and `zs-<tap>-out` (traffic from it). The whole set of our chains is rendered from the host's rule table as ONE
// `iptables-restore --noflush` script: declaring a chain flushes it, so re-applying gives the same rules, and chains
// of NICs no longer in the table are flushed and deleted in the same transaction. Other chains are never touched.
import { spawn } from 'node:child_process';
import { AgentError } from '../lib/errors.js';
import { run } from '../lib/exec.js';
import type { RuleSetTO } from './security-group-rules.js';

export const PARENT_CHAIN = 'zs-sg';
const CHAIN_PREFIX = 'zs-';
/** iptables' limit on chain names (XT_EXTENSION_MAXNAMELEN - 1). */
export const MAX_CHAIN_NAME = 28;

/** A Linux interface name (IFNAMSIZ - 1 = 15 characters) made only of characters that need no quoting. */
const DEVICE = /^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,14}$/;
const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4 = new RegExp(`^${OCTET}(\\.${OCTET}){3}$`);

function isIpv4(s: string): boolean {
  return IPV4.test(s);
}

function checkCidr(cidr: string): string {
  const [addr, prefix, ...rest] = cidr.split('/');
  const prefixOk = prefix === undefined || (/^\d{1,2}$/.test(prefix) && Number(prefix) <= 32);
  if (rest.length > 0 || !isIpv4(addr) || !prefixOk) throw new AgentError(`invalid allowedCidr ${JSON.stringify(cidr)}`);
  return cidr;
}

/** `a.b.c.d` or `a.b.c.d-a.b.c.e` → the iptables match for it as source (`-s`) or destination (`-d`). */
function addressMatch(range: string, dir: 'src' | 'dst'): string {
  const parts = range.split('-');
  if (parts.length > 2 || !parts.every(isIpv4)) throw new AgentError(`invalid allowedInternalIpRange entry ${JSON.stringify(range)}`);
  if (parts.length === 1) return `${dir === 'src' ? '-s' : '-d'} ${parts[0]}/32`;
  return `-m iprange --${dir}-range ${parts[0]}-${parts[1]}`;
}

function checkPort(port: number, what: string, max: number): number {
  if (!Number.isInteger(port) || port < -1 || port > max) throw new AgentError(`invalid ${what} ${JSON.stringify(port)}`);
  return port;
}

/** The chains of one NIC's tap device. */
export function nicChains(device: string): { ingress: string; egress: string } {
  if (!DEVICE.test(device)) throw new AgentError(`invalid tap device name ${JSON.stringify(device)}`);
  return { ingress: `${CHAIN_PREFIX}${device}-in`, egress: `${CHAIN_PREFIX}${device}-out` };
}

/** True for the NIC chains this module creates (the parent excluded). */
export function isNicChain(name: string): boolean {
  return name.startsWith(CHAIN_PREFIX) && name !== PARENT_CHAIN && /-(in|out)$/.test(name);
}

/** One rule entry → the match part of its `-A` line (protocol, ports or ICMP type/code, peer address). */
function ruleMatch(rule: RuleSetTO['rules'][number], peer: 'src' | 'dst'): string {
  const cidr = checkCidr(rule.allowedCidr);
  const peerMatch = cidr === '0.0.0.0/0' || cidr === '0.0.0.0' ? '' : ` ${peer === 'src' ? '-s' : '-d'} ${cidr}`;
  const protocol = String(rule.protocol).toUpperCase();
  if (protocol === 'TCP' || protocol === 'UDP') {
    const start = checkPort(rule.startPort, 'startPort', 65535);
    const end = checkPort(rule.endPort, 'endPort', 65535);
    const ports = start === -1 ? '' : ` --dport ${end === -1 || end === start ? start : `${Math.min(start, end)}:${Math.max(start, end)}`}`;
    const p = protocol.toLowerCase();
    return `-p ${p} -m ${p}${ports}${peerMatch}`;
  }
  if (protocol === 'ICMP') {
    const type = checkPort(rule.startPort, 'ICMP type', 255);
    const code = checkPort(rule.endPort, 'ICMP code', 255);
    const icmp = type === -1 ? '' : ` --icmp-type ${code === -1 ? type : `${type}/${code}`}`;
    return `-p icmp -m icmp${icmp}${peerMatch}`;
  }
  if (protocol === 'ALL') return `-p all${peerMatch}`;
  throw new AgentError(`invalid protocol ${JSON.stringify(rule.protocol)}`);
}

export interface RenderInput {
  /** The host's whole table: every NIC's current rule set (`deleteChain` entries are already gone). */
  ruleSets: RuleSetTO[];
  /** NIC chains of ours that exist now (from `iptables -S`); those not rendered again are deleted. */
  existingChains?: string[];
  /** FORWARD already jumps to the parent chain (`iptables -C FORWARD -j zs-sg` succeeded). */
  hooked?: boolean;
}

/**
 * The `iptables-restore --noflush` script that makes our chains exactly the table's: pure, and every value checked
 * against a strict pattern first (a rule set with a bad value throws, nothing is half-rendered). Rule sets without a
 * tap device name cannot be attached to a NIC and are left out; `skipped` names them.
 */
export function renderSecurityGroupScript(input: RenderInput): { script: string; chains: string[]; skipped: string[] } {
  const skipped: string[] = [];
  const parentRules: string[] = [];
  const nicRules: string[] = [];
  const chains: string[] = [];
  const sets = [...input.ruleSets].sort((a, b) => (a.vmNicInternalName ?? '').localeCompare(b.vmNicInternalName ?? ''));
  for (const set of sets) {
    if (!set.vmNicInternalName) {
      skipped.push(set.vmNicUuid);
      continue;
    }
    const dev = set.vmNicInternalName;
    const { ingress, egress } = nicChains(dev);
    chains.push(ingress, egress);
    parentRules.push(`-A ${PARENT_CHAIN} -m physdev --physdev-out ${dev} --physdev-is-bridged -j ${ingress}`);
    parentRules.push(`-A ${PARENT_CHAIN} -m physdev --physdev-in ${dev} --physdev-is-bridged -j ${egress}`);
    for (const [chain, type, peer, dhcp] of [
      [ingress, 'Ingress', 'src', '-p udp -m udp --sport 67 --dport 68'],
      [egress, 'Egress', 'dst', '-p udp -m udp --sport 68 --dport 67'],
    ] as const) {
      // Replies to what was allowed, and DHCP (the VM must get its address whatever its groups say).
      nicRules.push(`-A ${chain} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`, `-A ${chain} ${dhcp} -j ACCEPT`);
      const internal = new Set<string>();
      for (const rule of set.rules.filter((r) => r.type === type)) {
        nicRules.push(`-A ${chain} ${ruleMatch(rule, peer)} -j ACCEPT`);
        for (const range of rule.allowedInternalIpRange ?? []) internal.add(range);
      }
      for (const range of [...internal].sort()) nicRules.push(`-A ${chain} ${addressMatch(range, peer)} -j ACCEPT`);
      // Upstream's defaults when the server names none: ingress denied, egress allowed.
      const policy = type === 'Ingress' ? (set.ingressDefaultPolicy ?? 'deny') : (set.egressDefaultPolicy ?? 'accept');
      nicRules.push(`-A ${chain} -j ${policy === 'accept' ? 'ACCEPT' : 'DROP'}`);
    }
  }
  const stale = [...new Set(input.existingChains ?? [])].filter((c) => isNicChain(c) && !chains.includes(c)).sort();
  for (const c of stale) if (c.length > MAX_CHAIN_NAME || !/^[A-Za-z0-9_.-]+$/.test(c)) throw new AgentError(`invalid chain ${c}`);
  const lines = [
    '*filter',
    // Declaring a chain (`:name - [0:0]`) creates it or flushes it: the script always starts from empty chains.
    ...[PARENT_CHAIN, ...chains, ...stale].map((c) => `:${c} - [0:0]`),
    ...(input.hooked ? [] : [`-I FORWARD 1 -j ${PARENT_CHAIN}`]),
    ...parentRules,
    ...nicRules,
    ...stale.map((c) => `-X ${c}`),
    'COMMIT',
    '',
  ];
  return { script: lines.join('\n'), chains, skipped };
}

/** Throws AgentError naming the first bad value, before the table takes a rule set that could never be rendered. */
export function checkRuleSets(ruleTOs: RuleSetTO[]): void {
  renderSecurityGroupScript({ ruleSets: ruleTOs.filter((to) => to.actionCode !== 'deleteChain') });
}

/** Lists our NIC chains in `iptables -S` output. */
export function parseOurChains(iptablesS: string): string[] {
  return iptablesS
    .split('\n')
    .map((l) => /^-N (\S+)$/.exec(l.trim())?.[1])
    .filter((c): c is string => c !== undefined && isNicChain(c));
}

export interface FirewallOptions {
  /** Prepended to every iptables command, e.g. `['ip', 'netns', 'exec', ns]` (tests use a scratch namespace). */
  prefix?: string[];
}

/** Runs the rendered script on this host (or in the prefix's namespace); one apply at a time. */
export class SecurityGroupFirewall {
  private readonly prefix: string[];
  private queue: Promise<unknown> = Promise.resolve();
  private availability?: Promise<string | undefined>;

  constructor(opts: FirewallOptions = {}) {
    this.prefix = opts.prefix ?? [];
  }

  private cmd(bin: string, args: string[]): [string, string[]] {
    const all = [...this.prefix, bin, ...args];
    return [all[0], all.slice(1)];
  }

  /** Why rules cannot be enforced here (not root, no iptables), or undefined when they can. Checked once. */
  unavailableReason(): Promise<string | undefined> {
    this.availability ??= (async () => {
      if (process.getuid?.() !== 0) return 'the agent does not run as root';
      for (const bin of ['iptables', 'iptables-restore']) {
        try {
          await run(...this.cmd(bin, ['--version']));
        } catch {
          return `${bin} is not available`;
        }
      }
      return undefined;
    })();
    return this.availability;
  }

  /** Makes our chains exactly the given table's. */
  enforce(ruleSets: RuleSetTO[], signal?: AbortSignal): Promise<{ skipped: string[] }> {
    const next = this.queue.then(async () => {
      const listing = await run(...this.cmd('iptables', ['-w', '-S']), signal);
      const hooked = await run(...this.cmd('iptables', ['-w', '-C', 'FORWARD', '-j', PARENT_CHAIN]), signal).then(
        () => true,
        () => false,
      );
      const { script, skipped } = renderSecurityGroupScript({ ruleSets, existingChains: parseOurChains(listing.stdout), hooked });
      await this.restore(script, signal);
      return { skipped };
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  private restore(script: string, signal?: AbortSignal): Promise<void> {
    const [file, args] = this.cmd('iptables-restore', ['-w', '--noflush']);
    return new Promise((resolve, reject) => {
      const child = spawn(file, args, { signal, stdio: ['pipe', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
      child.on('error', (e) => reject(signal?.aborted ? signal.reason : new AgentError(`iptables-restore: ${e.message}`)));
      child.on('close', (code) => {
        if (code === 0) resolve();
        else reject(new AgentError(`iptables-restore failed (exit ${code}): ${stderr.trim()}`));
      });
      child.stdin.end(script);
    });
  }
}

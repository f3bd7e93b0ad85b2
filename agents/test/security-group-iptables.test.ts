// Security group rules as iptables: the rendered iptables-restore script (pure: names, rules, no injection, deletion),
// and, as root with iptables, applied in a scratch network namespace (never the host's own tables).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import t from 'tap';
import {
  MAX_CHAIN_NAME,
  PARENT_CHAIN,
  SecurityGroupFirewall,
  checkRuleSets,
  parseOurChains,
  renderSecurityGroupScript,
} from '../src/kvm/security-group-iptables.js';
import type { RuleSetTO } from '../src/kvm/security-group-rules.js';

const sh = promisify(execFile);

const web: RuleSetTO = {
  vmNicUuid: 'nic-a',
  vmNicInternalName: 'vnic12.0',
  actionCode: 'applyRule',
  ingressDefaultPolicy: 'deny',
  egressDefaultPolicy: 'accept',
  rules: [
    { type: 'Ingress', protocol: 'TCP', startPort: 22, endPort: 22, allowedCidr: '10.0.0.0/8' },
    { type: 'Ingress', protocol: 'TCP', startPort: 8000, endPort: 8080, allowedCidr: '0.0.0.0/0', allowedInternalIpRange: ['192.168.0.5-192.168.0.9'] },
    { type: 'Ingress', protocol: 'ICMP', startPort: 8, endPort: 0, allowedCidr: '0.0.0.0/0' },
    { type: 'Egress', protocol: 'UDP', startPort: 53, endPort: 53, allowedCidr: '8.8.8.8/32', allowedInternalIpRange: ['192.168.0.7'] },
  ],
};

t.test('renders one chain pair per tap device, jumped to from the parent chain hooked into FORWARD', async (t) => {
  const { script, chains, skipped } = renderSecurityGroupScript({ ruleSets: [web] });
  t.same(chains, ['zs-vnic12.0-in', 'zs-vnic12.0-out']);
  t.same(skipped, []);
  const lines = script.split('\n');
  t.equal(lines[0], '*filter');
  t.equal(lines.at(-2), 'COMMIT');
  t.ok(lines.includes(`:${PARENT_CHAIN} - [0:0]`));
  t.ok(lines.includes(`-I FORWARD 1 -j ${PARENT_CHAIN}`));
  t.ok(lines.includes(`-A ${PARENT_CHAIN} -m physdev --physdev-out vnic12.0 --physdev-is-bridged -j zs-vnic12.0-in`));
  t.ok(lines.includes(`-A ${PARENT_CHAIN} -m physdev --physdev-in vnic12.0 --physdev-is-bridged -j zs-vnic12.0-out`));
  t.ok(lines.includes('-A zs-vnic12.0-in -p tcp -m tcp --dport 22 -s 10.0.0.0/8 -j ACCEPT'));
  t.ok(lines.includes('-A zs-vnic12.0-in -p tcp -m tcp --dport 8000:8080 -j ACCEPT'));
  t.ok(lines.includes('-A zs-vnic12.0-in -p icmp -m icmp --icmp-type 8/0 -j ACCEPT'));
  t.ok(lines.includes('-A zs-vnic12.0-in -m iprange --src-range 192.168.0.5-192.168.0.9 -j ACCEPT'));
  t.ok(lines.includes('-A zs-vnic12.0-out -p udp -m udp --dport 53 -d 8.8.8.8/32 -j ACCEPT'));
  t.ok(lines.includes('-A zs-vnic12.0-out -d 192.168.0.7/32 -j ACCEPT'));
  t.equal(lines.filter((l) => l.startsWith('-A zs-vnic12.0-in')).at(-1), '-A zs-vnic12.0-in -j DROP', 'ingress default last');
  t.equal(lines.filter((l) => l.startsWith('-A zs-vnic12.0-out')).at(-1), '-A zs-vnic12.0-out -j ACCEPT', 'egress default last');
  t.notOk(lines.some((l) => l.includes('Egress') || l.includes('undefined')));
});

t.test('idempotent: already hooked, the same table renders the same script without a second FORWARD jump', async (t) => {
  const first = renderSecurityGroupScript({ ruleSets: [web], existingChains: ['zs-vnic12.0-in', 'zs-vnic12.0-out'], hooked: true });
  const again = renderSecurityGroupScript({ ruleSets: [structuredClone(web)], existingChains: ['zs-vnic12.0-out', 'zs-vnic12.0-in'], hooked: true });
  t.equal(first.script, again.script);
  t.notMatch(first.script, /FORWARD/);
  t.notMatch(first.script, /^-X/m, 'nothing to delete');
});

t.test('deletion: chains of NICs no longer in the table are flushed and deleted after the parent stops jumping to them', async (t) => {
  const { script } = renderSecurityGroupScript({ ruleSets: [], existingChains: ['zs-vnic12.0-in', 'zs-vnic12.0-out', 'DOCKER', 'zs-sg'], hooked: true });
  const lines = script.split('\n');
  t.same(
    lines.filter((l) => l.startsWith(':')),
    [`:${PARENT_CHAIN} - [0:0]`, ':zs-vnic12.0-in - [0:0]', ':zs-vnic12.0-out - [0:0]'],
  );
  t.same(
    lines.filter((l) => l.startsWith('-X')),
    ['-X zs-vnic12.0-in', '-X zs-vnic12.0-out'],
  );
  t.notMatch(script, /DOCKER/, 'other chains untouched');
  t.same(parseOurChains('-P FORWARD ACCEPT\n-N DOCKER\n-N zs-sg\n-N zs-vnic1.0-in\n-N zs-vnic1.0-out\n'), ['zs-vnic1.0-in', 'zs-vnic1.0-out']);
});

t.test('names fit and values cannot inject', async (t) => {
  const longest = renderSecurityGroupScript({ ruleSets: [{ ...web, vmNicInternalName: 'vnic1234567.123' }] });
  t.ok(
    longest.chains.every((c) => c.length <= MAX_CHAIN_NAME),
    longest.chains.join(),
  );
  const bad: [string, Partial<RuleSetTO>][] = [
    ['device with a newline', { vmNicInternalName: 'vnic1.0\n-F' }],
    ['device with a space', { vmNicInternalName: 'vnic1 -j ACCEPT' }],
    ['device too long', { vmNicInternalName: 'vnic12345678.123' }],
    ['cidr', { rules: [{ ...web.rules[0], allowedCidr: '10.0.0.0/8 -j ACCEPT\nCOMMIT' }] }],
    ['cidr prefix', { rules: [{ ...web.rules[0], allowedCidr: '10.0.0.0/33' }] }],
    ['internal range', { rules: [{ ...web.rules[0], allowedInternalIpRange: ['1.2.3.4;reboot'] }] }],
    ['port', { rules: [{ ...web.rules[0], startPort: 70000 }] }],
    ['protocol', { rules: [{ ...web.rules[0], protocol: 'SCTP -j' as 'TCP' }] }],
  ];
  for (const [what, change] of bad) t.throws(() => renderSecurityGroupScript({ ruleSets: [{ ...web, ...change }] }), /invalid/, what);
  t.throws(() => checkRuleSets([{ ...web, vmNicInternalName: 'a b' }]), /invalid tap device/, 'checked before the table takes it');
  t.doesNotThrow(() => checkRuleSets([{ ...web, vmNicInternalName: 'a b', actionCode: 'deleteChain' }]), 'a deletion needs no valid rules');
  const noDevice = renderSecurityGroupScript({ ruleSets: [{ ...web, vmNicInternalName: undefined }] });
  t.same(noDevice.skipped, ['nic-a'], 'a rule set without a tap device is left out, and said so');
  t.same(noDevice.chains, []);
});

const canRun = async (cmd: string, args: string[]) =>
  sh(cmd, args).then(
    () => true,
    () => false,
  );
const rootReason = async () => {
  if (process.getuid?.() !== 0) return 'needs root';
  if (!(await canRun('iptables', ['--version'])) || !(await canRun('iptables-restore', ['--version']))) return 'iptables is not installed';
  if (!(await canRun('ip', ['netns', 'list']))) return '`ip netns` is not available';
  return undefined;
};

const rootSkip = await rootReason();

t.test('as root: enforced in a scratch network namespace, re-applied idempotently, deleted', { skip: rootSkip }, async (t) => {
  const ns = `zssgtest-${randomBytes(3).toString('hex')}`;
  await sh('ip', ['netns', 'add', ns]);
  t.teardown(() => sh('ip', ['netns', 'del', ns]).then(() => undefined));
  const inNs = (cmd: string, args: string[]) => sh('ip', ['netns', 'exec', ns, cmd, ...args]);
  // A device named like a tap (a veth: no dummy module everywhere), on a bridge (the physdev match is about bridged traffic).
  await inNs('ip', ['link', 'add', 'vnic12.0', 'type', 'veth', 'peer', 'name', 'guest12']);
  await inNs('ip', ['link', 'add', 'br0', 'type', 'bridge']);
  await inNs('ip', ['link', 'set', 'vnic12.0', 'master', 'br0']);
  const fw = new SecurityGroupFirewall({ prefix: ['ip', 'netns', 'exec', ns] });
  t.equal(await fw.unavailableReason(), undefined);
  const rules = async () => (await inNs('iptables', ['-w', '-S'])).stdout;

  try {
    await fw.enforce([web]);
  } catch (e) {
    // A kernel without the physdev/conntrack matches cannot take the rules; say why rather than fail obscurely.
    if (/physdev|conntrack|iprange|No chain|Could not/i.test(String(e))) return t.pass(`skipped: the kernel cannot take the rules: ${String(e)}`);
    throw e;
  }
  const applied = await rules();
  t.match(applied, `-A FORWARD -j ${PARENT_CHAIN}`);
  t.match(applied, /-A zs-sg -m physdev --physdev-out vnic12\.0 --physdev-is-bridged -j zs-vnic12\.0-in/);
  t.match(applied, /-A zs-vnic12\.0-in -s 10\.0\.0\.0\/8 -p tcp -m tcp --dport 22 -j ACCEPT/);
  t.match(applied, /-A zs-vnic12\.0-in -j DROP/);
  t.match(applied, /-A zs-vnic12\.0-out -j ACCEPT/);

  await fw.enforce([web]);
  t.equal(await rules(), applied, 're-applying the same table changes nothing (one FORWARD jump)');

  await fw.enforce([{ ...web, rules: [], ingressDefaultPolicy: 'accept' }]);
  const changed = await rules();
  t.notMatch(changed, /--dport 22/, 'a rule set replaces the previous one');
  t.match(changed, /-A zs-vnic12\.0-in -j ACCEPT/);

  await fw.enforce([]);
  const gone = await rules();
  t.notMatch(gone, /zs-vnic12\.0/, 'deleteChain: the NIC chains are gone');
  t.match(gone, `-N ${PARENT_CHAIN}`, 'the empty parent chain stays hooked');
});

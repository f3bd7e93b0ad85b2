// VIPs, EIPs and port forwarding on a namespace router (virtual-router/nat-state.ts): VIP addresses on the NIC
// holding them, and iptables NAT in two chains of our own in the router's namespace, rebuilt whole on every change:
// ZS-NAT-PRE (from PREROUTING: DNAT of an EIP's VIP to its guest, of a rule's VIP ports to the guest's ports) and
// ZS-NAT-POST (first in POSTROUTING, before the guest networks' SNAT: an EIP's guest leaves as its VIP). What was
// applied is saved in nat.json beside state.json, so a restarted agent builds on it.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentError } from '../lib/errors.js';
import { run } from '../lib/exec.js';
import type { NatState } from '../virtual-router/nat-state.js';
import { checkIp, ensureAddress, prefixOf } from './host-network.js';
import type { RouterNamespace } from './router-namespace.js';

const PRE = 'ZS-NAT-PRE';
const POST = 'ZS-NAT-POST';
const CIDR = /^(\d{1,3}\.){3}\d{1,3}\/([0-9]|[12]\d|3[0-2])$/;

interface SavedNat {
  vips: NatState['vips'] extends Map<string, infer V> ? V[] : never;
  eips: NatState['eips'] extends Map<string, infer V> ? V[] : never;
  portForwardings: NatState['portForwardings'] extends Map<string, infer V> ? V[] : never;
}

const ipt = (router: RouterNamespace, args: string[], signal?: AbortSignal) => router.exec(['iptables', '-w', '-t', 'nat', ...args], signal);

/** Our POSTROUTING chain first again (RouterNamespace.apply flushes POSTROUTING when it rebuilds the guests' SNAT). */
export async function restoreNatJump(router: RouterNamespace, signal?: AbortSignal): Promise<void> {
  const exists = await ipt(router, ['-n', '-L', POST], signal).then(
    () => true,
    () => false,
  );
  if (exists) await ipt(router, ['-I', 'POSTROUTING', '1', '-j', POST], signal);
}

export async function applyRouterNat(router: RouterNamespace, nat: NatState, signal: AbortSignal): Promise<void> {
  if (!(await router.exists(signal))) throw new AgentError(`virtual router ${router.routerUuid} has no namespace on this host (not started here)`);
  const { stdout } = await run('ip', ['-n', router.namespace, '-o', 'link', 'show'], signal);
  const devs = new Map<string, string>();
  for (const m of stdout.matchAll(/^\d+: ([^@:]+)[@:].*?link\/ether ([0-9a-f:]{17})/gm)) devs.set(m[2], m[1]);

  // VIP addresses: the new ones added, the ones no longer wanted removed.
  const before = await loadRouterNat(router);
  for (const vip of nat.vips.values()) {
    checkIp('VIP', vip.ip);
    const prefix = prefixOf(vip.netmask);
    const dev = devs.get(vip.ownerEthernetMac.toLowerCase());
    if (prefix === undefined || !dev) throw new AgentError(`VIP ${vip.ip}: no NIC with MAC ${vip.ownerEthernetMac} or invalid netmask ${vip.netmask}`);
    await ensureAddress(router.namespace, dev, `${vip.ip}/${prefix}`, signal);
  }
  for (const old of before?.vips.values() ?? []) {
    if (nat.vips.has(old.ip)) continue;
    const dev = devs.get(old.ownerEthernetMac.toLowerCase());
    const prefix = prefixOf(old.netmask);
    if (dev && prefix !== undefined) await run('ip', ['-n', router.namespace, 'addr', 'del', `${old.ip}/${prefix}`, 'dev', dev], signal).catch(() => undefined);
  }

  // The chains, rebuilt whole.
  for (const chain of [PRE, POST]) {
    await ipt(router, ['-N', chain], signal).catch(() => undefined);
    await ipt(router, ['-F', chain], signal);
  }
  for (const [hook, chain] of [
    ['PREROUTING', PRE],
    ['POSTROUTING', POST],
  ] as const) {
    const jumps = await ipt(router, ['-C', hook, '-j', chain], signal).then(
      () => true,
      () => false,
    );
    if (!jumps) await ipt(router, ['-I', hook, '1', '-j', chain], signal);
  }
  for (const eip of nat.eips.values()) {
    checkIp('VIP', eip.vipIp);
    checkIp('guest address', eip.guestIp);
    await ipt(router, ['-A', PRE, '-d', `${eip.vipIp}/32`, '-j', 'DNAT', '--to-destination', eip.guestIp], signal);
    await ipt(router, ['-A', POST, '-s', `${eip.guestIp}/32`, '-j', 'SNAT', '--to-source', eip.vipIp], signal);
  }
  for (const r of nat.portForwardings.values()) {
    checkIp('VIP', r.vipIp);
    checkIp('guest address', r.privateIp);
    const ports = [r.vipPortStart, r.vipPortEnd, r.privatePortStart, r.privatePortEnd];
    if (!ports.every((p) => Number.isInteger(p) && p >= 1 && p <= 65535)) throw new AgentError(`invalid ports in rule ${JSON.stringify(r)}`);
    if (r.allowedCidr && !CIDR.test(r.allowedCidr)) throw new AgentError(`invalid CIDR '${r.allowedCidr}'`);
    const proto = r.protocolType === 'UDP' ? 'udp' : 'tcp';
    const to = r.privatePortStart === r.privatePortEnd ? `${r.privateIp}:${r.privatePortStart}` : `${r.privateIp}:${r.privatePortStart}-${r.privatePortEnd}`;
    await ipt(
      router,
      [
        '-A',
        PRE,
        '-d',
        `${r.vipIp}/32`,
        '-p',
        proto,
        '--dport',
        `${r.vipPortStart}:${r.vipPortEnd}`,
        ...(r.allowedCidr ? ['-s', r.allowedCidr] : []),
        '-j',
        'DNAT',
        '--to-destination',
        to,
      ],
      signal,
    );
  }
  const saved: SavedNat = { vips: [...nat.vips.values()], eips: [...nat.eips.values()], portForwardings: [...nat.portForwardings.values()] };
  await writeFile(join(router.dir, 'nat.json'), JSON.stringify(saved));
}

export async function loadRouterNat(router: RouterNamespace): Promise<NatState | undefined> {
  const text = await readFile(join(router.dir, 'nat.json'), 'utf8').catch(() => undefined);
  if (!text) return undefined;
  const saved = JSON.parse(text) as SavedNat;
  const key = (r: SavedNat['portForwardings'][number]) => `${r.vipIp}/${r.protocolType}/${r.vipPortStart}-${r.vipPortEnd}`;
  return {
    vips: new Map(saved.vips.map((v) => [v.ip, v])),
    eips: new Map(saved.eips.map((e) => [e.vipIp, e])),
    portForwardings: new Map(saved.portForwardings.map((r) => [key(r), r])),
  };
}

// A virtual router on a real host, as a network namespace instead of an appliance VM (there is no router image with
// our agent inside): `zsvr-<id>` with one veth per router NIC, its namespace end carrying the NIC's MAC and
// plugged into the NIC's L2 bridge. What the router is told (/virtualrouter/*) becomes real configuration inside
// it: the NICs' addresses and the default route, dnsmasq serving DHCP (static leases with each entry's gateway,
// DNS and domain) and DNS (forwarding to the L3's servers), and SNAT of every guest network to the public NIC's
// address. Only addresses inside this namespace are configured; nothing routes to a real network unless the public
// L2's bridge is on one.
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentError } from '../lib/errors.js';
import { run } from '../lib/exec.js';
import type { DhcpInfo, DnsInfo, VirtualRouterNicInfo } from '../lib/protocol.js';
import type { RouterNetworks, VirtualRouterState } from '../virtual-router/state.js';
import type { NatState, RouterNat } from '../virtual-router/nat-state.js';
import { applyRouterNat, loadRouterNat, restoreNatJump } from './router-nat.js';
import {
  Dnsmasq,
  KeyedMutex,
  MAC,
  checkIp,
  ensureAddress,
  ensureBridge,
  ensureNamespace,
  ensureVeth,
  networkOf,
  prefixOf,
  type BridgeSpec,
} from './host-network.js';

/** A router NIC as the kvm agent's start command gives it: where it plugs in. */
export interface RouterNicPlug extends Omit<BridgeSpec, 'bridgeName'> {
  mac: string;
  deviceId: number;
  bridgeName?: string;
}

/** What the router has been told, as the virtual-router agent keeps it. */
export interface RouterConfig {
  nics: Iterable<VirtualRouterNicInfo>;
  dhcp: Iterable<DhcpInfo>;
  dns: Iterable<DnsInfo>;
}

const DEFAULT_STATE_DIR = '/var/lib/zstack-ts/vr';
const HOSTNAME = /^[A-Za-z0-9][A-Za-z0-9-]{0,62}$/;
const DOMAIN = /^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$/;

export class RouterNamespace {
  readonly id: string;
  readonly namespace: string;
  readonly dir: string;

  constructor(
    readonly routerUuid: string,
    stateDir = DEFAULT_STATE_DIR,
  ) {
    if (!/^[A-Za-z0-9-]{1,64}$/.test(routerUuid)) throw new AgentError(`invalid virtual router uuid '${routerUuid}'`);
    this.id = createHash('sha256').update(routerUuid).digest('hex').slice(0, 8);
    this.namespace = `zsvr-${this.id}`;
    this.dir = join(stateDir, this.id);
  }

  /** The routers whose namespaces this host has (by the uuid files in the state directory). */
  static async list(stateDir = DEFAULT_STATE_DIR): Promise<RouterNamespace[]> {
    const ids = await readdir(stateDir).catch(() => [] as string[]);
    const out: RouterNamespace[] = [];
    for (const id of ids) {
      const uuid = (await readFile(join(stateDir, id, 'uuid'), 'utf8').catch(() => '')).trim();
      if (uuid) {
        const r = new RouterNamespace(uuid, stateDir);
        if (await r.exists()) out.push(r);
      }
    }
    return out;
  }

  get dnsmasq(): Dnsmasq {
    return new Dnsmasq(this.namespace, this.dir);
  }

  private hostEnd(deviceId: number): string {
    return `zsv${this.id}.${deviceId}`;
  }

  async exists(signal?: AbortSignal): Promise<boolean> {
    const list = (await run('ip', ['netns', 'list'], signal)).stdout;
    return new RegExp(`^${this.namespace}(\\s|$)`, 'm').test(list);
  }

  /** The namespace and its NICs on their bridges (`eth<deviceId>` inside, with the NIC's MAC); idempotent. */
  async create(nics: RouterNicPlug[], signal?: AbortSignal): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeFile(join(this.dir, 'uuid'), this.routerUuid);
    await ensureNamespace(this.namespace, signal);
    await this.exec(['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1'], signal);
    for (const nic of nics) {
      if (!nic.bridgeName) throw new AgentError(`virtual router NIC ${nic.mac} has no bridge: its L3 network's L2 must be attached to the host's cluster`);
      if (!Number.isInteger(nic.deviceId) || nic.deviceId < 0 || nic.deviceId > 99) throw new AgentError(`invalid NIC device id ${nic.deviceId}`);
      await ensureBridge({ bridgeName: nic.bridgeName, physicalInterface: nic.physicalInterface, ...(nic.vlan ? { vlan: nic.vlan } : {}) }, signal);
      await ensureVeth(
        { hostEnd: this.hostEnd(nic.deviceId), nsEnd: `eth${nic.deviceId}`, namespace: this.namespace, bridgeName: nic.bridgeName, mac: nic.mac },
        signal,
      );
    }
  }

  /** dnsmasq, host ends of the veths and the namespace gone; absent = done. */
  async destroy(signal?: AbortSignal): Promise<void> {
    await this.dnsmasq.stop();
    const links = (await run('ip', ['-o', 'link', 'show'], signal)).stdout;
    for (const m of links.matchAll(new RegExp(`^\\d+: (zsv${this.id}\\.\\d+)[@:]`, 'gm'))) {
      await run('ip', ['link', 'del', m[1]], signal).catch(() => undefined);
    }
    await run('ip', ['netns', 'del', this.namespace], signal).catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }

  /**
   * Makes the namespace serve `config`: NIC addresses (by MAC) and the default route, SNAT of the guest networks
   * to the public NIC, and dnsmasq restarted when its configuration changed (a restart, not SIGHUP, so addresses
   * handed to removed MACs are free at once).
   */
  async apply(config: RouterConfig, signal?: AbortSignal): Promise<void> {
    if (!(await this.exists(signal))) throw new AgentError(`virtual router ${this.routerUuid} has no namespace on this host (not started here)`);
    const devs = await this.devicesByMac(signal);
    const nics = [...config.nics].map((n) => {
      const dev = devs.get(n.mac.toLowerCase());
      if (!dev) throw new AgentError(`virtual router ${this.routerUuid} has no NIC with MAC ${n.mac}`);
      checkIp('NIC address', n.ip);
      const prefix = prefixOf(n.netmask);
      if (prefix === undefined) throw new AgentError(`NIC ${n.mac}: invalid netmask ${n.netmask}`);
      if (n.gateway) checkIp('gateway', n.gateway);
      return { ...n, dev, prefix, subnet: `${networkOf(n.ip, prefix)}/${prefix}` };
    });
    for (const n of nics) await ensureAddress(this.namespace, n.dev, `${n.ip}/${n.prefix}`, signal);
    const pub = nics.find((n) => n.isDefaultRoute);
    if (pub?.gateway && pub.gateway !== pub.ip) await this.exec(['ip', 'route', 'replace', 'default', 'via', pub.gateway, 'dev', pub.dev], signal);

    // SNAT: rebuilt whole each time (a flush of our own namespace's nat table, nothing else's).
    await this.exec(['iptables', '-w', '-t', 'nat', '-F', 'POSTROUTING'], signal);
    await restoreNatJump(this, signal);
    if (pub) {
      for (const g of nics.filter((n) => n !== pub && n.subnet !== pub.subnet)) {
        await this.exec(['iptables', '-w', '-t', 'nat', '-A', 'POSTROUTING', '-s', g.subnet, '-o', pub.dev, '-j', 'SNAT', '--to-source', pub.ip], signal);
      }
    }

    const conf = this.dnsmasqConf(nics, [...config.dhcp], [...config.dns]);
    const confFile = join(this.dir, 'dnsmasq.conf');
    const before = await readFile(confFile, 'utf8').catch(() => undefined);
    if (before === conf && (await this.dnsmasq.running())) return;
    await this.dnsmasq.stop();
    await writeFile(confFile, conf);
    await this.dnsmasq.start([`--conf-file=${confFile}`], signal);
  }

  /** SNAT rules with their packet counts (tests, operators). */
  async snatRules(signal?: AbortSignal): Promise<Array<{ source: string; toSource: string; packets: number }>> {
    const { stdout } = await this.exec(['iptables', '-w', '-t', 'nat', '-L', 'POSTROUTING', '-n', '-v', '-x'], signal);
    const out = [];
    for (const m of stdout.matchAll(/^\s*(\d+)\s+\d+\s+SNAT\s+\S+\s+--\s+\*\s+\S+\s+(\S+)\s+\S+\s+to:(\S+)/gm)) {
      out.push({ packets: Number(m[1]), source: m[2], toSource: m[3] });
    }
    return out;
  }

  /** Runs a command inside the namespace. */
  exec(argv: string[], signal?: AbortSignal) {
    return run('ip', ['netns', 'exec', this.namespace, ...argv], signal);
  }

  private async devicesByMac(signal?: AbortSignal): Promise<Map<string, string>> {
    const { stdout } = await run('ip', ['-n', this.namespace, '-o', 'link', 'show'], signal);
    const out = new Map<string, string>();
    for (const m of stdout.matchAll(/^\d+: ([^@:]+)[@:].*?link\/ether ([0-9a-f:]{17})/gm)) out.set(m[2], m[1]);
    return out;
  }

  private dnsmasqConf(
    nics: Array<{ dev: string; ip: string; netmask: string; subnet: string; isDefaultRoute?: boolean }>,
    dhcp: DhcpInfo[],
    dns: DnsInfo[],
  ): string {
    // Every NIC but a dedicated public one serves (the §9 router has one NIC in all roles: it serves there).
    const serving = nics.filter((n) => !n.isDefaultRoute || nics.length === 1 || nics.every((o) => o.subnet === n.subnet));
    const lines = [
      'bind-interfaces',
      'except-interface=lo',
      'dhcp-authoritative',
      'leasefile-ro',
      'log-dhcp',
      'no-resolv',
      'no-hosts',
      ...serving.map((n) => `interface=${n.dev}`),
      ...serving.map((n) => `dhcp-range=${n.subnet.split('/')[0]},static,${n.netmask},1h`),
    ];
    const servers = [...new Set(dns.map((d) => d.dnsAddress))];
    for (const s of servers) checkIp('DNS server', s);
    if (servers.length) lines.push(...servers.map((s) => `server=${s}`));
    else lines.push('port=0');
    dhcp.forEach((e, i) => {
      if (!MAC.test(e.mac)) throw new AgentError(`invalid MAC '${e.mac}'`);
      checkIp('DHCP address', e.ip);
      const hostname = e.hostname && HOSTNAME.test(e.hostname) ? `,${e.hostname}` : '';
      lines.push(`dhcp-host=${e.mac.toLowerCase()},set:e${i},${e.ip}${hostname}`);
      if (e.netmask) {
        checkIp('netmask', e.netmask);
        lines.push(`dhcp-option=tag:e${i},option:netmask,${e.netmask}`);
      }
      // Only the default L3's entry routes (upstream: other NICs get no router option).
      if (e.gateway && e.isDefaultL3Network !== false) {
        checkIp('gateway', e.gateway);
        lines.push(`dhcp-option=tag:e${i},option:router,${e.gateway}`);
      }
      if (e.dns?.length) {
        for (const d of e.dns) checkIp('DNS server', d);
        lines.push(`dhcp-option=tag:e${i},option:dns-server,${e.dns.join(',')}`);
      }
      if (e.dnsDomain) {
        if (!DOMAIN.test(e.dnsDomain)) throw new AgentError(`invalid DNS domain '${e.dnsDomain}'`);
        lines.push(`dhcp-option=tag:e${i},option:domain-name,${e.dnsDomain}`);
      }
    });
    return lines.join('\n') + '\n';
  }
}

/** The virtual routers a kvm host runs as namespaces: one operation at a time per router. */
export class RouterNamespaces implements RouterNetworks, RouterNat {
  private readonly locks = new KeyedMutex();
  constructor(private readonly stateDir = DEFAULT_STATE_DIR) {}

  of(routerUuid: string): RouterNamespace {
    return new RouterNamespace(routerUuid, this.stateDir);
  }

  start(routerUuid: string, nics: RouterNicPlug[], signal?: AbortSignal): Promise<void> {
    return this.locks.run(routerUuid, () => this.of(routerUuid).create(nics, signal));
  }

  apply(routerUuid: string, state: VirtualRouterState, signal: AbortSignal): Promise<void> {
    const config = { nics: [...state.nics.values()], dhcp: [...state.dhcp.values()], dns: [...state.dns.values()] };
    return this.locks.run(routerUuid, async () => {
      const router = this.of(routerUuid);
      await router.apply(config, signal);
      await writeFile(join(router.dir, 'state.json'), JSON.stringify(config));
    });
  }

  async load(routerUuid: string): Promise<Omit<VirtualRouterState, 'initializedAs'> | undefined> {
    if (!(await this.has(routerUuid))) return undefined;
    const text = await readFile(join(this.of(routerUuid).dir, 'state.json'), 'utf8').catch(() => undefined);
    if (!text) return undefined;
    const saved = JSON.parse(text) as { nics: VirtualRouterNicInfo[]; dhcp: DhcpInfo[]; dns: DnsInfo[] };
    return {
      nics: new Map(saved.nics.map((n) => [n.mac, n])),
      dhcp: new Map(saved.dhcp.map((d) => [d.mac, d])),
      dns: new Map(saved.dns.map((d) => [d.dnsAddress, d])),
    };
  }

  /** VIPs, EIPs and port forwarding (network/router-nat.ts), one operation at a time per router as the rest. */
  applyNat(routerUuid: string, nat: NatState, signal: AbortSignal): Promise<void> {
    return this.locks.run(routerUuid, () => applyRouterNat(this.of(routerUuid), nat, signal));
  }

  async loadNat(routerUuid: string): Promise<NatState | undefined> {
    if (!(await this.has(routerUuid))) return undefined;
    return loadRouterNat(this.of(routerUuid));
  }

  destroy(routerUuid: string, signal?: AbortSignal): Promise<void> {
    return this.locks.run(routerUuid, () => this.of(routerUuid).destroy(signal));
  }

  /** Whether the uuid is a router running here (false for anything that is not a router uuid). */
  async has(uuid: string, signal?: AbortSignal): Promise<boolean> {
    if (!/^[A-Za-z0-9-]{1,64}$/.test(uuid)) return false;
    return this.of(uuid).exists(signal);
  }

  async list(): Promise<string[]> {
    return (await RouterNamespace.list(this.stateDir)).map((r) => r.routerUuid);
  }
}

// Networks on a real host: L2 networks as Linux bridges (a VLAN sub-interface of the L2's physical interface for
// L2Vlan), and the Flat provider's DHCP as dnsmasq in a per-L3 network namespace joined to the bridge by a veth
// pair, serving only static leases (our IP allocation; re-read on SIGHUP). Only addresses inside namespaces we
// create are configured: the bridge itself has no address and nothing routes to a real network.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentError } from '../lib/errors.js';
import { run } from '../lib/exec.js';

export interface BridgeSpec {
  bridgeName: string;
  /** The L2's physical interface; none = an isolated bridge. */
  physicalInterface?: string;
  /** L2Vlan: the bridge is on `<physicalInterface>.<vlan>`. */
  vlan?: number;
}

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

export function checkName(what: string, name: string): void {
  if (!IFNAME.test(name)) throw new AgentError(`invalid ${what} '${name}': 1-15 characters of letters, digits, '_', '.', '-'`);
}

async function linkExists(name: string, signal?: AbortSignal, netns?: string): Promise<boolean> {
  const args = netns ? ['-n', netns, 'link', 'show', name] : ['link', 'show', name];
  return run('ip', args, signal).then(
    () => true,
    () => false,
  );
}

/** Bridge name upstream's kvm agent uses: `br_<physical interface>` or `br_<physical interface>_<vlan>`. */
export function bridgeNameOf(physicalInterface: string, vlan?: number): string {
  const name = vlan === undefined ? `br_${physicalInterface}` : `br_${physicalInterface}_${vlan}`;
  return name.replace(/\./g, '_').slice(0, 15);
}

/** Creates the bridge (and VLAN device) when missing and brings them up; idempotent. Returns the bridge name. */
export async function ensureBridge(spec: BridgeSpec, signal?: AbortSignal): Promise<string> {
  const { bridgeName, physicalInterface, vlan } = spec;
  checkName('bridge name', bridgeName);
  if (!(await linkExists(bridgeName, signal))) {
    await run('ip', ['link', 'add', 'name', bridgeName, 'type', 'bridge'], signal);
  }
  await run('ip', ['link', 'set', bridgeName, 'up'], signal);
  if (physicalInterface) {
    checkName('physical interface', physicalInterface);
    if (!(await linkExists(physicalInterface, signal))) throw new AgentError(`physical interface ${physicalInterface} does not exist on this host`);
    let port = physicalInterface;
    if (vlan !== undefined) {
      if (!Number.isInteger(vlan) || vlan < 1 || vlan > 4094) throw new AgentError(`invalid vlan ${vlan}: 1-4094`);
      port = `${physicalInterface}.${vlan}`.slice(0, 15);
      if (!(await linkExists(port, signal))) {
        await run('ip', ['link', 'add', 'link', physicalInterface, 'name', port, 'type', 'vlan', 'id', String(vlan)], signal);
      }
      await run('ip', ['link', 'set', physicalInterface, 'up'], signal);
    }
    await run('ip', ['link', 'set', port, 'master', bridgeName, 'up'], signal);
  }
  return bridgeName;
}

/** Removes a bridge (and the VLAN device we made for it); absent = done. */
export async function deleteBridge(spec: BridgeSpec, signal?: AbortSignal): Promise<void> {
  checkName('bridge name', spec.bridgeName);
  if (await linkExists(spec.bridgeName, signal)) await run('ip', ['link', 'del', spec.bridgeName], signal);
  if (spec.physicalInterface && spec.vlan !== undefined) {
    const port = `${spec.physicalInterface}.${spec.vlan}`.slice(0, 15);
    if (await linkExists(port, signal)) await run('ip', ['link', 'del', port], signal);
  }
}

/** A network namespace by name, made when missing (loopback up). */
export async function ensureNamespace(name: string, signal?: AbortSignal): Promise<void> {
  const namespaces = (await run('ip', ['netns', 'list'], signal)).stdout;
  if (!new RegExp(`^${name}(\\s|$)`, 'm').test(namespaces)) await run('ip', ['netns', 'add', name], signal);
  await run('ip', ['-n', name, 'link', 'set', 'lo', 'up'], signal);
}

export interface VethSpec {
  /** The end on the host, a port of the bridge. */
  hostEnd: string;
  /** The end inside the namespace. */
  nsEnd: string;
  namespace: string;
  bridgeName: string;
  /** MAC of the namespace's end (default: the kernel's random one). */
  mac?: string;
}

/** A veth pair from a bridge into a namespace, both ends up; idempotent. */
export async function ensureVeth(v: VethSpec, signal?: AbortSignal): Promise<void> {
  checkName('interface name', v.hostEnd);
  checkName('interface name', v.nsEnd);
  if (!(await linkExists(v.hostEnd, signal))) {
    if (await linkExists(v.nsEnd, signal, v.namespace)) await run('ip', ['-n', v.namespace, 'link', 'del', v.nsEnd], signal);
    await run('ip', ['link', 'add', v.hostEnd, 'type', 'veth', 'peer', 'name', v.nsEnd, 'netns', v.namespace], signal);
  }
  if (v.mac) {
    if (!MAC.test(v.mac)) throw new AgentError(`invalid MAC '${v.mac}'`);
    await run('ip', ['-n', v.namespace, 'link', 'set', v.nsEnd, 'address', v.mac.toLowerCase()], signal);
  }
  await run('ip', ['link', 'set', v.hostEnd, 'master', v.bridgeName, 'up'], signal);
  await run('ip', ['-n', v.namespace, 'link', 'set', v.nsEnd, 'up'], signal);
}

/** `ip/prefix` on an interface inside a namespace, added when missing (other addresses stay). */
export async function ensureAddress(namespace: string, dev: string, cidr: string, signal?: AbortSignal): Promise<void> {
  const have = (await run('ip', ['-n', namespace, '-o', 'addr', 'show', 'dev', dev], signal)).stdout;
  if (!have.includes(` ${cidr} `)) await run('ip', ['-n', namespace, 'addr', 'add', cidr, 'dev', dev], signal);
}

/**
 * One dnsmasq in a namespace, its pid and log files in `dir`: started with the given options (no config file of
 * the system's), told to re-read its host files (SIGHUP), stopped.
 */
export class Dnsmasq {
  constructor(
    readonly namespace: string,
    readonly dir: string,
  ) {}

  get log(): string {
    return join(this.dir, 'dnsmasq.log');
  }

  private get pidFile(): string {
    return join(this.dir, 'dnsmasq.pid');
  }

  async start(options: string[], signal?: AbortSignal): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    // Never the system's /etc/dnsmasq.conf: only what the options say.
    const conf = options.some((o) => o.startsWith('--conf-file=')) ? [] : ['--conf-file=/dev/null'];
    await run('ip', ['netns', 'exec', this.namespace, 'dnsmasq', ...conf, `--pid-file=${this.pidFile}`, `--log-facility=${this.log}`, ...options], signal);
  }

  async stop(): Promise<void> {
    const pid = await this.pid();
    if (!pid) return;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      return; // already gone
    }
    for (let i = 0; i < 50; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    await rm(this.pidFile, { force: true });
  }

  async running(): Promise<boolean> {
    const pid = await this.pid();
    if (!pid) return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }

  async reload(): Promise<void> {
    const pid = await this.pid();
    if (pid) process.kill(pid, 'SIGHUP');
  }

  private async pid(): Promise<number | undefined> {
    const n = Number((await readFile(this.pidFile, 'utf8').catch(() => '')).trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  }
}

export interface DhcpLease {
  mac: string;
  ip: string;
  hostname?: string;
  /** The VM holding it (written as a dnsmasq tag), so destroying the VM drops it without knowing its MACs. */
  owner?: string;
}

export interface FlatDhcpSpec {
  l3NetworkUuid: string;
  bridgeName: string;
  /** The address the namespace takes (the L3's gateway in the tryout: VMs can ping it). */
  serverIp: string;
  /** Prefix length of the L3's CIDR. */
  prefixLength: number;
  gateway?: string;
  dns?: string[];
  /** Where pid, hosts and log files live (default /var/lib/zstack-ts/dhcp). */
  stateDir?: string;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
export const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i;

export function checkIp(what: string, ip: string): void {
  const m = IPV4.exec(ip);
  if (!m || m.slice(1).some((o) => Number(o) > 255)) throw new AgentError(`invalid ${what} '${ip}'`);
}

export function netmaskOf(prefix: number): string {
  const bits = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => (bits >>> s) & 255).join('.');
}

export function networkOf(ip: string, prefix: number): string {
  const n = ip.split('.').reduce((a, o) => ((a << 8) | Number(o)) >>> 0, 0);
  const bits = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const net = (n & bits) >>> 0;
  return [24, 16, 8, 0].map((s) => (net >>> s) & 255).join('.');
}

/**
 * The Flat provider's DHCP server of one L3 network: namespace `zsdhcp-<id>`, veth `zsd<id>` (on the bridge) ↔
 * `zsn<id>` (in the namespace, holding serverIp), dnsmasq serving only the static leases written by setLeases.
 */
export class FlatDhcpServer {
  readonly id: string;
  readonly namespace: string;
  private readonly hostVeth: string;
  private readonly nsVeth: string;
  private readonly dir: string;

  constructor(readonly spec: FlatDhcpSpec) {
    checkName('bridge name', spec.bridgeName);
    checkIp('DHCP server address', spec.serverIp);
    if (spec.gateway) checkIp('gateway', spec.gateway);
    for (const d of spec.dns ?? []) checkIp('DNS server', d);
    if (!Number.isInteger(spec.prefixLength) || spec.prefixLength < 8 || spec.prefixLength > 30) {
      throw new AgentError(`invalid prefix length ${spec.prefixLength}: 8-30`);
    }
    this.id = createHash('sha256').update(spec.l3NetworkUuid).digest('hex').slice(0, 8);
    this.namespace = `zsdhcp-${this.id}`;
    this.hostVeth = `zsd${this.id}`;
    this.nsVeth = `zsn${this.id}`;
    this.dir = join(spec.stateDir ?? '/var/lib/zstack-ts/dhcp', this.id);
  }

  get hostsFile(): string {
    return join(this.dir, 'hosts');
  }

  get leaseLog(): string {
    return this.dnsmasq.log;
  }

  private get dnsmasq(): Dnsmasq {
    return new Dnsmasq(this.namespace, this.dir);
  }

  /** Namespace, veth and dnsmasq up; idempotent (a running dnsmasq is kept and told to re-read its leases). */
  async ensure(leases: DhcpLease[] = [], signal?: AbortSignal): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await ensureNamespace(this.namespace, signal);
    await ensureVeth({ hostEnd: this.hostVeth, nsEnd: this.nsVeth, namespace: this.namespace, bridgeName: this.spec.bridgeName }, signal);
    await ensureAddress(this.namespace, this.nsVeth, `${this.spec.serverIp}/${this.spec.prefixLength}`, signal);
    await this.writeHosts(leases);
    if (await this.dnsmasq.running()) {
      await this.dnsmasq.reload();
      return;
    }
    const range = `${networkOf(this.spec.serverIp, this.spec.prefixLength)},static,${netmaskOf(this.spec.prefixLength)},1h`;
    await this.dnsmasq.start(
      [
        '--port=0',
        '--bind-interfaces',
        `--interface=${this.nsVeth}`,
        '--except-interface=lo',
        `--dhcp-hostsfile=${this.hostsFile}`,
        `--dhcp-range=${range}`,
        '--dhcp-authoritative',
        '--leasefile-ro',
        '--log-dhcp',
        `--dhcp-option=3${this.spec.gateway ? `,${this.spec.gateway}` : ''}`,
        ...(this.spec.dns?.length ? [`--dhcp-option=6,${this.spec.dns.join(',')}`] : []),
      ],
      signal,
    );
  }

  /**
   * Adds or replaces leases (by MAC; an address given to a new MAC leaves its old owner) and drops the leases of
   * the given MACs or owner; dnsmasq restarts with the new table (nothing to do when the table is unchanged).
   */
  async update(add: DhcpLease[], remove: { macs?: string[]; owner?: string } = {}, signal?: AbortSignal): Promise<void> {
    const gone = new Set([...(remove.macs ?? []), ...add.map((l) => l.mac)].map((m) => m.toLowerCase()));
    const ips = new Set(add.map((l) => l.ip));
    const before = await this.leases();
    const kept = before.filter((l) => !gone.has(l.mac.toLowerCase()) && !ips.has(l.ip) && (remove.owner === undefined || l.owner !== remove.owner));
    const next = [...kept, ...add];
    const same = (a: DhcpLease, b: DhcpLease) => a.mac.toLowerCase() === b.mac.toLowerCase() && a.ip === b.ip && a.owner === b.owner;
    if (next.length === before.length && next.every((l) => before.some((b) => same(l, b))) && (await this.dnsmasq.running())) return;
    // A restart rather than SIGHUP: dnsmasq forgets the leases it handed out (its table lives in memory), so an
    // address can go to its next owner at once, and the new table is certainly the one served.
    await this.dnsmasq.stop();
    await this.ensure(next, signal);
  }

  /** Replaces the static leases and makes dnsmasq re-read them. */
  async setLeases(leases: DhcpLease[]): Promise<void> {
    await this.writeHosts(leases);
    await this.dnsmasq.reload();
  }

  async leases(): Promise<DhcpLease[]> {
    const text = await readFile(this.hostsFile, 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const fields = line.split(',');
        const owner = fields.find((f) => f.startsWith('set:zs'))?.slice('set:zs'.length);
        const [mac, ip, hostname] = fields.filter((f) => !f.startsWith('set:'));
        return { mac, ip, ...(hostname ? { hostname } : {}), ...(owner ? { owner } : {}) };
      });
  }

  /** dnsmasq, veth and namespace gone; absent = done. */
  async destroy(signal?: AbortSignal): Promise<void> {
    await this.dnsmasq.stop();
    if (await linkExists(this.hostVeth, signal)) await run('ip', ['link', 'del', this.hostVeth], signal);
    await run('ip', ['netns', 'del', this.namespace], signal).catch(() => {});
    await rm(this.dir, { recursive: true, force: true });
  }

  private async writeHosts(leases: DhcpLease[]): Promise<void> {
    const lines = leases.map((l) => {
      if (!MAC.test(l.mac)) throw new AgentError(`invalid MAC '${l.mac}'`);
      checkIp('lease address', l.ip);
      if (l.hostname !== undefined && !/^[A-Za-z0-9-]{1,63}$/.test(l.hostname)) throw new AgentError(`invalid hostname '${l.hostname}'`);
      if (l.owner !== undefined && !/^[A-Za-z0-9-]{1,64}$/.test(l.owner)) throw new AgentError(`invalid lease owner '${l.owner}'`);
      return [l.mac.toLowerCase(), ...(l.owner ? [`set:zs${l.owner}`] : []), l.ip, ...(l.hostname ? [l.hostname] : [])].join(',');
    });
    const tmp = `${this.hostsFile}.tmp`;
    await writeFile(tmp, lines.join('\n') + (lines.length ? '\n' : ''));
    await run('mv', ['-f', tmp, this.hostsFile]);
  }
}

/** 255.255.255.0 → 24; undefined when not a contiguous netmask. */
export function prefixOf(netmask: string): number | undefined {
  const m = IPV4.exec(netmask);
  if (!m) return undefined;
  const n = m.slice(1).reduce((a, o) => ((a << 8) | Number(o)) >>> 0, 0);
  const prefix = n.toString(2).replace(/0+$/, '').length;
  return n === (prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0) ? prefix : undefined;
}

/** One operation at a time per key (an L3's DHCP files and dnsmasq). */
export class KeyedMutex {
  private tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.then(work, work);
    const tail = next.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return next;
  }
}

// kvm backend for a real host: drives virsh and qemu-img. VMs are transient libvirt domains named by their uuid
// (domain type kvm when the CPU has vmx/svm, else qemu = TCG); volumes are qcow2 files on the primary storage path,
// root volumes on top of the image cached there. Every virsh/qemu-img runs under the command's signal; a start or a
// hot-plug cut short by the deadline undoes what it did. Migration is refused saying why. A virtual router appliance
// is a network namespace here (network/router-namespace.ts), not a domain: started, listed and stopped like one.
import { randomBytes } from 'node:crypto';
import { chmod, copyFile, lstat, mkdir, readlink, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { sleep } from '../lib/abort.js';
import { AgentError } from '../lib/errors.js';
import { run } from '../lib/exec.js';
import type { Ctx } from '../lib/handler.js';
import type { VmState } from '../lib/protocol.js';
import { capacityOf } from '../lib/statfs.js';
import type { KvmBackend } from './backend.js';
import { SecurityGroupFirewall, checkRuleSets } from './security-group-iptables.js';
import { SecurityGroupRuleTable } from './security-group-rules.js';
import { diskTarget, diskXml, domainXml, nicXml, type DomainType } from './domain-xml.js';
import { readCpuFacts, readMemFacts, readOsRelease } from './host-facts.js';
import { FlatDhcpServer, KeyedMutex, ensureBridge, prefixOf } from '../network/host-network.js';
import { RouterNamespaces } from '../network/router-namespace.js';
import { ensureLibvirtd } from './libvirtd.js';
import { runHostShell } from './shell.js';

export interface LibvirtBackendOptions {
  /** Directory whose file system is reported by /primarystorage/capacity when the command names no mountPath. */
  storageRoot?: string;
  virsh?: string;
  qemuImg?: string;
  /** libvirt URI (virsh -c); default: virsh's own default (qemu:///system as root). */
  uri?: string;
  /** Where VNC servers listen when the start command names no hostManagementIp (default 127.0.0.1). */
  vncHost?: string;
  /** Directory of the serial console logs, `<vm uuid>.log` (default /var/log/zstack-ts/console). */
  consoleLogDir?: string;
  /** Forces the domain type (default: kvm when /proc/cpuinfo has vmx or svm, else qemu). */
  domainType?: DomainType;
  /** State of the Flat DHCP servers (default /var/lib/zstack-ts/dhcp). */
  dhcpStateDir?: string;
  /** The virtual routers run as namespaces (shared with the agent's /virtualrouter/* handlers). */
  routers?: RouterNamespaces;
  /** Start virtlogd/libvirtd on /host/connect when libvirtd does not answer (default true). */
  startDaemons?: boolean;
  /** How long a graceful shutdown may take when /vm/stop names no timeout, ms (default 60 s). */
  stopGraceMs?: number;
  /** Enforces security group rules with iptables (default: on this host, when root with iptables). */
  firewall?: SecurityGroupFirewall;
}

const DOMAIN_STATES: Record<string, VmState> = {
  running: 'Running',
  paused: 'Paused',
  'shut off': 'Shutdown',
  shutdown: 'Shutdown',
  crashed: 'Crashed',
  pmsuspended: 'Suspended',
  idle: 'Running',
  'in shutdown': 'Running',
  blocked: 'Running',
};

/** Cleanup after an aborted command runs with its own short budget (the command's signal has fired already). */
const CLEANUP_MS = 15_000;

export class LibvirtKvmBackend implements KvmBackend {
  readonly name = 'libvirt';
  private hostUuid?: string;
  private readonly virshBin: string;
  private readonly qemuImg: string;
  private domainTypeCache?: DomainType;
  /** Flat DHCP servers of the L3 networks this agent served, by L3 uuid (leases leave them with their VMs). */
  private readonly dhcpServers = new Map<string, FlatDhcpServer>();
  private readonly dhcpLocks = new KeyedMutex();
  private readonly securityGroupRules = new SecurityGroupRuleTable();
  private readonly firewall: SecurityGroupFirewall;
  private firewallWarned = false;
  readonly routers: RouterNamespaces;

  constructor(private readonly opts: LibvirtBackendOptions = {}) {
    this.virshBin = opts.virsh ?? 'virsh';
    this.qemuImg = opts.qemuImg ?? 'qemu-img';
    this.routers = opts.routers ?? new RouterNamespaces();
    this.firewall = opts.firewall ?? new SecurityGroupFirewall();
  }

  /** The qemu-img this backend runs (the snapshot commands use it too). */
  get qemuImgBinary(): string {
    return this.qemuImg;
  }

  /** The console log of a VM (what its ttyS0 printed), for tests and operators. */
  consoleLogOf(vmUuid: string): string {
    return join(this.opts.consoleLogDir ?? '/var/log/zstack-ts/console', `${vmUuid}.log`);
  }

  async domainType(): Promise<DomainType> {
    if (this.opts.domainType) return this.opts.domainType;
    this.domainTypeCache ??= (await readCpuFacts()).hvmFlag ? 'kvm' : 'qemu';
    return this.domainTypeCache;
  }

  async connect(ctx: Ctx<'KvmHostConnect'>) {
    const libvirtVersion = await this.libvirtVersion(ctx.signal);
    const qemuVersion = await this.qemuVersion(ctx.signal);
    // The daemon must answer (virsh --version alone does not connect); without systemd nobody started it: we do.
    // Its first call probes capabilities (~9 s).
    if (this.opts.startDaemons === false) await this.virsh(['uri'], ctx.signal);
    else await ensureLibvirtd(ctx.signal, { virsh: this.virshBin, ...(this.opts.uri ? { uri: this.opts.uri } : {}) });
    this.hostUuid = ctx.body.hostUuid;
    return { libvirtVersion, qemuVersion, domainType: await this.domainType() };
  }

  async ping(_ctx: Ctx<'KvmHostPing'>) {
    return this.hostUuid === undefined ? {} : { hostUuid: this.hostUuid };
  }

  async capacity(_ctx: Ctx<'KvmHostCapacity'>) {
    const [cpu, mem] = await Promise.all([readCpuFacts(), readMemFacts()]);
    // usedCpu would need per-domain vCPU accounting; the management server tracks allocations itself.
    return {
      cpuNum: cpu.cpuNum,
      cpuSpeed: cpu.cpuSpeed,
      usedCpu: 0,
      totalMemory: mem.totalMemory,
      usedMemory: mem.totalMemory - mem.availableMemory,
    };
  }

  async fact(ctx: Ctx<'KvmHostFact'>) {
    const [cpu, os] = await Promise.all([readCpuFacts(), readOsRelease()]);
    const qemuImgVersion = await run(this.qemuImg, ['--version'], ctx.signal).then(
      (r) => versionIn(r.stdout),
      () => undefined,
    );
    const libvirtVersion = await this.libvirtVersion(ctx.signal).catch(() => undefined);
    const qemuVersion = await this.qemuVersion(ctx.signal).catch(() => undefined);
    return {
      hvmCpuFlag: cpu.hvmFlag,
      cpuModelName: cpu.modelName,
      osDistribution: os.id,
      osVersion: os.versionId,
      domainType: await this.domainType(),
      ...(qemuImgVersion ? { qemuImgVersion } : {}),
      ...(libvirtVersion ? { libvirtVersion } : {}),
      ...(qemuVersion ? { qemuVersion } : {}),
    };
  }

  async startVm(ctx: Ctx<'KvmVmStart'>) {
    const cmd = ctx.body;
    const uuid = cmd.vmInstanceUuid;
    if (cmd.applianceVmType === 'VirtualRouter') {
      await this.routers.start(uuid, cmd.nics ?? [], ctx.signal);
      return {};
    }
    const state = await this.domState(uuid, ctx.signal);
    if (state === 'Running') return {};
    if (state === 'Paused') {
      await this.virsh(['resume', uuid], ctx.signal);
      return {};
    }
    const volumes = [cmd.rootVolume, ...(cmd.dataVolumes ?? [])];
    const formats = new Map<string, string>();
    for (const v of volumes) {
      if (!isAbsolute(v.installPath)) throw new AgentError(`volume ${v.volumeUuid}: installPath must be absolute: ${v.installPath}`);
      formats.set(v.installPath, await this.formatOf(v.installPath, ctx.signal));
    }
    if (cmd.bootIso) await this.ensureImageCached(cmd.bootIso.path, cmd.bootIso.backupStorageInstallPath, ctx.signal);
    await this.plugNetworks(uuid, cmd.nics ?? [], ctx.signal);
    const consoleLog = this.consoleLogOf(uuid);
    await mkdir(dirname(consoleLog), { recursive: true });
    const xml = domainXml(cmd, {
      domainType: await this.domainType(),
      vncListen: cmd.hostManagementIp ?? this.opts.vncHost ?? '127.0.0.1',
      consoleLog,
      formatOf: (p) => formats.get(p) ?? 'qcow2',
    });
    await this.withXmlFile(xml, async (file) => {
      try {
        await this.virsh(['create', file], ctx.signal);
      } catch (err) {
        // libvirtd may finish creating the domain after virsh was killed: a half-started VM must not linger.
        if (ctx.signal.aborted) await this.cleanup(['destroy', uuid]);
        throw err;
      }
    });
    if (ctx.signal.aborted) {
      await this.cleanup(['destroy', uuid]);
      ctx.signal.throwIfAborted();
    }
    return {};
  }

  async stopVm(ctx: Ctx<'KvmVmStop'>) {
    const uuid = ctx.body.uuid;
    if (await this.routers.has(uuid, ctx.signal)) {
      await this.routers.destroy(uuid, ctx.signal);
      return {};
    }
    if ((await this.domState(uuid, ctx.signal)) === 'Shutdown') return this.undefine(uuid, ctx.signal);
    const graceMs = ctx.body.timeout !== undefined ? ctx.body.timeout * 1000 : (this.opts.stopGraceMs ?? 60_000);
    const until = Date.now() + graceMs;
    // ACPI power button; pressed again every few seconds (a guest still booting has no handler listening yet).
    let nextPress = 0;
    while (Date.now() < until) {
      if (Date.now() >= nextPress) {
        await this.virshTolerant(['shutdown', uuid, '--mode', 'acpi'], ctx.signal);
        nextPress = Date.now() + 5_000;
      }
      if ((await this.domState(uuid, ctx.signal)) === 'Shutdown') return this.undefine(uuid, ctx.signal);
      await sleep(200, ctx.signal);
    }
    await this.virshTolerant(['destroy', uuid], ctx.signal);
    return this.undefine(uuid, ctx.signal);
  }

  async rebootVm(ctx: Ctx<'KvmVmReboot'>) {
    if (await this.routers.has(ctx.body.uuid, ctx.signal)) return {}; // a namespace has nothing to reboot
    // ACPI reboot: libvirt presses the power button and starts the guest again once it has powered off.
    await this.virsh(['reboot', ctx.body.uuid, '--mode', 'acpi'], ctx.signal);
    return {};
  }

  async destroyVm(ctx: Ctx<'KvmVmDestroy'>) {
    if (await this.routers.has(ctx.body.uuid, ctx.signal)) await this.routers.destroy(ctx.body.uuid, ctx.signal);
    await this.virshTolerant(['destroy', ctx.body.uuid], ctx.signal);
    await this.unplugLeases({ owner: ctx.body.uuid }, ctx.signal);
    return this.undefine(ctx.body.uuid, ctx.signal);
  }

  async vmSync(ctx: Ctx<'KvmVmSync'>) {
    return { states: await this.liveStates(ctx.signal) };
  }

  /** Running and paused domains by name (= VM uuid): what the host really runs, for reconciliation. */
  async liveStates(signal: AbortSignal): Promise<Record<string, VmState>> {
    const states: Record<string, VmState> = {};
    for (const [flag, state] of [
      ['--state-running', 'Running'],
      ['--state-paused', 'Paused'],
    ] as const) {
      const { stdout } = await this.virsh(['list', '--name', flag], signal);
      for (const name of stdout
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean))
        states[name] = state;
    }
    for (const router of await this.routers.list()) states[router] = 'Running';
    return states;
  }

  async checkState(ctx: Ctx<'KvmVmCheckState'>) {
    const states: Record<string, VmState> = {};
    for (const uuid of ctx.body.vmUuids) states[uuid] = await this.domState(uuid, ctx.signal);
    return { states };
  }

  async attachDataVolume(ctx: Ctx<'KvmVmAttachDataVolume'>) {
    const { vmInstanceUuid: uuid, volume } = ctx.body;
    if (!isAbsolute(volume.installPath)) throw new AgentError(`installPath must be absolute: ${volume.installPath}`);
    const attached = await this.disks(uuid, ctx.signal);
    const target = diskTarget(volume.deviceId);
    if (attached.get(target) === volume.installPath) return {};
    if (attached.has(target)) throw new AgentError(`VM ${uuid} already has another disk on ${target} (device id ${volume.deviceId})`);
    const xml = diskXml(volume, await this.formatOf(volume.installPath, ctx.signal));
    await this.hotplug(uuid, 'attach-device', xml, ctx.signal);
    return {};
  }

  async detachDataVolume(ctx: Ctx<'KvmVmDetachDataVolume'>) {
    const { vmInstanceUuid: uuid, volume } = ctx.body;
    const target = [...(await this.disks(uuid, ctx.signal))].find(([, path]) => path === volume.installPath)?.[0];
    if (!target) return {};
    await this.virsh(['detach-disk', uuid, target, '--live'], ctx.signal);
    // The guest acknowledges the unplug asynchronously.
    await this.until(async () => !(await this.disks(uuid, ctx.signal)).has(target), ctx.signal, `disk ${target} of VM ${uuid} to go`);
    return {};
  }

  async attachNic(ctx: Ctx<'KvmVmAttachNic'>) {
    const { vmUuid: uuid, nic } = ctx.body;
    if ((await this.macs(uuid, ctx.signal)).has(nic.mac.toLowerCase())) return {};
    await this.plugNetworks(uuid, [nic], ctx.signal);
    await this.hotplug(uuid, 'attach-device', nicXml(nic), ctx.signal);
    return {};
  }

  async detachNic(ctx: Ctx<'KvmVmDetachNic'>) {
    const { vmUuid: uuid, nic } = ctx.body;
    const mac = nic.mac.toLowerCase();
    if ((await this.macs(uuid, ctx.signal)).has(mac)) {
      await this.virsh(['detach-interface', uuid, '--type', nic.bridgeName ? 'bridge' : 'ethernet', '--mac', mac, '--live'], ctx.signal);
      await this.until(async () => !(await this.macs(uuid, ctx.signal)).has(mac), ctx.signal, `NIC ${mac} of VM ${uuid} to go`);
    }
    if (nic.flatDhcp) await this.unplugLeases({ macs: [mac] }, ctx.signal);
    return {};
  }

  async applyFlatDhcp(ctx: Ctx<'KvmFlatDhcpApply'>) {
    for (const vm of ctx.body.vms) await this.plugNetworks(vm.vmUuid, vm.nics, ctx.signal);
    return {};
  }

  /** The domain always has an IDE CD-ROM drive (hdc, domain-xml.ts): an ISO is a media change, not a hot-plug. */
  async attachIso(ctx: Ctx<'KvmVmAttachIso'>) {
    const { vmUuid: uuid, iso } = ctx.body;
    if (!iso || !isAbsolute(iso.path)) throw new AgentError(`an ISO with an absolute path is needed, got ${iso?.path}`);
    await this.ensureImageCached(iso.path, iso.backupStorageInstallPath, ctx.signal);
    await this.virsh(['change-media', uuid, 'hdc', iso.path, '--update', '--live'], ctx.signal);
    return {};
  }

  async detachIso(ctx: Ctx<'KvmVmDetachIso'>) {
    await this.virshTolerant(['change-media', ctx.body.vmUuid, 'hdc', '--eject', '--live'], ctx.signal);
    return {};
  }

  async runShell(ctx: Ctx<'KvmHostShell'>) {
    return runHostShell(ctx.body.script, ctx.signal);
  }

  async getVncPort(ctx: Ctx<'KvmVmGetVncPort'>) {
    const { stdout } = await this.virsh(['vncdisplay', ctx.body.vmUuid], ctx.signal);
    const m = /^(.*):(\d+)\s*$/m.exec(stdout.trim());
    if (!m) throw new AgentError(`VM ${ctx.body.vmUuid} has no VNC display (virsh said: ${stdout.trim()})`);
    const listen = m[1].replace(/^\[|\]$/g, '');
    const port = 5900 + Number(m[2]);
    // A wildcard listen address means "the host's own address", which the management server already knows.
    return listen && listen !== '0.0.0.0' && listen !== '::' ? { port, host: listen, protocol: 'vnc' as const } : { port, protocol: 'vnc' as const };
  }

  /** The table records every NIC's rules; as root with iptables they are enforced too (security-group-iptables.ts). */
  async applySecurityGroupRules(ctx: Ctx<'KvmSecurityGroupApplyRules'>) {
    checkRuleSets(ctx.body.ruleTOs);
    this.securityGroupRules.apply(ctx.body.ruleTOs);
    await this.enforceSecurityGroupRules(ctx.signal);
    return {};
  }

  async refreshSecurityGroupRules(ctx: Ctx<'KvmSecurityGroupRefreshRulesOnHost'>) {
    checkRuleSets(ctx.body.ruleTOs);
    this.securityGroupRules.refresh(ctx.body.ruleTOs);
    await this.enforceSecurityGroupRules(ctx.signal);
    return {};
  }

  /** Our iptables chains become the whole table's; without root or iptables the rules stay recorded only (logged once). */
  private async enforceSecurityGroupRules(signal: AbortSignal): Promise<void> {
    const why = await this.firewall.unavailableReason();
    if (why !== undefined) {
      if (!this.firewallWarned) console.warn(`kvm agent: security group rules are recorded, not enforced: ${why}`);
      this.firewallWarned = true;
      return;
    }
    const { skipped } = await this.firewall.enforce(this.securityGroupRules.list(), signal);
    if (skipped.length > 0) console.warn(`kvm agent: security group rules of NICs without a tap device name not enforced: ${skipped.join(', ')}`);
  }

  async migrateVm(ctx: Ctx<'KvmVmMigrate'>): Promise<never> {
    throw new AgentError(
      `${ctx.path}: live migration is not supported by the libvirt backend yet (it needs shared storage and a second ` +
        `libvirtd; two hosts on one machine share one libvirtd, which cannot migrate a domain to itself)`,
    );
  }

  async createVolume(ctx: Ctx<'KvmPrimaryStorageVolumeCreate'>) {
    const { installPath, size, imageInstallPath, backupStorageInstallPath } = ctx.body;
    if (!isAbsolute(installPath)) throw new AgentError(`installPath must be absolute: ${installPath}`);
    await mkdirReadable(dirname(installPath));
    let args = ['create', '-q', '-f', 'qcow2', installPath, String(size)];
    if (imageInstallPath) {
      if (!isAbsolute(imageInstallPath)) throw new AgentError(`imageInstallPath must be absolute: ${imageInstallPath}`);
      await this.ensureImageCached(imageInstallPath, backupStorageInstallPath, ctx.signal);
      const info = await this.imageInfo(imageInstallPath, ctx.signal);
      // A root volume at least as large as its image's disk (the size the server knows may be the file's, smaller
      // than the virtual size of a compressed qcow2: a shorter volume would cut the image's partitions off).
      const virtual = Math.max(size, info.virtualSize ?? 0);
      args = ['create', '-q', '-f', 'qcow2', '-b', imageInstallPath, '-F', info.format, installPath, ...(virtual > 0 ? [String(virtual)] : [])];
    }
    try {
      await run(this.qemuImg, args, ctx.signal);
    } catch (err) {
      if (ctx.signal.aborted) await rm(installPath, { force: true });
      throw err;
    }
    return { installPath, size, ...(await this.storage(ctx.body.mountPath ?? dirname(installPath))) };
  }

  async deleteVolume(ctx: Ctx<'KvmPrimaryStorageVolumeDelete'>) {
    const { installPath } = ctx.body;
    if (!isAbsolute(installPath)) throw new AgentError(`installPath must be absolute: ${installPath}`);
    await rm(installPath, { force: true });
    return this.storage(ctx.body.mountPath ?? dirname(installPath));
  }

  async storageCapacity(ctx: Ctx<'KvmPrimaryStorageCapacity'>) {
    const path = ctx.body.mountPath ?? this.opts.storageRoot;
    if (!path) throw new AgentError('no mountPath in the command and the agent was started without --storage-root');
    if (!isAbsolute(path)) throw new AgentError(`mountPath must be absolute: ${path}`);
    await mkdirReadable(path); // a local primary storage's directory is made when first used, as upstream does
    return this.storage(path);
  }

  /**
   * NFS primary storage: `mount -t nfs url mountPath`. An export of this very machine (`localhost:/dir`,
   * `127.0.0.1:/dir`) is linked instead (mountPath → dir), so one machine needs no NFS server to try it.
   */
  async nfsMount(ctx: Ctx<'KvmNfsPrimaryStorageMount'>) {
    const { url, mountPath } = ctx.body;
    const m = /^([^:/]+):(\/.*)$/.exec(url ?? '');
    if (!m) throw new AgentError(`cannot mount ${url ?? '(no url)'}: not an NFS export (host:/path)`);
    if (!isAbsolute(mountPath)) throw new AgentError(`mountPath must be absolute: ${mountPath}`);
    const [, server, dir] = m;
    if (server === 'localhost' || server === '127.0.0.1') {
      await mkdirReadable(dir);
      await mkdirReadable(dirname(mountPath));
      const existing = await readlink(mountPath).catch(() => undefined);
      if (existing !== dir) {
        await rm(mountPath, { force: true });
        await symlink(dir, mountPath);
      }
    } else if (!(await this.isMountPoint(mountPath, ctx.signal))) {
      await mkdirReadable(mountPath);
      await run('mount', ['-t', 'nfs', ...(ctx.body.options ? ['-o', ctx.body.options] : []), url!, mountPath], ctx.signal);
    }
    return this.storage(mountPath);
  }

  async nfsUnmount(ctx: Ctx<'KvmNfsPrimaryStorageUnmount'>) {
    const { mountPath } = ctx.body;
    const link = await lstat(mountPath).catch(() => undefined);
    if (link?.isSymbolicLink()) await rm(mountPath, { force: true });
    else if (await this.isMountPoint(mountPath, ctx.signal)) await run('umount', [mountPath], ctx.signal);
    return {};
  }

  async nfsCapacity(ctx: Ctx<'KvmNfsPrimaryStorageGetCapacity'>) {
    return this.storage(ctx.body.mountPath);
  }

  private async isMountPoint(path: string, signal: AbortSignal): Promise<boolean> {
    return run('mountpoint', ['-q', path], signal).then(
      () => true,
      () => false,
    );
  }

  async copyLocalVolume(ctx: Ctx<'KvmLocalStorageVolumeCopy'>): Promise<never> {
    // Host-to-host copies need a trusted channel between the agents (upstream scp's with the hosts' SSH login).
    throw new AgentError(`copying ${ctx.body.installPath} to host ${ctx.body.destHostUuid} is not implemented on the libvirt backend`);
  }

  async checkLocalBits(ctx: Ctx<'KvmLocalStorageCheckBits'>) {
    const { installPath } = ctx.body;
    if (!isAbsolute(installPath)) throw new AgentError(`installPath must be absolute: ${installPath}`);
    const st = await stat(installPath).catch(() => undefined);
    if (!st) return { existing: false };
    const info = await this.imageInfo(installPath, ctx.signal).catch(() => undefined);
    return { existing: true, size: info?.virtualSize ?? st.size };
  }

  async close(): Promise<void> {}

  /**
   * What the NICs need on this host before the VM uses them: their L2's bridge (and VLAN device), and for NICs of
   * a Flat-DHCP L3 a static lease of their address in the L3's dnsmasq.
   */
  private async plugNetworks(vmUuid: string, nics: NonNullable<Ctx<'KvmVmStart'>['body']['nics']>, signal: AbortSignal): Promise<void> {
    for (const nic of nics) {
      if (!nic.bridgeName) continue;
      await ensureBridge({ bridgeName: nic.bridgeName, physicalInterface: nic.physicalInterface, ...(nic.vlan ? { vlan: nic.vlan } : {}) }, signal);
      if (!nic.flatDhcp || !nic.ip || !nic.netmask || !nic.l3NetworkUuid) continue;
      const prefixLength = prefixOf(nic.netmask);
      if (prefixLength === undefined) throw new AgentError(`NIC ${nic.mac}: invalid netmask ${nic.netmask}`);
      const l3 = nic.l3NetworkUuid;
      // The namespace answers as the L3's gateway: VMs reach it, and it never routes anywhere.
      const server = new FlatDhcpServer({
        l3NetworkUuid: l3,
        bridgeName: nic.bridgeName,
        serverIp: nic.gateway ?? nic.ip,
        prefixLength,
        ...(nic.gateway ? { gateway: nic.gateway } : {}),
        ...(this.opts.dhcpStateDir ? { stateDir: this.opts.dhcpStateDir } : {}),
      });
      this.dhcpServers.set(l3, server);
      const owner = /^[A-Za-z0-9-]{1,64}$/.test(vmUuid) ? { owner: vmUuid } : {};
      await this.dhcpLocks.run(l3, () => server.update([{ mac: nic.mac, ip: nic.ip!, ...owner }], {}, signal));
    }
  }

  /** Drops leases by MAC or by owning VM from the Flat DHCP servers this agent runs. */
  private async unplugLeases(which: { macs?: string[]; owner?: string }, signal: AbortSignal): Promise<void> {
    const macs = new Set(which.macs?.map((m) => m.toLowerCase()));
    for (const [l3, server] of this.dhcpServers) {
      const hit = (await server.leases()).some((l) => macs.has(l.mac) || (which.owner !== undefined && l.owner === which.owner));
      if (hit) await this.dhcpLocks.run(l3, () => server.update([], which, signal));
    }
  }

  /** The Flat DHCP servers this agent set up (tests, cleanup). */
  flatDhcpServers(): FlatDhcpServer[] {
    return [...this.dhcpServers.values()];
  }

  /**
   * The image cache on primary storage: an image missing there is copied from the backup storage path when that
   * path is readable on this machine (backup storage on the same host, as in the tryout); a partial copy never
   * takes the final name.
   */
  private async ensureImageCached(imagePath: string, bsPath: string | undefined, signal: AbortSignal): Promise<void> {
    if (await exists(imagePath)) return;
    if (!bsPath) throw new AgentError(`image ${imagePath} is not on this primary storage and the command names no backupStorageInstallPath`);
    if (!(await exists(bsPath))) {
      throw new AgentError(
        `image ${imagePath} is not cached and ${bsPath} is not readable on this host (fetching from a remote backup storage is not implemented)`,
      );
    }
    await mkdirReadable(dirname(imagePath));
    const partial = `${imagePath}.partial-${randomBytes(4).toString('hex')}`;
    try {
      await copyFile(bsPath, partial);
      signal.throwIfAborted();
      await chmod(partial, 0o644);
      await rename(partial, imagePath);
    } finally {
      await rm(partial, { force: true });
    }
  }

  private async formatOf(path: string, signal: AbortSignal): Promise<string> {
    return (await this.imageInfo(path, signal)).format;
  }

  /** Format and virtual size from `qemu-img info` (qcow2 and unknown size when it cannot tell). */
  private async imageInfo(path: string, signal: AbortSignal): Promise<{ format: string; virtualSize?: number }> {
    try {
      const { stdout } = await run(this.qemuImg, ['info', '--output=json', '-U', path], signal);
      const info = JSON.parse(stdout) as { format?: string; 'virtual-size'?: number };
      const format = info.format && /^[a-z0-9]+$/.test(info.format) ? info.format : 'qcow2';
      return typeof info['virtual-size'] === 'number' ? { format, virtualSize: info['virtual-size'] } : { format };
    } catch (err) {
      if (signal.aborted) throw err;
      return { format: 'qcow2' };
    }
  }

  private async hotplug(uuid: string, verb: 'attach-device', xml: string, signal: AbortSignal): Promise<void> {
    await this.withXmlFile(xml, async (file) => {
      try {
        await this.virsh([verb, uuid, file, '--live'], signal);
      } catch (err) {
        if (signal.aborted) await this.cleanup(['detach-device', uuid, file, '--live']);
        throw err;
      }
    });
  }

  /** target dev → source file of the domain's disks. */
  private async disks(uuid: string, signal: AbortSignal): Promise<Map<string, string>> {
    const { stdout } = await this.virsh(['domblklist', uuid], signal);
    const out = new Map<string, string>();
    for (const line of stdout.split('\n').slice(2)) {
      const m = /^\s*(\S+)\s+(.+?)\s*$/.exec(line);
      if (m) out.set(m[1], m[2]);
    }
    return out;
  }

  private async macs(uuid: string, signal: AbortSignal): Promise<Set<string>> {
    const { stdout } = await this.virsh(['domiflist', uuid], signal);
    return new Set(stdout.match(/([0-9a-f]{2}:){5}[0-9a-f]{2}/gi)?.map((m) => m.toLowerCase()) ?? []);
  }

  private async until(cond: () => Promise<boolean>, signal: AbortSignal, what: string, ms = 30_000): Promise<void> {
    const end = Date.now() + ms;
    while (!(await cond())) {
      if (Date.now() > end) throw new AgentError(`timed out after ${ms} ms waiting for ${what} (does the guest handle hot-unplug?)`);
      await sleep(100, signal);
    }
  }

  private async withXmlFile<T>(xml: string, work: (file: string) => Promise<T>): Promise<T> {
    const file = join(tmpdir(), `zstack-libvirt-${randomBytes(6).toString('hex')}.xml`);
    await writeFile(file, xml, { mode: 0o600 });
    try {
      return await work(file);
    } finally {
      await rm(file, { force: true });
    }
  }

  private virsh(args: string[], signal: AbortSignal) {
    return run(this.virshBin, this.opts.uri ? ['-c', this.opts.uri, ...args] : args, signal);
  }

  /** Best-effort undo after an aborted command, under its own budget. */
  private async cleanup(args: string[]): Promise<void> {
    await this.virshTolerant(args, AbortSignal.timeout(CLEANUP_MS)).catch(() => {});
  }

  private async storage(path: string) {
    return capacityOf(path).catch((err: Error) => {
      throw new AgentError(`cannot read capacity of ${path}: ${err.message}`);
    });
  }

  private async libvirtVersion(signal: AbortSignal): Promise<string> {
    const { stdout } = await this.virsh(['--version'], signal);
    return stdout.trim();
  }

  private async qemuVersion(signal: AbortSignal): Promise<string> {
    for (const bin of ['qemu-system-x86_64', '/usr/libexec/qemu-kvm', 'qemu-kvm', 'qemu-system-aarch64']) {
      const out = await run(bin, ['--version'], signal).catch(() => undefined);
      const version = out && versionIn(out.stdout);
      if (version) return version;
    }
    throw new AgentError('no qemu binary found (tried qemu-system-x86_64, /usr/libexec/qemu-kvm, qemu-kvm, qemu-system-aarch64)');
  }

  private async domState(uuid: string, signal: AbortSignal): Promise<VmState> {
    try {
      const { stdout } = await this.virsh(['domstate', uuid], signal);
      return DOMAIN_STATES[stdout.trim().toLowerCase()] ?? 'NoState';
    } catch (err) {
      if (isMissingDomain(err)) return (await this.routers.has(uuid, signal)) ? 'Running' : 'Shutdown';
      throw err;
    }
  }

  private async undefine(uuid: string, signal: AbortSignal) {
    await this.virshTolerant(['undefine', uuid], signal);
    return {};
  }

  /** virsh commands on a domain that may already be gone or stopped: those errors mean "done". */
  private async virshTolerant(args: string[], signal: AbortSignal): Promise<void> {
    try {
      await this.virsh(args, signal);
    } catch (err) {
      if (isMissingDomain(err) || /domain is not running|transient domain/i.test(String((err as Error).message))) return;
      throw err;
    }
  }
}

/** Directories on the path to a volume must be traversable by the qemu user (libvirt runs QEMU unprivileged). */
async function mkdirReadable(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

function isMissingDomain(err: unknown): boolean {
  return err instanceof AgentError && /failed to get domain|domain not found|no domain with matching/i.test(err.message);
}

function versionIn(text: string): string | undefined {
  return /(\d+\.\d+(?:\.\d+)?)/.exec(text)?.[1];
}

// libvirt XML for the real kvm backend: the domain of /vm/start and the devices of hot-plug, built from the
// protocol's transfer objects. Pure functions (tested without libvirt).
import type { BodyOf } from '../lib/protocol.js';

export type DomainType = 'kvm' | 'qemu';
export type VolumeTO = BodyOf<'KvmVmStart'>['rootVolume'];
export type NicTO = NonNullable<BodyOf<'KvmVmStart'>['nics']>[number];

export interface DomainOptions {
  domainType: DomainType;
  /** Address the VNC server listens on. */
  vncListen: string;
  /** File the serial console (ttyS0) is logged to, through virtlogd. */
  consoleLog?: string;
  /** Disk image format per volume install path (qcow2 when not known). */
  formatOf?: (installPath: string) => string;
}

export const escapeXml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');

/** vda, vdb, … vdz, vdaa … for device ids 0, 1, … */
export function diskTarget(deviceId: number): string {
  let n = deviceId;
  let name = '';
  do {
    name = String.fromCharCode(97 + (n % 26)) + name;
    n = Math.floor(n / 26) - 1;
  } while (n >= 0);
  return `vd${name}`;
}

export function diskXml(v: VolumeTO, format = 'qcow2'): string {
  const bus = v.useVirtio === false ? 'ide' : 'virtio';
  const target = bus === 'virtio' ? diskTarget(v.deviceId) : `hd${diskTarget(v.deviceId).slice(2)}`;
  return [
    `<disk type='file' device='disk'>`,
    `<driver name='qemu' type='${escapeXml(format)}' cache='${escapeXml(v.cacheMode ?? 'none')}'/>`,
    `<source file='${escapeXml(v.installPath)}'/>`,
    `<target dev='${target}' bus='${bus}'/>`,
    `<serial>${escapeXml(v.volumeUuid.replace(/-/g, '').slice(0, 20))}</serial>`,
    `</disk>`,
  ].join('');
}

/**
 * A NIC on its L2's bridge; without a bridge name it is a tap attached to nothing (the VM still boots, its NIC
 * just has no network), never a user-mode NAT to the host's network.
 */
export function nicXml(n: NicTO): string {
  const model = n.useVirtio === false ? 'e1000' : 'virtio';
  const target = n.nicInternalName ? `<target dev='${escapeXml(n.nicInternalName)}'/>` : '';
  if (n.bridgeName) {
    return `<interface type='bridge'><mac address='${escapeXml(n.mac)}'/><source bridge='${escapeXml(n.bridgeName)}'/>${target}<model type='${model}'/></interface>`;
  }
  return `<interface type='ethernet'><mac address='${escapeXml(n.mac)}'/>${target}<model type='${model}'/></interface>`;
}

export function domainXml(cmd: BodyOf<'KvmVmStart'>, o: DomainOptions): string {
  const fmt = o.formatOf ?? (() => 'qcow2');
  const kib = Math.max(1, Math.ceil(cmd.memory / 1024));
  const boot = (cmd.bootDev?.length ? cmd.bootDev : ['hd']).map((d) => `<boot dev='${escapeXml(d)}'/>`).join('');
  const disks = [cmd.rootVolume, ...(cmd.dataVolumes ?? [])].map((v) => diskXml(v, fmt(v.installPath)));
  // Always a CD-ROM drive (empty without bootIso), so AttachIsoToVmInstance is a media change on the running VM.
  const isoSource = cmd.bootIso ? `<source file='${escapeXml(cmd.bootIso.path)}'/>` : '';
  const cdrom = [`<disk type='file' device='cdrom'><driver name='qemu' type='raw'/>${isoSource}<target dev='hdc' bus='ide'/><readonly/></disk>`];
  const nics = [...(cmd.nics ?? [])].sort((a, b) => a.deviceId - b.deviceId).map(nicXml);
  const serialLog = o.consoleLog ? `<log file='${escapeXml(o.consoleLog)}' append='off'/>` : '';
  // Under TCG a smaller translation cache lowers each VM's RSS noticeably (≈ 32 MiB instead of up to 1 GiB).
  const tcg = o.domainType === 'qemu' ? `<tcg><tb-cache unit='MiB'>32</tb-cache></tcg>` : '';
  const cpu = o.domainType === 'kvm' ? `<cpu mode='host-passthrough'/>` : '';
  return [
    `<domain type='${o.domainType}'>`,
    `<name>${escapeXml(cmd.vmInstanceUuid)}</name>`,
    /^[0-9a-f]{32}$|^[0-9a-f-]{36}$/i.test(cmd.vmInstanceUuid) ? `<uuid>${cmd.vmInstanceUuid}</uuid>` : '',
    cmd.vmName ? `<title>${escapeXml(cmd.vmName)}</title>` : '',
    `<memory unit='KiB'>${kib}</memory><currentMemory unit='KiB'>${kib}</currentMemory>`,
    `<vcpu placement='static'>${cmd.cpuNum}</vcpu>`,
    cpu,
    `<os><type arch='x86_64' machine='pc'>hvm</type>${boot}</os>`,
    `<features><acpi/><apic/>${tcg}</features>`,
    `<clock offset='utc'/>`,
    `<on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>`,
    `<devices>`,
    ...disks,
    ...cdrom,
    ...nics,
    `<serial type='pty'>${serialLog}<target port='0'/></serial>`,
    `<console type='pty'><target type='serial' port='0'/></console>`,
    `<input type='tablet' bus='usb'/>`,
    `<graphics type='vnc' port='-1' autoport='yes' listen='${escapeXml(o.vncListen)}'><listen type='address' address='${escapeXml(o.vncListen)}'/></graphics>`,
    `<video><model type='vga'/></video>`,
    `<memballoon model='none'/>`,
    `</devices>`,
    `</domain>`,
  ].join('\n');
}

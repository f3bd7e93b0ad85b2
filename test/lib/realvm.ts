// What the real-VM suites need: root, QEMU, libvirt, dnsmasq and the tiny tryout image's build tools. Tests call
// realVmUnavailable() and skip with its reason; .ci/run installs the packages.
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { ReadStream } from 'node:tty';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

const NEEDED: Array<[string, string]> = [
  ['/usr/bin/qemu-system-x86_64', 'qemu-system-x86'],
  ['/usr/bin/qemu-img', 'qemu-utils'],
  ['/usr/bin/virsh', 'libvirt-clients'],
  ['/usr/sbin/libvirtd', 'libvirt-daemon-system'],
  ['/usr/sbin/virtlogd', 'libvirt-daemon-system'],
  ['/usr/sbin/dnsmasq', 'dnsmasq-base'],
  ['/bin/busybox', 'busybox-static'],
  ['/usr/bin/syslinux', 'syslinux'],
  ['/usr/bin/mcopy', 'mtools'],
  ['/sbin/mkfs.vfat', 'dosfstools'],
  ['/sbin/sfdisk', 'fdisk'],
  ['/sbin/mke2fs', 'e2fsprogs'],
  ['/usr/bin/cpio', 'cpio'],
  ['/sbin/ip', 'iproute2'],
  ['/usr/sbin/iptables', 'iptables'],
];

/** The packages the real-VM suites need (what .ci/run installs). */
export const REAL_VM_PACKAGES = [...new Set(NEEDED.map(([, p]) => p)), 'syslinux-common', 'linux-image-amd64'];

/** Why real VMs cannot run here, or undefined when they can. */
export function realVmUnavailable(): string | undefined {
  if (process.env.ZSTACK_SKIP_REAL_VMS) return 'ZSTACK_SKIP_REAL_VMS is set';
  if (process.getuid?.() !== 0) return 'real VMs need root (libvirt qemu:///system, bridges, network namespaces)';
  const missing = new Set<string>();
  for (const [path, pkg] of NEEDED) {
    try {
      accessSync(path, constants.X_OK);
    } catch {
      missing.add(pkg);
    }
  }
  if (!existsSync('/usr/lib/syslinux/mbr/mbr.bin') && !existsSync('/usr/lib/SYSLINUX/mbr.bin')) missing.add('syslinux-common');
  const kernels = existsSync('/boot') ? readdirSync('/boot').filter((f) => /^vmlinuz-.*-amd64$/.test(f)) : [];
  if (kernels.length === 0) missing.add('linux-image-amd64');
  if (missing.size) return `missing packages: ${[...missing].join(' ')} (apt-get install them; .ci/run does)`;
  return undefined;
}

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '../../agents/scripts/build-tryout-image.sh');

/** Builds (or finds cached) the tryout image; returns its path. */
export async function tryoutImage(): Promise<string> {
  const { stdout } = await run(SCRIPT, [], { maxBuffer: 1 << 20 });
  return stdout.trim();
}

/** Reads a console log; '' while it does not exist yet. */
export function consoleText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Waits until `test` matches the console log (polling); rejects after ms with the log's tail. */
export async function waitConsole(path: string, test: RegExp, ms: number, from = 0): Promise<RegExpMatchArray> {
  const end = Date.now() + ms;
  for (;;) {
    const m = consoleText(path).slice(from).match(test);
    if (m) return m;
    if (Date.now() > end) throw new Error(`console ${path} did not show ${test} within ${ms} ms; it ends with:\n${consoleText(path).slice(-800)}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** Resident memory of the QEMU process running a VM (bytes), from its pid file; undefined when not found. */
export function qemuRss(vmUuid: string): number | undefined {
  try {
    const pid = readFileSync(`/run/libvirt/qemu/${vmUuid}.pid`, 'utf8').trim();
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Commands typed on a VM's serial console (the tryout image: root logs in on ttyS0 without a password), their
 * output read back from its console log. Typed into the pty libvirt gives the serial port, held open (QEMU reads a
 * pty only while its other end is open) and drained (what the guest prints must not fill it up).
 */
export class SerialShell {
  private n = 0;

  private constructor(
    private readonly fd: number,
    private readonly reader: ReadStream,
    private readonly log: string,
  ) {}

  /** Logs in as root on the VM's serial console (the VM must have shown its login prompt). */
  static async login(vmUuid: string, log: string): Promise<SerialShell> {
    const { stdout } = await run('virsh', ['ttyconsole', vmUuid]);
    const fd = openSync(stdout.trim(), 'r+');
    const reader = new ReadStream(fd);
    reader.on('data', () => undefined);
    reader.on('error', () => undefined);
    const shell = new SerialShell(fd, reader, log);
    // QEMU notices the open pty within a second; until then what is typed is lost: type until the shell answers.
    for (let attempt = 1; ; attempt++) {
      const from = consoleText(log).length;
      writeSync(fd, '\rroot\r');
      try {
        await waitConsole(log, /# (\x1b\[6n)?\s*$/, 3_000, from);
        return shell;
      } catch (err) {
        if (attempt === 10) {
          shell.close();
          throw err;
        }
      }
    }
  }

  /** Runs a shell command line; resolves with its exit code and output (what the console showed between markers). */
  async run(command: string, ms = 60_000): Promise<{ code: number; output: string }> {
    const n = ++this.n;
    const from = consoleText(this.log).length;
    // The markers as printed differ from the markers as typed (the console echoes the typed line).
    writeSync(this.fd, `echo zs-beg""in-${n}; ${command}; echo zs-end-${n}-$?\r`);
    const end = await waitConsole(this.log, new RegExp(`zs-end-${n}-(\\d+)`), ms, from);
    const text = consoleText(this.log).slice(from);
    const output = text.slice(text.indexOf(`zs-begin-${n}`) + `zs-begin-${n}`.length, text.indexOf(end[0])).trim();
    return { code: Number(end[1]), output };
  }

  close(): void {
    this.reader.destroy();
  }
}

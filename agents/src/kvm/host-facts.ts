// Facts about the machine the real kvm agent runs on, read from /proc and /etc (no libvirt needed).
import { readFile } from 'node:fs/promises';

export interface CpuFacts {
  cpuNum: number;
  /** MHz per CPU. */
  cpuSpeed: number;
  modelName: string;
  /** 'vmx' (Intel VT-x), 'svm' (AMD-V) or '' when the CPU has neither. */
  hvmFlag: 'vmx' | 'svm' | '';
}

export function parseCpuInfo(text: string): CpuFacts {
  const blocks = text.split(/\n\s*\n/).filter((b) => /^processor\s*:/m.test(b));
  const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(blocks[0] ?? '')?.[1]?.trim();
  const flags = (field('flags') ?? '').split(/\s+/);
  return {
    cpuNum: Math.max(1, blocks.length),
    cpuSpeed: Math.round(Number(field('cpu MHz') ?? 0)),
    modelName: field('model name') ?? '',
    hvmFlag: flags.includes('vmx') ? 'vmx' : flags.includes('svm') ? 'svm' : '',
  };
}

export interface MemFacts {
  totalMemory: number;
  availableMemory: number;
}

export function parseMemInfo(text: string): MemFacts {
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s*(\\d+)\\s*kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
  const total = kib('MemTotal');
  return { totalMemory: total, availableMemory: kib('MemAvailable') || kib('MemFree') };
}

export function parseOsRelease(text: string): { id: string; versionId: string } {
  const value = (name: string) => new RegExp(`^${name}="?([^"\\n]*)"?`, 'm').exec(text)?.[1] ?? '';
  return { id: value('ID'), versionId: value('VERSION_ID') };
}

export async function readCpuFacts(): Promise<CpuFacts> {
  const facts = parseCpuInfo(await readFile('/proc/cpuinfo', 'utf8'));
  if (facts.cpuSpeed === 0) {
    // Some CPUs (ARM, some VMs) do not report "cpu MHz"; cpufreq knows the maximum.
    const khz = await readFile('/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq', 'utf8').catch(() => '0');
    facts.cpuSpeed = Math.round(Number(khz.trim()) / 1000);
  }
  return facts;
}

export async function readMemFacts(): Promise<MemFacts> {
  return parseMemInfo(await readFile('/proc/meminfo', 'utf8'));
}

export async function readOsRelease(): Promise<{ id: string; versionId: string }> {
  return parseOsRelease(await readFile('/etc/os-release', 'utf8').catch(() => ''));
}

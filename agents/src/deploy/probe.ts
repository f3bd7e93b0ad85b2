// One command that tells everything the tasks need to decide whether to act: OS and architecture, the node runtime,
// the checksums of every file the deployer writes and the agent's pid. Gathering it in one round trip is what makes
// a no-change redeploy cost one SSH connection, one exec and one HTTP echo.
import type { Plan } from './context.js';
import { quote as q } from './layout.js';
import type { PlatformFacts } from './types.js';

export interface NodeRuntime {
  path: string;
  version: string;
  major: number;
}

export interface HostSnapshot {
  kernel: string;
  platform: PlatformFacts;
  /** `arch os version` as recorded by the last deploy, if any. */
  recordedPlatform?: string;
  node?: NodeRuntime;
  /** sha256 of each deployer-written file that exists, by absolute path. */
  sums: Map<string, string>;
  /** The agent's pid when our agent process runs. */
  pid?: number;
}

const SECTION = '@@zstack-probe@@';

/**
 * sh function `running PID`: true when PID is our agent. Matching the bundle path in its command line guards
 * against a recycled pid, and a zombie (empty command line) counts as gone.
 */
export function runningFunction(plan: Plan): string {
  return `running() { [ -n "$1" ] && tr '\\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -qF ${q(plan.layout.entry)}; }`;
}

export function watchedFiles(plan: Plan, bundlePaths: string[]): string[] {
  const { layout } = plan;
  return [...bundlePaths.map((p) => `${layout.bundleDir}/${p}`), layout.configFile, layout.launcher, layout.unitFile];
}

export function probeScript(plan: Plan, files: string[], systemdUnit: string): string {
  const { layout } = plan;
  const parts = [
    'uname -s',
    'uname -m',
    'cat /etc/os-release 2>/dev/null',
    'id -u',
    'if [ -d /run/systemd/system ]; then echo systemd; fi',
    `cat ${q(layout.platformFile)} 2>/dev/null`,
    'p=$(command -v node) && printf "%s\\n" "$p" && "$p" --version 2>/dev/null',
    `sha256sum ${files.map(q).join(' ')} 2>/dev/null`,
    // With systemd the unit must also be active; the pid check alone is enough for the pidfile mode.
    `${runningFunction(plan)}; pid=$(cat ${q(layout.pidFile)} 2>/dev/null); ` +
      `if [ -d /run/systemd/system ] && [ "$(id -u)" = 0 ]; then systemctl is-active --quiet ${systemdUnit} || pid=; fi; ` +
      'running "$pid" && echo "$pid"',
  ];
  return `${parts.join(`; echo ${SECTION}; `)}; true`;
}

export function parseProbe(out: string): HostSnapshot {
  const [kernel, arch, osRelease, uid, systemd, recorded, node, sums, pid] = out.split(`${SECTION}\n`).map((s) => s.trim());
  const os = parseOsRelease(osRelease ?? '');
  return {
    kernel: kernel ?? '',
    platform: {
      arch: arch ?? '',
      osId: os.ID ?? 'unknown',
      osVersion: os.VERSION_ID ?? '',
      prettyName: os.PRETTY_NAME ?? os.NAME ?? 'unknown Linux',
      osFamily: [os.ID, ...(os.ID_LIKE ?? '').split(/\s+/)].filter((s): s is string => Boolean(s)),
      uid: Number(uid),
      systemd: systemd === 'systemd',
    },
    recordedPlatform: recorded || undefined,
    node: parseNode(node ?? ''),
    sums: new Map(
      (sums ?? '').split('\n').flatMap((line) => {
        const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
        return m ? [[m[2], m[1]] as const] : [];
      }),
    ),
    pid: /^\d+$/.test(pid ?? '') ? Number(pid) : undefined,
  };
}

/** `command -v node` and `node --version` output. */
export function parseNode(text: string): NodeRuntime | undefined {
  const [path, version] = text.trim().split('\n');
  const major = Number(/^v(\d+)\./.exec(version ?? '')?.[1]);
  if (!path || !version || !Number.isInteger(major)) return undefined;
  return { path, version, major };
}

/** os-release is KEY=value lines, values optionally quoted. */
export function parseOsRelease(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) fields[m[1]] = m[2].replace(/^(["'])(.*)\1$/, '$2');
  }
  return fields;
}

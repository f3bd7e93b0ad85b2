// The deployer's ordered tasks. Each looks before it acts: it returns `skip` when the host is already as wanted,
// `done` when it changed something. Whatever any task changes makes restart-agent restart the agent.
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { BUNDLE_PATHS, agentBundle, type AgentBundle, type BundleFile } from './bundle.js';
import { sshOf, type DeployContext } from './context.js';
import { echoAnswers, waitForEcho } from './echo.js';
import { TaskError } from './errors.js';
import { quote as q, renderConfig, renderLauncher, renderUnit } from './layout.js';
import { parseNode, parseProbe, probeScript, watchedFiles, type HostSnapshot } from './probe.js';
import { agentLogTail, restartAgent, runningPid, usesSystemd } from './service.js';
import { SshSession, fingerprint } from './ssh.js';
import type { TaskName } from './types.js';

export const MIN_NODE_MAJOR = 20;

export interface TaskOutcome {
  status: 'done' | 'skip';
  details: string;
}

export interface DeployTask {
  name: TaskName;
  /** What the `start` log line says. */
  title: string;
  run(ctx: DeployContext): Promise<TaskOutcome>;
}

const done = (details: string): TaskOutcome => ({ status: 'done', details });
const skip = (details: string): TaskOutcome => ({ status: 'skip', details });

const connect: DeployTask = {
  name: 'connect',
  title: 'open an SSH connection',
  async run(ctx) {
    const { target, connectTimeoutMs } = ctx.plan;
    if (!target.password && !target.privateKey) {
      throw new TaskError(`no password or private key given for ${target.username}@${target.host}`);
    }
    ctx.ssh = await SshSession.connect(target, { signal: ctx.signal, readyTimeoutMs: connectTimeoutMs });
    ctx.hostKey = ctx.ssh.hostKey;
    const how = `${target.username}@${target.host}:${target.port} by ${target.privateKey ? 'private key' : 'password'}`;
    if (target.knownHostKey) return skip(`${how}; host key ${fingerprint(ctx.hostKey)} matches the recorded one`);
    return done(`${how}; first contact, recorded host key ${fingerprint(ctx.hostKey)}`);
  },
};

const detectOs: DeployTask = {
  name: 'detect-os',
  title: 'detect OS and architecture, and what is already deployed',
  async run(ctx) {
    const ssh = sshOf(ctx);
    const { plan } = ctx;
    const files = watchedFiles(plan, plan.bundle?.files.map((f) => f.path) ?? BUNDLE_PATHS);
    const snapshot = parseProbe(await ssh.run(probeScript(plan, files, plan.profile.unitName), 'probing the host'));
    if (snapshot.kernel !== 'Linux') throw new TaskError(`unsupported OS ${snapshot.kernel}: the agents run on Linux`);
    ctx.snapshot = snapshot;
    const platform = (ctx.platform = snapshot.platform);
    const record = `${platform.arch} ${platform.osId} ${platform.osVersion}`;
    const details =
      `${platform.prettyName}, ${platform.arch}, ${usesSystemd(ctx) ? 'systemd' : 'pidfile-managed process'}` +
      `${platform.uid === 0 ? '' : ` (user uid ${platform.uid})`}`;
    if (snapshot.recordedPlatform === record) return skip(details);
    await ssh.run(`mkdir -p ${q(plan.layout.etcDir)} && printf '%s\\n' ${q(record)} > ${q(plan.layout.platformFile)}`, 'recording the platform');
    return done(snapshot.recordedPlatform ? `${details}; was ${snapshot.recordedPlatform}` : details);
  },
};

/**
 * Debian packages a kvm host with the libvirt backend needs (QEMU, libvirt, dnsmasq for DHCP in namespaces, ip and
 * iptables for bridges, namespaces and SNAT); the agent starts virtlogd/libvirtd itself when there is no systemd.
 */
export const KVM_HOST_PACKAGES = ['qemu-system-x86', 'qemu-utils', 'libvirt-daemon-system', 'libvirt-clients', 'dnsmasq-base', 'iproute2', 'iptables'];

/** The Debian packages this deploy needs on the host. */
export function packagesFor(plan: DeployContext['plan']): string[] {
  return plan.profile.kind === 'kvm' && plan.config.backend === 'libvirt' ? KVM_HOST_PACKAGES : [];
}

const checkRuntime: DeployTask = {
  name: 'check-runtime',
  title: `check for Node.js >= ${MIN_NODE_MAJOR} (and a libvirt host's packages)`,
  async run(ctx) {
    const found = snapshotOf(ctx).node;
    const packages = await ensurePackages(ctx);
    if (found && found.major >= MIN_NODE_MAJOR) {
      ctx.nodePath = found.path;
      const nodeDetails = `node ${found.version} at ${found.path}`;
      return packages.installed.length
        ? done(`${nodeDetails}; ${packages.details}`)
        : skip(packages.details ? `${nodeDetails}; ${packages.details}` : nodeDetails);
    }
    const platform = ctx.platform!;
    const what = found ? `node ${found.version} at ${found.path} is too old` : 'node is not installed';
    if (!isDebian(ctx)) {
      throw new TaskError(
        `${what}; this deployer installs Node.js only with apt-get (Debian, Ubuntu): install Node.js >= ${MIN_NODE_MAJOR} on this ${platform.prettyName} host`,
      );
    }
    // Touches a package repository only because something is missing.
    const ssh = sshOf(ctx);
    await ssh.run(`${aptGet(ctx)} update -q && ${aptGet(ctx)} install -y -q nodejs`, 'apt-get install nodejs');
    const installed = parseNode((await ssh.exec('p=$(command -v node) && printf "%s\\n" "$p" && "$p" --version')).stdout);
    if (!installed || installed.major < MIN_NODE_MAJOR) {
      throw new TaskError(
        `${what}, and apt-get installed ${installed ? `node ${installed.version}` : 'no node'}: ` +
          `this release's package is too old; install Node.js >= ${MIN_NODE_MAJOR} (e.g. from NodeSource) and deploy again`,
      );
    }
    ctx.nodePath = installed.path;
    ctx.changes.push(`node ${installed.version} installed`);
    return done(`${what}; installed node ${installed.version} with apt-get${packages.details ? `; ${packages.details}` : ''}`);
  },
};

const isDebian = (ctx: DeployContext) => ctx.platform!.osFamily.some((id) => id === 'debian' || id === 'ubuntu');
const aptGet = (ctx: DeployContext) => `${ctx.platform!.uid === 0 ? '' : 'sudo -n '}env DEBIAN_FRONTEND=noninteractive apt-get`;

/**
 * The deploy's Debian packages (packagesFor): dpkg is asked which are installed; only missing ones are installed
 * with apt-get, and only on Debian/Ubuntu (elsewhere the deploy fails naming them). Nothing needed = nothing asked.
 */
async function ensurePackages(ctx: DeployContext): Promise<{ installed: string[]; details: string }> {
  const wanted = packagesFor(ctx.plan);
  if (wanted.length === 0) return { installed: [], details: '' };
  const ssh = sshOf(ctx);
  const query = `dpkg-query -W -f='\${Package} \${db:Status-Status}\\n' ${wanted.map(q).join(' ')} 2>/dev/null; true`;
  const present = new Set(
    (await ssh.exec(query)).stdout.split('\n').flatMap((line) => {
      const [name, status] = line.trim().split(' ');
      return status === 'installed' ? [name] : [];
    }),
  );
  const missing = wanted.filter((p) => !present.has(p));
  if (missing.length === 0) return { installed: [], details: `packages present: ${wanted.join(' ')}` };
  if (!isDebian(ctx)) {
    throw new TaskError(
      `this ${ctx.platform!.prettyName} host lacks what a libvirt kvm host needs and this deployer installs packages only with apt-get (Debian, Ubuntu): install ${missing.join(' ')}`,
    );
  }
  await ssh.run(
    `${aptGet(ctx)} update -q && ${aptGet(ctx)} install -y -q --no-install-recommends ${missing.map(q).join(' ')}`,
    `apt-get install ${missing.join(' ')}`,
  );
  ctx.changes.push(`packages installed: ${missing.join(' ')}`);
  return { installed: missing, details: `installed with apt-get: ${missing.join(' ')}` };
}

const uploadBundle: DeployTask = {
  name: 'upload-bundle',
  title: 'upload the agent bundle if its checksum differs',
  async run(ctx) {
    const { layout } = ctx.plan;
    const bundle = await bundleOf(ctx);
    const { sums } = snapshotOf(ctx);
    const stale = bundle.files.filter((f) => sums.get(`${layout.bundleDir}/${f.path}`) !== f.sha256);
    const describe = (files: BundleFile[]) => files.map((f) => `${f.path} ${f.sha256.slice(0, 12)}`).join(', ');
    if (stale.length === 0) return skip(`bundle up to date (${describe(bundle.files)})`);
    const ssh = sshOf(ctx);
    // Temp files left by an upload that a dropped connection cut short go first.
    const litter = BUNDLE_PATHS.map((p) => `${q(`${layout.bundleDir}/${p}`)}.tmp-*`).join(' ');
    await ssh.run(`mkdir -p ${layout.dirs.map(q).join(' ')} && rm -f ${litter}`, 'creating the install directories');
    for (const f of stale) await ssh.writeFile(`${layout.bundleDir}/${f.path}`, f.content, 0o644);
    ctx.changes.push('bundle');
    const kib = Math.round(stale.reduce((n, f) => n + f.content.length, 0) / 1024);
    return done(`uploaded ${describe(stale)} (${kib} KiB)`);
  },
};

const writeConfig: DeployTask = {
  name: 'write-config',
  title: 'write the agent config if it changed',
  async run(ctx) {
    const { layout, config } = ctx.plan;
    const wanted = renderConfig(config);
    const summary =
      `port ${config.port} on ${config.listenHost}, backend ${config.backend}, storage ${config.storageRoot}` +
      `${config.managementUrl ? `, management ${config.managementUrl}` : ''}, secret set`;
    if (unchanged(ctx, layout.configFile, wanted)) return skip(`${layout.configFile} up to date (${summary})`);
    const ssh = sshOf(ctx);
    await ssh.run(`mkdir -p ${q(layout.etcDir)} ${q(config.storageRoot)}`, 'creating the config and storage directories');
    await ssh.writeFile(layout.configFile, wanted, 0o600);
    ctx.changes.push('config');
    return done(`wrote ${layout.configFile} (${summary})`);
  },
};

const installService: DeployTask = {
  name: 'install-service',
  title: 'install or refresh the launcher and the systemd unit',
  async run(ctx) {
    const ssh = sshOf(ctx);
    const { layout, profile } = ctx.plan;
    const written: string[] = [];
    const launcher = renderLauncher(layout, profile, ctx.nodePath!);
    if (!unchanged(ctx, layout.launcher, launcher)) {
      await ssh.run(`mkdir -p ${q(posix.dirname(layout.launcher))}`, 'creating the bin directory');
      await ssh.writeFile(layout.launcher, launcher, 0o755);
      written.push(layout.launcher);
    }
    const systemd = usesSystemd(ctx);
    if (systemd) {
      const unit = renderUnit(layout, profile);
      if (!unchanged(ctx, layout.unitFile, unit)) {
        await ssh.writeFile(layout.unitFile, unit, 0o644);
        await ssh.run(`systemctl daemon-reload && systemctl enable --quiet ${profile.unitName}`, 'systemctl enable');
        written.push(layout.unitFile);
      }
    }
    const mode = systemd ? `systemd unit ${profile.unitName}` : `pidfile ${layout.pidFile}`;
    if (written.length === 0) return skip(`launcher up to date; ${mode}`);
    ctx.changes.push('service');
    return done(`wrote ${written.join(', ')}; ${mode}`);
  },
};

const restart: DeployTask = {
  name: 'restart-agent',
  title: 'restart the agent if anything changed or it is not answering',
  async run(ctx) {
    const { echoUrl } = ctx.plan;
    const reasons = ctx.changes.map((c) => `${c} changed`);
    if (reasons.length === 0) {
      const pid = snapshotOf(ctx).pid;
      if (pid !== undefined && (await echoAnswers(echoUrl, ctx.signal))) {
        ctx.agentAnswering = true;
        return skip(`agent pid ${pid} is running and answers ${echoUrl}`);
      }
      reasons.push(pid === undefined ? 'the agent was not running' : `the agent (pid ${pid}) did not answer ${echoUrl}`);
    }
    await restartAgent(ctx);
    ctx.changes.length = 0; // taken in: a retry after this point need not restart again
    return done(`restarted: ${reasons.join(', ')}`);
  },
};

const waitEcho: DeployTask = {
  name: 'wait-echo',
  title: 'wait for the agent to answer its echo path',
  async run(ctx) {
    const { echoUrl, echoTimeoutMs } = ctx.plan;
    if (ctx.agentAnswering) return skip(`${echoUrl} already answered`);
    const started = Date.now();
    const stillRunning = async () => (await runningPid(ctx)) !== undefined;
    const outcome = await waitForEcho(echoUrl, { timeoutMs: echoTimeoutMs, signal: ctx.signal, stillRunning });
    // Someone else on the port could answer the echo: only count it when our process is the one running.
    const pid = outcome === 'answered' ? await runningPid(ctx) : undefined;
    if (pid !== undefined) return done(`${echoUrl} answered ${Date.now() - started} ms after the restart (pid ${pid})`);
    const why =
      outcome === 'timeout'
        ? `did not answer ${echoUrl} within ${echoTimeoutMs} ms`
        : outcome === 'exited'
          ? 'exited before answering'
          : `is not running, yet something else answers ${echoUrl}`;
    throw new TaskError(`the agent ${why}; its log is in ${ctx.plan.layout.logFile}`, { stderr: await agentLogTail(ctx) });
  },
};

export const TASKS: readonly DeployTask[] = [connect, detectOs, checkRuntime, uploadBundle, writeConfig, installService, restart, waitEcho];

/** True when the host's copy (as probed by detect-os) has the same sha256 as `wanted`. */
function unchanged(ctx: DeployContext, path: string, wanted: string): boolean {
  return snapshotOf(ctx).sums.get(path) === createHash('sha256').update(wanted).digest('hex');
}

function snapshotOf(ctx: DeployContext): HostSnapshot {
  if (!ctx.snapshot) throw new Error('no host snapshot: the detect-os task must run first');
  return ctx.snapshot;
}

async function bundleOf(ctx: DeployContext): Promise<AgentBundle> {
  return ctx.plan.bundle ?? (await agentBundle());
}

// A deploy's plan (the caller's options with every default filled in) and the state tasks hand to each other.
import { posix } from 'node:path';
import type { AgentBundle } from './bundle.js';
import { kindProfile, type KindProfile } from './kinds.js';
import { layoutOf, type AgentConfig, type Layout } from './layout.js';
import type { HostSnapshot } from './probe.js';
import type { SshSession, SshTarget } from './ssh.js';
import type { DeployOptions, PlatformFacts } from './types.js';

export const DEFAULT_INSTALL_PARENT = '/var/lib/zstack-ts';
const DEFAULT_ECHO_TIMEOUT_MS = 30_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_RETRIES = 2;

export interface Plan {
  profile: KindProfile;
  layout: Layout;
  target: SshTarget;
  config: AgentConfig;
  /** http://host:port of the agent; the echo URL is this plus the kind's echo path. */
  agentUrl: string;
  echoUrl: string;
  echoTimeoutMs: number;
  connectTimeoutMs: number;
  retries: number;
  bundle?: AgentBundle;
}

export interface DeployContext {
  readonly plan: Plan;
  readonly signal: AbortSignal;
  ssh?: SshSession;
  hostKey?: string;
  platform?: PlatformFacts;
  /** What detect-os found on the host; later tasks compare against it instead of asking again. */
  snapshot?: HostSnapshot;
  /** Absolute path of the node binary on the host. */
  nodePath?: string;
  /** What earlier tasks (of this or a failed earlier attempt) changed: any entry means the agent must restart. */
  changes: string[];
  /** restart-agent saw the agent running and answering, so wait-echo has nothing to wait for. */
  agentAnswering: boolean;
}

export function planOf(opts: DeployOptions): Plan {
  const profile = kindProfile(opts.kind);
  const root = opts.installRoot ?? posix.join(DEFAULT_INSTALL_PARENT, opts.kind);
  const agentPort = opts.agentPort ?? profile.defaultPort;
  const urlHost = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const agentUrl = `http://${urlHost}:${agentPort}`;
  return {
    profile,
    layout: layoutOf(root, profile),
    target: {
      host: opts.host,
      port: opts.port ?? 22,
      username: opts.username,
      password: opts.password,
      privateKey: opts.privateKey,
      passphrase: opts.passphrase,
      knownHostKey: opts.knownHostKey,
    },
    config: {
      port: agentPort,
      listenHost: opts.agentListenHost ?? '0.0.0.0',
      backend: opts.backend ?? profile.defaultBackend,
      secret: opts.secret,
      managementUrl: opts.managementUrl,
      storageRoot: opts.storageRoot ?? posix.join(root, 'storage'),
    },
    agentUrl,
    echoUrl: `${agentUrl}${profile.echoPath}`,
    echoTimeoutMs: opts.echoTimeoutMs ?? DEFAULT_ECHO_TIMEOUT_MS,
    connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
    retries: opts.retries ?? DEFAULT_RETRIES,
    bundle: opts.bundle,
  };
}

/** The session, for tasks after connect. */
export function sshOf(ctx: DeployContext): SshSession {
  if (!ctx.ssh) throw new Error('not connected: the connect task must run first');
  return ctx.ssh;
}

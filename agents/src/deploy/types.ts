// The deployer's public shapes: what a caller passes, what every task logs, what a deploy returns.
import type { AgentBundle } from './bundle.js';

export const DEPLOY_KINDS = ['kvm', 'backup-storage', 'console-proxy', 'virtual-router'] as const;
export type DeployKind = (typeof DEPLOY_KINDS)[number];

/** The tasks, in the order they run. */
export const TASK_NAMES = ['connect', 'detect-os', 'check-runtime', 'upload-bundle', 'write-config', 'install-service', 'restart-agent', 'wait-echo'] as const;
export type TaskName = (typeof TASK_NAMES)[number];

export type TaskStatus = 'start' | 'done' | 'skip' | 'fail';
export type TaskLevel = 'INFO' | 'WARN' | 'ERROR';

/**
 * One log line, posted as JSON to `logUrl` and returned in the result. `done` = the task changed something (or, for
 * connect, recorded a host key seen for the first time); `skip` = it found the host already as wanted.
 */
export interface TaskLog {
  host: string;
  task: TaskName;
  status: TaskStatus;
  level: TaskLevel;
  details: string;
  /** 0 for `start`; the task's duration otherwise. */
  durationMs: number;
}

export interface DeployOptions {
  kind: DeployKind;
  /** Address to ssh to; also where the deployer expects the agent to answer. */
  host: string;
  /** SSH port (default 22). */
  port?: number;
  username: string;
  password?: string;
  /** OpenSSH or PEM private key text. */
  privateKey?: string;
  passphrase?: string;
  /** The host key recorded on first contact (`ssh-ed25519 AAAA…`, or its `SHA256:…` fingerprint); a different key is refused. */
  knownHostKey?: string;
  /** Where everything goes on the host (default /var/lib/zstack-ts/<kind>). */
  installRoot?: string;
  /** Port the agent listens on (default: the kind's upstream port, e.g. kvm 7070). */
  agentPort?: number;
  /** Address the agent binds to on the host (default 0.0.0.0). */
  agentListenHost?: string;
  /** The agent's backend (default: the kind's default: kvm simulator, the others real). */
  backend?: string;
  /** The secret the agent will demand from its callers. */
  secret: string;
  /** The management server's callback URL, written into the agent's config. */
  managementUrl?: string;
  /** Agent storage root (backup storage images, libvirt capacity); default <installRoot>/storage. */
  storageRoot?: string;
  /** Every task's start/done/skip/fail is POSTed here as JSON; failures to post never fail the deploy. */
  logUrl?: string;
  /** Called as each task starts (`index` of `total`), for progress reports. */
  onTask?: (task: { name: string; title: string; index: number; total: number }) => void;
  /** Aborts the deploy (e.g. the API's remaining time). */
  signal?: AbortSignal;
  /** Deadline for the whole deploy, in ms. */
  timeoutMs?: number;
  /** How long to wait for the agent's echo after a restart (default 30 s, as upstream's 30 × 1 s). */
  echoTimeoutMs?: number;
  /** Attempts after a transient SSH failure (connection reset, handshake timeout); default 2. */
  retries?: number;
  /** A prebuilt bundle (default: built once per process from agents/src). */
  bundle?: AgentBundle;
}

export interface PlatformFacts {
  arch: string;
  /** os-release ID, e.g. debian. */
  osId: string;
  osVersion: string;
  prettyName: string;
  /** ID plus ID_LIKE: what decides the package manager. */
  osFamily: string[];
  uid: number;
  systemd: boolean;
}

export interface DeployResult {
  /** The host key seen (`ssh-ed25519 AAAA…`): record it and pass it as knownHostKey next time. */
  hostKey: string;
  tasks: TaskLog[];
  /** True when any task changed something on the host. */
  changed: boolean;
  /** Where the agent answers, e.g. http://10.0.0.5:7070. */
  agentUrl: string;
  platform: PlatformFacts;
  /** Log lines that could not be posted to logUrl (never fatal). */
  logPostFailures: number;
}

/** ZStack's ErrorCode shape (the spec's components.schemas.ErrorCode, as the server and SDK use it). */
export type { ErrorCode } from '../../../openapi/helpers.js';

// What differs between the agent kinds: port, echo path, default backend, unit name. The task list is shared.
import { DEFAULT_PORTS } from '../agent.js';
import type { DeployKind } from './types.js';

export interface KindProfile {
  kind: DeployKind;
  defaultPort: number;
  /** Answers without the secret: what "the agent is up" means. */
  echoPath: string;
  defaultBackend: string;
  /** systemd unit name (one agent of a kind per host, as upstream). */
  unitName: string;
  description: string;
}

const ECHO_PATHS: Record<DeployKind, string> = {
  kvm: '/host/echo',
  'backup-storage': '/backupstorage/echo',
  'console-proxy': '/console/echo',
  'virtual-router': '/virtualrouter/echo',
};

const DEFAULT_BACKENDS: Record<DeployKind, string> = {
  kvm: 'simulator',
  'backup-storage': 'real',
  'console-proxy': 'real',
  'virtual-router': 'real',
};

export function kindProfile(kind: DeployKind): KindProfile {
  return {
    kind,
    defaultPort: DEFAULT_PORTS[kind],
    echoPath: ECHO_PATHS[kind],
    defaultBackend: DEFAULT_BACKENDS[kind],
    unitName: `zstack-ts-${kind}-agent`,
    description: `ZStack-TS ${kind} agent`,
  };
}

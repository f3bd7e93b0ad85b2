// Where things live under the install root, and the text of the files the deployer writes there: the config
// (an env file), the launcher script, the systemd unit. Comparing these texts with the host's is how tasks decide
// whether anything changed.
import { posix } from 'node:path';
import { BUNDLE_ENTRY } from './bundle.js';
import type { KindProfile } from './kinds.js';

export interface Layout {
  root: string;
  bundleDir: string;
  entry: string;
  etcDir: string;
  /** Secret and settings, mode 0600; sourced by the launcher, so systemd and pidfile modes read the same file. */
  configFile: string;
  /** `arch os version` of the host as last deployed. */
  platformFile: string;
  launcher: string;
  pidFile: string;
  logFile: string;
  unitFile: string;
  /** Directories the tasks create. */
  dirs: string[];
}

export function layoutOf(root: string, profile: KindProfile): Layout {
  const at = (...parts: string[]) => posix.join(root, ...parts);
  return {
    root,
    bundleDir: at('bundle'),
    entry: at('bundle', BUNDLE_ENTRY),
    etcDir: at('etc'),
    configFile: at('etc', 'agent.env'),
    platformFile: at('etc', 'platform'),
    launcher: at('bin', 'zstack-agent'),
    pidFile: at('run', 'agent.pid'),
    logFile: at('log', 'agent.log'),
    unitFile: `/etc/systemd/system/${profile.unitName}.service`,
    dirs: [at('bundle', 'openapi', 'agents'), at('etc'), at('bin'), at('run'), at('log')],
  };
}

export interface AgentConfig {
  port: number;
  listenHost: string;
  backend: string;
  secret: string;
  managementUrl?: string;
  storageRoot: string;
}

export function renderConfig(config: AgentConfig): string {
  const lines = [
    '# Written by the ZStack-TS deployer; a change here restarts the agent on the next deploy.',
    `ZSTACK_AGENT_SECRET=${quote(config.secret)}`,
    `ZSTACK_AGENT_PORT=${config.port}`,
    `ZSTACK_AGENT_HOST=${quote(config.listenHost)}`,
    `ZSTACK_AGENT_BACKEND=${quote(config.backend)}`,
    `ZSTACK_AGENT_STORAGE_ROOT=${quote(config.storageRoot)}`,
    `ZSTACK_MANAGEMENT_URL=${quote(config.managementUrl ?? '')}`,
  ];
  return `${lines.join('\n')}\n`;
}

/**
 * The one way the agent is started, by systemd or by the pidfile launcher: reads the config, records its pid,
 * then becomes the agent (exec), so the pid is the agent's.
 */
export function renderLauncher(layout: Layout, profile: KindProfile, nodePath: string): string {
  return [
    '#!/bin/sh',
    `# ${profile.description}; written by the ZStack-TS deployer.`,
    'set -a',
    `. ${quote(layout.configFile)}`,
    'set +a',
    `echo $$ > ${quote(layout.pidFile)}`,
    `exec ${quote(nodePath)} ${quote(layout.entry)} ${profile.kind} --port "$ZSTACK_AGENT_PORT" --host "$ZSTACK_AGENT_HOST" \\`,
    '  --backend "$ZSTACK_AGENT_BACKEND" --storage-root "$ZSTACK_AGENT_STORAGE_ROOT"',
    '',
  ].join('\n');
}

export function renderUnit(layout: Layout, profile: KindProfile): string {
  return [
    '[Unit]',
    `Description=${profile.description}`,
    'After=network-online.target',
    '',
    '[Service]',
    `ExecStart=${layout.launcher}`,
    'Restart=on-failure',
    'RestartSec=2',
    `StandardOutput=append:${layout.logFile}`,
    `StandardError=append:${layout.logFile}`,
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

/** Single-quotes a word for sh. */
export function quote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

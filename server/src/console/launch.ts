// How a management node's console proxy agent comes to run. Two ways, chosen by `console/agent.deploy.mode`:
// - spawn (default): a child process of the node, `zstack-agent console-proxy` (agents/bin/zstack-agent.mjs) on an
//   ephemeral control port, its WebSocket listener on the configured proxy port, started as every local agent is
//   (agent-client/local-agent.ts: ready line, watchdog, own process group); it logs to
//   `<dataDir>/console-proxy-agent.log`.
// - ssh: put on a machine with the agent deployer (agents/src/deploy, what ReconnectConsoleProxyAgent meant
//   upstream: redeploy), reached at `http://<sshHost>:<agentPort>`.
import { readFileSync } from 'node:fs';
import { AGENT_BIN, startLocalAgent } from '../agent-client/local-agent.js';
import { ApiError, err, errorCode } from '../core/errors.js';

export type DeployMode = 'spawn' | 'ssh';

/** A running agent, as far as the node knows. */
export interface AgentRuntime {
  mode: DeployMode;
  /** The agent's control API. */
  url: string;
  secret: string;
  /** spawn: the child's pid. */
  pid?: number;
  /** ssh: the host key seen (recorded, then required on the next deploy). */
  hostKey?: string;
  /** spawn: resolves when the process exits, with why. */
  exited?: Promise<string>;
  /** spawn: stops the process (TERM, KILL after 5 s). ssh: nothing (the agent is a service on its machine). */
  stop(): Promise<void>;
}

export interface SpawnOptions {
  secret: string;
  /** Address of the control API and the WebSocket listener. */
  host: string;
  /** WebSocket listener port (0 = ephemeral). */
  proxyPort: number;
  /** Where the agent's stderr (JSON log lines) is appended. */
  logFile?: string;
  startTimeoutMs?: number;
}

export async function spawnConsoleAgent(opts: SpawnOptions): Promise<AgentRuntime> {
  const args = ['console-proxy', '--port', '0', '--host', opts.host, '--proxy-host', opts.host, '--proxy-port', String(opts.proxyPort)];
  try {
    const agent = await startLocalAgent({
      args,
      secret: opts.secret,
      stderr: opts.logFile ? { logFile: opts.logFile } : 'inherit',
      startTimeoutMs: opts.startTimeoutMs,
    });
    return { mode: 'spawn', url: agent.url, secret: opts.secret, pid: agent.pid, exited: agent.exited, stop: agent.stop };
  } catch (e) {
    throw err('SYS.1006', `cannot start the console proxy agent (${process.execPath} ${AGENT_BIN} console-proxy): ${(e as Error).message}`);
  }
}

export interface SshDeployOptions {
  secret: string;
  host: string;
  sshPort: number;
  username: string;
  /** A file holding the OpenSSH/PEM private key. */
  privateKeyFile: string;
  knownHostKey?: string;
  installRoot: string;
  agentPort: number;
  signal?: AbortSignal;
  timeoutMs?: number;
}

export async function deployConsoleAgent(opts: SshDeployOptions): Promise<AgentRuntime> {
  if (!opts.privateKeyFile) throw err('SYS.1007', 'console/agent.deploy.mode is ssh but console/agent.deploy.privateKeyFile is not set');
  let privateKey: string;
  try {
    privateKey = readFileSync(opts.privateKeyFile, 'utf8');
  } catch (e) {
    throw err('SYS.1006', `cannot read console/agent.deploy.privateKeyFile ${opts.privateKeyFile}: ${(e as Error).message}`);
  }
  // Loaded on demand: the deployer pulls in ssh2 and esbuild, which the spawn mode never needs.
  const { deployAgent, DeployError } = await import('../../../agents/src/deploy/index.js');
  try {
    const r = await deployAgent({
      kind: 'console-proxy',
      host: opts.host,
      port: opts.sshPort,
      username: opts.username,
      privateKey,
      knownHostKey: opts.knownHostKey,
      installRoot: opts.installRoot,
      agentPort: opts.agentPort,
      secret: opts.secret,
      signal: opts.signal,
      timeoutMs: opts.timeoutMs,
    });
    return { mode: 'ssh', url: r.agentUrl, secret: opts.secret, hostKey: r.hostKey, stop: async () => {} };
  } catch (e) {
    if (e instanceof DeployError) throw new ApiError(errorCode('SYS.1006', `deploying the console proxy agent on ${opts.host} failed`, e.error));
    throw e;
  }
}

// How a management node's console proxy agent comes to run. Two ways, chosen by `console/agent.deploy.mode`:
// - spawn (default): a child process of the node, `zstack-agent console-proxy` (agents/bin/zstack-agent.mjs) on an
//   ephemeral control port, its WebSocket listener on the configured proxy port; ready when it prints its JSON
//   line (as server/src/simulator-process.ts does for the simulator). The secret travels in the environment (not
//   argv, which `ps` shows); the agent exits when the node does (agent-watchdog.mjs), and logs to
//   `<dataDir>/console-proxy-agent.log`.
// - ssh: put on a machine with the agent deployer (agents/src/deploy, what ReconnectConsoleProxyAgent meant
//   upstream: redeploy), reached at `http://<sshHost>:<agentPort>`.
import { spawn } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
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

const BIN = fileURLToPath(new URL('../../../agents/bin/zstack-agent.mjs', import.meta.url));
const WATCHDOG = new URL('./agent-watchdog.mjs', import.meta.url).href;
const STOP_GRACE_MS = 5_000;

export async function spawnConsoleAgent(opts: SpawnOptions): Promise<AgentRuntime> {
  const args = ['--max-semi-space-size=2', '--import', WATCHDOG, BIN, 'console-proxy', '--port', '0', '--host', opts.host,
    '--proxy-host', opts.host, '--proxy-port', String(opts.proxyPort)];
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ZSTACK_AGENT_SECRET: opts.secret },
    stdio: ['pipe', 'pipe', 'pipe'],
    // Its own process group: a terminal's Ctrl-C reaches the node only, which stops the agent after its own work.
    detached: true,
  });
  child.stdin!.on('error', () => {}); // the agent died: its stdin is gone too
  const log = opts.logFile ? createWriteStream(opts.logFile, { flags: 'a' }) : undefined;
  log?.on('error', () => {});
  const tail: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    tail.push(line);
    if (tail.length > 10) tail.shift();
    log?.write(`${line}\n`);
  });
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => {
      log?.end();
      resolve(signal ? `killed by ${signal}` : `exited with code ${code}`);
    });
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.stdin!.end();
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  };
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timeoutMs = opts.startTimeoutMs ?? 30_000;
      const timer = setTimeout(() => reject(new Error(`it did not start within ${timeoutMs} ms`)), timeoutMs);
      const lines = createInterface({ input: child.stdout! });
      lines.on('line', (line) => {
        try {
          const msg = JSON.parse(line) as { listening?: string };
          if (msg.listening) {
            clearTimeout(timer);
            resolve(msg.listening);
          }
        } catch {
          // not the ready line
        }
      });
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      exited.then((how) => {
        clearTimeout(timer);
        reject(new Error(`it ${how}${tail.length ? `: ${tail.join(' | ')}` : ''}`));
      });
    });
    return { mode: 'spawn', url, secret: opts.secret, pid: child.pid, exited, stop };
  } catch (e) {
    await stop();
    throw err('SYS.1006', `cannot start the console proxy agent (${process.execPath} ${BIN} console-proxy): ${(e as Error).message}`);
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

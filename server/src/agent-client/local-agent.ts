// A zstack-agent run as a child process of this management node (`npm start`'s simulator, the console proxy agent in
// spawn mode): one way to start it (at once, or when first needed: OnDemandAgent), know it is ready, and stop it.
// - It never outlives the node: it holds the read end of a pipe on its stdin (agent-watchdog.mjs exits it when the
//   node is gone, even killed with SIGKILL).
// - Its own process group: a terminal's Ctrl-C reaches the node only, which stops the agent after its own work.
// - The secret travels in the environment (not argv, which `ps` shows).
// - Ready when it prints its JSON line `{"listening": "<url>"}` on stdout.
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** Set by scripts/build-server.mjs: the built agent, relative to this file (a built server spawns built agents). */
declare const ZSTACK_BUILT_AGENT: string | undefined;
/** The agent's entry: its build when this server runs built (`npm start`), else its sources through tsx (tests). */
export const AGENT_BIN = fileURLToPath(
  new URL(typeof ZSTACK_BUILT_AGENT === 'string' ? ZSTACK_BUILT_AGENT : '../../../agents/bin/zstack-agent.mjs', import.meta.url),
);
const WATCHDOG = new URL('./agent-watchdog.mjs', import.meta.url).href;
/**
 * A small young generation and V8's memory-saving mode: less resident for an agent that mostly waits. Unlike the
 * server's (whose CPU under load it tripled), the simulator's CPU per provisioned VM is the same without it
 * (bench/README.md, startup).
 */
const AGENT_NODE_FLAGS = ['--max-semi-space-size=2', '--optimize-for-size'];
const STOP_GRACE_MS = 5_000;

export interface LocalAgentOptions {
  /** `zstack-agent` arguments: the kind and its options. */
  args: string[];
  secret: string;
  /** Where the agent's stderr goes: appended to a file, or the node's own stderr. */
  stderr: { logFile: string } | 'inherit';
  startTimeoutMs?: number;
}

export interface LocalAgent {
  url: string;
  pid?: number;
  /** Resolves when the process exits, with how. */
  exited: Promise<string>;
  /** TERM, KILL after 5 s; resolves when it is gone. */
  stop(): Promise<void>;
}

/** Starts the agent and waits for its ready line; on failure it is stopped and the error says how it ended. */
export async function startLocalAgent(opts: LocalAgentOptions): Promise<LocalAgent> {
  const child = spawn(process.execPath, [...AGENT_NODE_FLAGS, '--import', WATCHDOG, AGENT_BIN, ...opts.args], {
    env: { ...process.env, ZSTACK_AGENT_SECRET: opts.secret },
    stdio: ['pipe', 'pipe', opts.stderr === 'inherit' ? 'inherit' : 'pipe'],
    detached: true,
  });
  child.stdin!.on('error', () => {}); // it died: its stdin is gone too
  const tail: string[] = [];
  if (opts.stderr !== 'inherit') {
    const log = createWriteStream(opts.stderr.logFile, { flags: 'a' });
    log.on('error', () => {});
    createInterface({ input: child.stderr! }).on('line', (line) => {
      tail.push(line);
      if (tail.length > 10) tail.shift();
      log.write(`${line}\n`);
    });
    child.once('exit', () => log.end());
  }
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => resolve(signal ? `was killed by ${signal}` : `exited with code ${code}`));
    child.once('error', (e) => resolve(`could not start: ${e.message}`));
  });
  let gone = false;
  void exited.then(() => (gone = true));
  const stop = async () => {
    if (gone) return;
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
      createInterface({ input: child.stdout! }).on('line', (line) => {
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
      void exited.then((how) => {
        clearTimeout(timer);
        reject(new Error(`it ${how}${tail.length ? `: ${tail.join(' | ')}` : ''}`));
      });
    });
    return { url, pid: child.pid, exited, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/**
 * A local agent started when a call first needs it (AgentClient.startOnDemand) and again by the next call after it
 * exited, so an idle node runs no agent it does not use. Stopped with the node; a start under way then is stopped
 * once it is up. Everything else (watchdog, process group, ready line) is startLocalAgent's.
 */
export class OnDemandAgent {
  private current?: Promise<LocalAgent>;
  private stopped = false;

  constructor(private readonly start: () => Promise<LocalAgent>) {}

  /** The running agent's URL, started first when it is not running. */
  url(): Promise<string> {
    if (this.stopped) return Promise.reject(new Error('the management node is stopping'));
    if (!this.current) {
      const starting = this.start();
      this.current = starting;
      const forget = () => {
        if (this.current === starting) this.current = undefined;
      };
      starting.then((agent) => agent.exited.then(forget), forget);
    }
    return this.current.then((agent) => agent.url);
  }

  /** The agent at `url` refused a connection: it died (its exit may not be seen yet) or is dying; it is stopped and forgotten. */
  async unreachable(url: string): Promise<void> {
    const starting = this.current;
    const agent = await starting?.catch(() => undefined);
    if (!agent || agent.url !== url) return; // another call already replaced it
    await agent.stop();
    if (this.current === starting) this.current = undefined;
  }

  /** The running agent's pid, if one runs or is starting. */
  async pid(): Promise<number | undefined> {
    return (await this.current?.catch(() => undefined))?.pid;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await (await this.current?.catch(() => undefined))?.stop();
  }
}

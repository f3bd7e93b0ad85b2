// `npm start` with no simulator configured: run the simulator agent as its own process (a real agent behind the
// same HTTP protocol as kvm agents), so a new user can create VMs on simulated hosts right away.
// It never outlives the server: it holds the read end of a pipe on its stdin (console/agent-watchdog.mjs exits it
// when the server is gone, even killed with SIGKILL), and it runs in its own process group, so a terminal's Ctrl-C
// reaches the server only, which stops it after its own work.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface SimulatorProcess {
  url: string;
  secret: string;
  pid?: number;
  /** TERM, KILL after 5 s; resolves when it is gone. */
  stop(): Promise<void> | void;
}

const WATCHDOG = new URL('./console/agent-watchdog.mjs', import.meta.url).href;
/** A small young generation: ~20 MB less resident for an agent that mostly waits (bench/README.md, startup). */
const AGENT_NODE_FLAGS = ['--max-semi-space-size=2'];
const STOP_GRACE_MS = 5_000;

export async function spawnSimulator(opts: { port?: number; storageRoot: string }): Promise<SimulatorProcess> {
  const secret = randomBytes(24).toString('hex');
  const bin = fileURLToPath(new URL('../../agents/bin/zstack-agent.mjs', import.meta.url));
  const child: ChildProcess = spawn(process.execPath, [...AGENT_NODE_FLAGS, '--import', WATCHDOG, bin, 'simulator', '--port', String(opts.port ?? 0), '--storage-root', opts.storageRoot], {
    env: { ...process.env, ZSTACK_AGENT_SECRET: secret },
    stdio: ['pipe', 'pipe', 'inherit'],
    detached: true,
  });
  child.stdin!.on('error', () => {}); // it died: its stdin is gone too
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
      const lines = createInterface({ input: child.stdout! });
      const timer = setTimeout(() => reject(new Error('the simulator agent did not start within 30 s')), 30_000);
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
      void exited.then((how) => {
        clearTimeout(timer);
        reject(new Error(`the simulator agent ${how}`));
      });
    });
    return { url, secret, pid: child.pid, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

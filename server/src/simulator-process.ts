// `npm start` with no simulator configured: run the simulator agent as its own process (a real agent behind the
// same HTTP protocol as kvm agents), so a new user can create VMs on simulated hosts right away.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface SimulatorProcess {
  url: string;
  secret: string;
  stop(): void;
}

export async function spawnSimulator(opts: { port?: number; storageRoot: string }): Promise<SimulatorProcess> {
  const secret = randomBytes(24).toString('hex');
  const bin = fileURLToPath(new URL('../../agents/bin/zstack-agent.mjs', import.meta.url));
  const child: ChildProcess = spawn(process.execPath, [bin, 'simulator', '--port', String(opts.port ?? 0), '--storage-root', opts.storageRoot], {
    env: { ...process.env, ZSTACK_AGENT_SECRET: secret },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
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
    child.once('exit', (code) => reject(new Error(`the simulator agent exited with code ${code}`)));
  });
  return { url, secret, stop: () => child.kill('SIGTERM') };
}

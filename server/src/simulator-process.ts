// `npm start` with no simulator configured: run the simulator agent as its own process (a real agent behind the
// same HTTP protocol as kvm agents), so a new user can create VMs on simulated hosts right away.
// Started as every local agent is (agent-client/local-agent.ts): it never outlives the server, and a terminal's
// Ctrl-C reaches the server only, which stops it after its own work.
import { randomBytes } from 'node:crypto';
import { startLocalAgent } from './agent-client/local-agent.js';

export interface SimulatorProcess {
  url: string;
  secret: string;
  pid?: number;
  /** TERM, KILL after 5 s; resolves when it is gone. */
  stop(): Promise<void> | void;
}

export async function spawnSimulator(opts: { port?: number; storageRoot: string }): Promise<SimulatorProcess> {
  const secret = randomBytes(24).toString('hex');
  try {
    const agent = await startLocalAgent({
      args: ['simulator', '--port', String(opts.port ?? 0), '--storage-root', opts.storageRoot],
      secret,
      stderr: 'inherit',
    });
    return { url: agent.url, secret, pid: agent.pid, stop: agent.stop };
  } catch (e) {
    throw new Error(`the simulator agent: ${(e as Error).message}`);
  }
}

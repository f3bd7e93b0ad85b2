// `npm start` with no simulator configured: the simulator agent as its own process (a real agent behind the same
// HTTP protocol as kvm agents), so a new user can create VMs on simulated hosts right away. It starts when a call
// first needs it (adding a simulated host or storage, pinging the simulated hosts of an earlier run), not with the
// server: an idle server without simulated resources runs none.
// Started as every local agent is (agent-client/local-agent.ts): it never outlives the server, and a terminal's
// Ctrl-C reaches the server only, which stops it after its own work.
import { randomBytes } from 'node:crypto';
import { OnDemandAgent, startLocalAgent } from './agent-client/local-agent.js';

/** What the server is given for it: a base URL the agent client resolves by starting the agent (AgentClient.startOnDemand). */
export const SIMULATOR_ON_DEMAND_URL = 'on-demand://simulator';

export interface Simulator {
  secret: string;
  agent: OnDemandAgent;
}

export function simulatorOnDemand(opts: { port?: number; storageRoot: string }): Simulator {
  const secret = randomBytes(24).toString('hex');
  const agent = new OnDemandAgent(async () => {
    try {
      return await startLocalAgent({
        args: ['simulator', '--port', String(opts.port ?? 0), '--storage-root', opts.storageRoot],
        secret,
        stderr: 'inherit',
      });
    } catch (e) {
      throw new Error(`the simulator agent: ${(e as Error).message}`);
    }
  });
  return { secret, agent };
}

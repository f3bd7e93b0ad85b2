// deployMany: many hosts at once, at most `concurrency` in flight; one host failing never stops the others.
import { deployAgent } from './deploy.js';
import { DeployError } from './errors.js';
import type { DeployOptions, DeployResult } from './types.js';

export interface DeployManyOptions {
  /** Hosts deployed at the same time (default 10). */
  concurrency?: number;
  /** Aborts every deploy still running (combined with each target's own signal). */
  signal?: AbortSignal;
}

export type DeployOutcome = { host: string; ok: true; result: DeployResult } | { host: string; ok: false; error: DeployError };

/** Outcomes in the order of `targets`. */
export async function deployMany(targets: DeployOptions[], opts: DeployManyOptions = {}): Promise<DeployOutcome[]> {
  const concurrency = Math.max(1, opts.concurrency ?? 10);
  const outcomes: DeployOutcome[] = new Array(targets.length);
  let next = 0;
  const worker = async () => {
    while (next < targets.length) {
      const index = next++;
      const target = targets[index];
      const signal = opts.signal && target.signal ? AbortSignal.any([opts.signal, target.signal]) : (opts.signal ?? target.signal);
      try {
        outcomes[index] = { host: target.host, ok: true, result: await deployAgent({ ...target, signal }) };
      } catch (err) {
        if (!(err instanceof DeployError)) throw err; // a bug, not a host's failure
        outcomes[index] = { host: target.host, ok: false, error: err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, targets.length) }, worker));
  return outcomes;
}

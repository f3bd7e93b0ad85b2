// KvmRunShell on a real host: `/bin/sh -c <script>` under the command's signal; exit code and output, each output
// cut at OUTPUT_LIMIT bytes (a chatty script must not fill the agent's memory or the API's reply).
import { spawn } from 'node:child_process';

export const OUTPUT_LIMIT = 64 * 1024;

export function runHostShell(script: string, signal: AbortSignal): Promise<{ returnCode: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', script], { signal, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
    const size = { stdout: 0, stderr: 0 };
    for (const name of ['stdout', 'stderr'] as const) {
      child[name].on('data', (chunk: Buffer) => {
        const room = OUTPUT_LIMIT - size[name];
        if (room <= 0) return;
        out[name].push(chunk.subarray(0, room));
        size[name] += Math.min(room, chunk.length);
      });
    }
    child.on('error', (e) => reject(signal.aborted ? signal.reason : e));
    child.on('close', (code, sig) => {
      if (signal.aborted) return reject(signal.reason);
      resolve({
        returnCode: code ?? (sig ? 128 : 1),
        stdout: Buffer.concat(out.stdout).toString('utf8'),
        stderr: Buffer.concat(out.stderr).toString('utf8'),
      });
    });
  });
}

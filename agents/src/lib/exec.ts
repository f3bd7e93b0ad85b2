// Runs a program (virsh, qemu-img) under the command's signal, with clear errors when it is missing or fails.
import { execFile } from 'node:child_process';
import { AgentError } from './errors.js';

export interface ExecResult {
  stdout: string;
  stderr: string;
}

/** Runs `file args`; rejects with AgentError carrying stderr on a non-zero exit or ENOENT. */
export function run(file: string, args: string[], signal?: AbortSignal): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { signal, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (!err) return resolve({ stdout, stderr });
      if (signal?.aborted) return reject(signal.reason);
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT') return reject(new AgentError(`${file} not found on PATH`));
      reject(new AgentError(`${file} ${args.join(' ')} failed: ${(stderr || e.message).trim()}`));
    });
  });
}

/** True when `file` can be run (`file --version` succeeds). */
export async function available(file: string): Promise<boolean> {
  try {
    await run(file, ['--version']);
    return true;
  } catch {
    return false;
  }
}

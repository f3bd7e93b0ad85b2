// One clear error per failed deploy: which task, which host, the exit code and the last lines of stderr, as a
// ZStack ErrorCode (HOST.1003 wrapping SYS.1006, or SYS.1001 when the deadline ran out).
import type { ErrorCode, TaskLog, TaskName } from './types.js';

const DESCRIPTIONS: Record<string, string> = {
  'HOST.1003': 'Unable to connect the host',
  'SYS.1001': 'A message or an operation timeout',
  'SYS.1006': 'An operation failed',
  'SYS.1017': 'The operation was cancelled',
};

export const STDERR_TAIL_LINES = 10;

/** What a task throws: a message, and when a remote command failed, its exit code and stderr. */
export class TaskError extends Error {
  override name = 'TaskError';
  readonly exitCode?: number;
  readonly stderr?: string;
  /** A network hiccup (reset, handshake timeout, connection lost): the whole deploy is worth retrying. */
  readonly transient: boolean;

  constructor(message: string, opts: { exitCode?: number; stderr?: string; transient?: boolean } = {}) {
    super(message);
    this.exitCode = opts.exitCode;
    this.stderr = opts.stderr;
    this.transient = opts.transient ?? false;
  }
}

export class DeployError extends Error {
  override name = 'DeployError';
  readonly error: ErrorCode;
  readonly task: TaskName;
  readonly host: string;
  readonly exitCode?: number;
  readonly stderrTail?: string;
  /** Every task logged up to the failure (also posted to logUrl). */
  readonly tasks: TaskLog[];

  constructor(init: { kind: string; host: string; task: TaskName; cause: unknown; tasks: TaskLog[]; aborted?: unknown }) {
    const { kind, host, task } = init;
    const taskError = init.cause instanceof TaskError ? init.cause : undefined;
    const stderrTail = taskError?.stderr ? tail(taskError.stderr) : undefined;
    const exitCode = taskError?.exitCode;
    const reason = init.aborted !== undefined ? abortMessage(init.aborted) : messageOf(init.cause);
    const parts = [`task ${task} failed on host ${host}: ${reason}`];
    if (exitCode !== undefined) parts.push(`exit code ${exitCode}`);
    if (stderrTail) parts.push(`stderr:\n${stderrTail}`);
    const details = parts.join('; ');
    const causeCode = init.aborted === undefined ? 'SYS.1006' : isTimeout(init.aborted) ? 'SYS.1001' : 'SYS.1017';
    const error: ErrorCode = {
      code: 'HOST.1003',
      description: DESCRIPTIONS['HOST.1003'],
      details: `deploying the ${kind} agent on ${host} failed: ${details}`,
      cause: { code: causeCode, description: DESCRIPTIONS[causeCode], details },
    };
    super(`HOST.1003: ${error.details}`);
    this.error = error;
    this.task = task;
    this.host = host;
    this.exitCode = exitCode;
    this.stderrTail = stderrTail;
    this.tasks = init.tasks;
  }
}

/** The last lines of a command's stderr: the part that says what went wrong. */
export function tail(text: string, lines = STDERR_TAIL_LINES): string {
  const all = text.trimEnd().split('\n');
  return all.slice(-lines).join('\n').slice(-4000);
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function isTimeout(reason: unknown): boolean {
  return reason instanceof Error && reason.name === 'TimeoutError';
}

function abortMessage(reason: unknown): string {
  return isTimeout(reason) ? 'the deadline ran out' : `cancelled (${messageOf(reason)})`;
}

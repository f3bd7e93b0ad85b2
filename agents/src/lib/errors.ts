// Errors a handler throws. Anything else thrown is reported as `success:false` with its message only.

/** The command failed for a reason worth telling the caller: HTTP 200, `{success:false, error}`. */
export class AgentError extends Error {
  override name = 'AgentError';
}

/** The request itself is wrong (HTTP 400), e.g. a missing target the simulator needs. */
export class BadRequestError extends Error {
  override name = 'BadRequestError';
  readonly statusCode = 400;
}

/** Thrown by the simulator's fault layer: destroy the connection without replying. */
export class DropConnection extends Error {
  override name = 'DropConnection';
}

/** Reason of the command signal when the caller's budget (X-Zstack-Timeout-Ms) ran out. */
export class DeadlineExceeded extends Error {
  override name = 'DeadlineExceeded';
}

/** Reason of the command signal when the caller closed the connection before the reply. */
export class CallerGone extends Error {
  override name = 'CallerGone';
}

export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

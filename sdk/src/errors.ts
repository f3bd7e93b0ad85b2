import type { ErrorCode } from '@zstack-ts/openapi/helpers';

/** ZStack's ErrorCode, as the server sends it (the spec's components.schemas.ErrorCode). */
export type ErrorCodeJson = ErrorCode;

/**
 * Codes the SDK itself produces (the server's are `SYS.*`, `ID.*`, `HOST.*`, …):
 * - `SDK.1000` the server could not be reached (after the retries that were safe), or the connection broke
 * - `SDK.1001` refused by the client's read-only mode
 * - `SDK.1002` the server answered something that is not a ZStack reply (e.g. a proxy's HTML error page)
 * Timeouts of the client's own wait use upstream's `SYS.1001`, so `isTimeout` covers both sides.
 */
export const SDK_ERRORS = {
  connection: { code: 'SDK.1000', description: 'The management server could not be reached' },
  readOnly: { code: 'SDK.1001', description: 'The client is read-only' },
  badReply: { code: 'SDK.1002', description: 'The management server sent an unexpected reply' },
  timeout: { code: 'SYS.1001', description: 'A message or an operation timeout' },
} as const;

/** The request that failed, secrets redacted (no Authorization value, no passwords). */
export interface FailedRequest {
  method: string;
  url: string;
}

/** Every failure of an API call: the server's ErrorCode plus where it happened. */
export class ZStackError extends Error {
  readonly code: string;
  readonly description: string;
  readonly details?: string;
  /** The ErrorCode exactly as received (with its `cause` chain). */
  readonly errorCode: ErrorCodeJson;
  /** The request that failed (redacted), when known. */
  request?: FailedRequest;
  /**
   * The call's `X-Request-Id` (the SDK sends one per call; the server logs it as `reqId` and echoes it): quote it to
   * find the call in the server's log.
   */
  readonly requestId?: string;

  constructor(
    errorCode: ErrorCodeJson,
    /** HTTP status of the failing reply; 0 when no reply came (connection failure, client-side timeout). */
    readonly httpStatus: number,
    readonly apiName?: string,
    readonly jobUuid?: string,
    options?: { cause?: unknown; request?: FailedRequest; requestId?: string },
  ) {
    // A job's uuid names the failure; a call without a job (synchronous APIs, refusals) is named by its request id.
    const requestId = options?.requestId;
    const where = [apiName, jobUuid ? `job ${jobUuid}` : requestId ? `request ${requestId}` : undefined].filter(Boolean).join(', ');
    super(`${where ? `${where}: ` : ''}${errorCode.code} ${errorCode.details ?? errorCode.description}`, {
      // The ZStack cause chain becomes the standard `Error.cause` chain; a transport error is the cause otherwise.
      cause: errorCode.cause ? new ZStackError(errorCode.cause, httpStatus, apiName, jobUuid, { requestId }) : options?.cause,
    });
    this.requestId = requestId;
    this.name = 'ZStackError';
    this.code = errorCode.code;
    this.description = errorCode.description;
    this.details = errorCode.details;
    this.errorCode = errorCode;
    this.request = options?.request;
  }

  /** The ErrorCode chain from this error down to the root cause. */
  get causes(): ErrorCodeJson[] {
    const out: ErrorCodeJson[] = [];
    for (let e: ErrorCodeJson | undefined = this.errorCode; e; e = e.cause) out.push(e);
    return out;
  }

  /** The innermost cause of the error chain (the real reason, e.g. the agent's failure under a job's failure). */
  get rootCause(): ErrorCodeJson {
    const chain = this.causes;
    return chain[chain.length - 1];
  }

  /** A resource (or a job) that does not exist: `SYS.1003`, HTTP 404. */
  get isNotFound(): boolean {
    return this.code === 'SYS.1003';
  }

  /** The API, one of its steps, or the client's wait timed out (`SYS.1001` anywhere in the chain). */
  get isTimeout(): boolean {
    return this.causes.some((e) => e.code === 'SYS.1001');
  }

  /** The request was invalid (`SYS.1007` or HTTP 400): fix the call, retrying cannot help. */
  get isValidation(): boolean {
    return this.code === 'SYS.1007' || this.httpStatus === 400;
  }

  /** Missing/expired session (`ID.1001`) or permission denied (`ID.1002`). */
  get isAuth(): boolean {
    return this.code === 'ID.1001' || this.code === 'ID.1002';
  }

  /** The resource is in a state that does not allow the operation (HTTP 409). */
  get isConflict(): boolean {
    return this.httpStatus === 409;
  }

  /** No reply came from the server (`SDK.1000`). */
  get isConnection(): boolean {
    return this.code === SDK_ERRORS.connection.code;
  }

  toJSON(): ErrorCodeJson & { httpStatus: number; apiName?: string; jobUuid?: string; requestId?: string } {
    return { ...this.errorCode, httpStatus: this.httpStatus, apiName: this.apiName, jobUuid: this.jobUuid, requestId: this.requestId };
  }
}

export const isNotFound = (e: unknown): e is ZStackError => e instanceof ZStackError && e.isNotFound;
export const isTimeout = (e: unknown): e is ZStackError => e instanceof ZStackError && e.isTimeout;
export const isZStackError = (e: unknown): e is ZStackError => e instanceof ZStackError;

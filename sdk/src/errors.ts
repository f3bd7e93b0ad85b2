/** ZStack's ErrorCode, as the server sends it. */
export interface ErrorCodeJson {
  code: string;
  description: string;
  details?: string;
  elaboration?: string;
  cause?: ErrorCodeJson;
  [k: string]: unknown;
}

/** Every failure of an API call: the server's ErrorCode plus where it happened. */
export class ZStackError extends Error {
  readonly code: string;
  readonly description: string;
  readonly details?: string;
  readonly errorCode: ErrorCodeJson;

  constructor(
    errorCode: ErrorCodeJson,
    readonly httpStatus: number,
    readonly apiName?: string,
    readonly jobUuid?: string,
  ) {
    super(`${apiName ? `${apiName}: ` : ''}${errorCode.code} ${errorCode.details ?? errorCode.description}`);
    this.name = 'ZStackError';
    this.code = errorCode.code;
    this.description = errorCode.description;
    this.details = errorCode.details;
    this.errorCode = errorCode;
  }

  /** The innermost cause of the error chain. */
  get rootCause(): ErrorCodeJson {
    let e = this.errorCode;
    while (e.cause) e = e.cause;
    return e;
  }

  get isNotFound(): boolean {
    return this.code === 'SYS.1003';
  }

  get isTimeout(): boolean {
    return this.code === 'SYS.1001';
  }
}

export const isNotFound = (e: unknown) => e instanceof ZStackError && e.isNotFound;
export const isTimeout = (e: unknown) => e instanceof ZStackError && e.isTimeout;

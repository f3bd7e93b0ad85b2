// ZStack's ErrorCode shape and the one place that decides which HTTP status an error gets.

export interface ErrorCode {
  code: string;
  description: string;
  details?: string;
  elaboration?: string;
  location?: string;
  cost?: string;
  cause?: ErrorCode;
  opaque?: Record<string, unknown>;
}

const DESCRIPTIONS: Record<string, string> = {
  'SYS.1000': 'An internal error happened in the system',
  'SYS.1001': 'A message or an operation timeout',
  'SYS.1002': 'Unable to create a resource',
  'SYS.1003': 'Unable to find a resource',
  'SYS.1004': 'Unable to delete a resource',
  'SYS.1005': 'Unable to change the state of a resource',
  'SYS.1006': 'An operation failed',
  'SYS.1007': 'One or more API argument is invalid',
  'SYS.1010': 'The resource is not ready',
  'SYS.1014': 'The operation is not implemented',
  'SYS.1015': 'An HTTP call failed',
  'SYS.1017': 'The operation was cancelled',
  'ID.1000': 'Authentication failed',
  'ID.1001': 'The session is invalid or expired',
  'ID.1002': 'Permission denied',
  'HOST.1002': 'Unable to reconnect the host',
  'HOST.1003': 'Unable to connect the host',
  'HOST.1010': 'The host is disconnected',
  'VM.1000': 'The VM is not in a state that allows this operation',
  'HOST_ALLOCATION.1001': 'No host is available',
  'PS.1000': 'Not enough primary storage capacity',
  'L3.1000': 'No IP address is available',
  'GC.1000': 'Garbage collector error',
};

/** HTTP status for an error answered directly (sync APIs and checks done before a job starts). */
const STATUS: Record<string, number> = {
  'SYS.1000': 500,
  'SYS.1003': 404,
  'SYS.1007': 400,
  'ID.1000': 401,
  'ID.1001': 401,
  'ID.1002': 403,
  'VM.1000': 409,
  'SYS.1005': 409,
};

export class ApiError extends Error {
  constructor(
    readonly error: ErrorCode,
    readonly httpStatus: number = STATUS[error.code] ?? 503,
  ) {
    super(`${error.code}: ${error.details ?? error.description}`);
  }
}

export function errorCode(code: string, details?: string, cause?: ErrorCode): ErrorCode {
  const e: ErrorCode = { code, description: DESCRIPTIONS[code] ?? 'An error happened' };
  if (details !== undefined) e.details = details;
  if (cause) e.cause = cause;
  return e;
}

export const err = (code: string, details?: string, cause?: ErrorCode) => new ApiError(errorCode(code, details, cause));
/** SYS.1007: bad argument. */
export const argErr = (details: string) => err('SYS.1007', details);
/** SYS.1006: operation failed. */
export const opErr = (details: string, cause?: ErrorCode) => err('SYS.1006', details, cause);
/** SYS.1003 with upstream's wording. */
export const notFound = (type: string, uuid: string, field = 'uuid') =>
  err('SYS.1003', `invalid field[${field}], resource[uuid:${uuid}, type:${type}] not found`);
/** An operation refused in the resource's current state (409). */
export const stateErr = (code: string, details: string) => new ApiError(errorCode(code, details), 409);

/** Turns anything thrown into an ApiError; unexpected exceptions become SYS.1000 without a stack trace. */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new ApiError(errorCode('SYS.1000', message), 500);
}

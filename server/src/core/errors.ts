import { randomUUID } from 'node:crypto';
import type { ErrorCode } from '@zstack-ts/openapi/helpers';
import { descriptionOf, statusOf } from './error-codes.js';
// ZStack's ErrorCode (its type generated from the spec's components) and the one place that decides which HTTP
// status an error gets.

export type { ErrorCode };

// Descriptions and HTTP statuses come from the one table of codes (core/error-codes.ts, also the docs' catalogue).

export class ApiError extends Error {
  constructor(
    readonly error: ErrorCode,
    readonly httpStatus: number = statusOf(error.code),
  ) {
    super(`${error.code}: ${error.details ?? error.description}`);
  }
}

export function errorCode(code: string, details?: string, cause?: ErrorCode): ErrorCode {
  const e: ErrorCode = { code, description: descriptionOf(code) };
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

/**
 * Turns anything thrown into an ApiError. Nothing of an unexpected error reaches a reply, a job or a log line as
 * it is (its message may carry SQL text and parameters: other callers' values, secrets): PostgreSQL's error classes
 * become the ZStack error the API would have given (pgErrorOf), and everything else becomes SYS.1000 with a
 * correlation id, under which the server log records the real cause (once per error, see logInternal).
 */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  const known = internalIds.get(e as object);
  if (known) return known;
  const pg = pgErrorOf(e);
  const mapped = pg && mapPgError(pg);
  if (mapped) {
    if (typeof e === 'object' && e) internalIds.set(e, mapped);
    return mapped;
  }
  const id = newCorrelationId();
  const apiError = new ApiError(errorCode('SYS.1000', `an internal error happened; correlation id ${id} (the server log has the cause)`), 500);
  apiError.error.opaque = { correlationId: id };
  if (typeof e === 'object' && e) internalIds.set(e, apiError);
  logInternal(id, e);
  return apiError;
}

/** Each unexpected error is logged once and keeps its correlation id however often it is converted. */
const internalIds = new WeakMap<object, ApiError>();

function newCorrelationId(): string {
  return randomUUID().replace(/-/g, '');
}

/** The PostgreSQL error behind `e` (pg's DatabaseError, possibly wrapped by drizzle as its `cause`). */
export function pgErrorOf(e: unknown): PgErrorLike | undefined {
  for (let x = e, depth = 0; x && typeof x === 'object' && depth < 5; x = (x as { cause?: unknown }).cause, depth++) {
    const c = (x as PgErrorLike).code;
    if (typeof c === 'string' && /^[0-9A-Z]{5}$/.test(c) && typeof (x as PgErrorLike).severity === 'string') return x as PgErrorLike;
  }
  return undefined;
}

export interface PgErrorLike {
  code: string;
  severity: string;
  message: string;
  detail?: string;
  constraint?: string;
  column?: string;
  table?: string;
}

/**
 * PostgreSQL error classes → the ZStack error the API would have given. Only names (column, constraint) appear,
 * never values: pg's `detail` carries them ("Key (name)=(alice) already exists").
 */
function mapPgError(pg: PgErrorLike): ApiError | undefined {
  const what = pg.detail?.match(/^Key \(([\w ,"]+)\)=/)?.[1]?.replace(/"/g, '') ?? pg.column ?? pg.constraint;
  switch (pg.code) {
    case '23505':
      return err('SYS.1007', `a resource with the same ${what ?? 'unique value'} already exists`);
    case '23503':
      // A row it refers to was deleted by a concurrent call (e.g. DeleteL3Network racing AttachNetworkServiceToL3Network):
      // what the API's own lookup answers without the race.
      if (/is not present in table/.test(pg.detail ?? ''))
        return err('SYS.1003', `a resource this request refers to (${what ?? 'a reference'}) was deleted meanwhile`);
      return err('SYS.1007', 'a resource this request refers to does not exist (or was deleted meanwhile), or is still referenced');
    case '23502':
      return err('SYS.1007', `field[${pg.column ?? 'unknown'}] is mandatory, can not be null`);
    case '23514':
      return err('SYS.1007', `a value violates the rule ${pg.constraint ?? ''}`.trim());
    case '40001':
    case '40P01':
      return err(
        'SYS.1006',
        'the operation conflicted with concurrent ones (serialization failure or deadlock) and could not be completed after retries; retry it',
      );
    case '55P03':
      return err('SYS.1006', 'a resource is locked by another operation; retry it');
  }
  // Class 22, data exception: a value PostgreSQL cannot store or compare (out of range, NUL byte, bad encoding).
  if (pg.code.startsWith('22')) return err('SYS.1007', 'a value of this request is out of range or cannot be stored');
  return undefined;
}

/**
 * The server log's record of an unexpected error: one structured line with the correlation id, the error's class,
 * its PostgreSQL code and message (without SQL text and parameters) and its stack frames.
 */
function logInternal(id: string, e: unknown): void {
  const pg = pgErrorOf(e);
  const record: Record<string, unknown> = { level: 'error', msg: 'internal error', correlationId: id, time: new Date().toISOString() };
  if (pg) {
    record.pgCode = pg.code;
    record.pgMessage = scrubText(pg.message);
  }
  if (e instanceof Error) {
    record.error = e.name;
    record.message = scrubText(e.message);
    record.stack = (e.stack ?? '')
      .split('\n')
      .filter((l) => /^\s+at /.test(l))
      .map((l) => l.trim())
      .slice(0, 12);
  } else record.message = scrubText(String(e));
  console.error(JSON.stringify(record));
}

/**
 * An error message fit for a log line or a reply: SQL statements and their parameters cut (drizzle's
 * "Failed query: <sql>\nparams: <values>"), long texts shortened.
 */
export function scrubText(text: string): string {
  let s = String(text);
  const cut = s.search(/Failed query:|\bparams:|\b(SELECT|INSERT|UPDATE|DELETE|WITH)\s[\s\S]*\b(FROM|INTO|SET|AS)\b/i);
  if (cut >= 0) s = `${s.slice(0, cut).trim()} [statement omitted]`.trim();
  return s.length > 300 ? s.slice(0, 300) + '…' : s;
}

/** A thrown value as one line for a log: an ApiError's code and details, anything else through toApiError. */
export function describeError(e: unknown): string {
  return toApiError(e).message;
}

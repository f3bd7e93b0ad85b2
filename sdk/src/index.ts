export { ZStackClient, type ClientOptions, type JobHandle } from './client.js';
export { ZStackError, isNotFound, isTimeout, type ErrorCodeJson } from './errors.js';
export type { CallOptions, ParamsOf, ReplyOf, ApiName } from './types.js';
export { OPERATIONS, type OperationId } from './generated/operations.js';
